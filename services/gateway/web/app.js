// The web chat page: dev sign-in, rooms and direct messages, messages with scroll-back, pending / sent /
// read marks, typing, people with last seen, the connection indicator, admin slash commands.
// ?gateways=ws://a/ws,ws://b/ws connects to those (in turn) instead of this page's own host.
import { ChatClient, SseSocket } from '/chat-client.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const urls = params.get('gateways')?.split(',').filter(Boolean) ??
  [`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`];
const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
};
const clock = (d) => d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
const seen = (ts) => {
  const d = new Date(ts);
  return d.toDateString() === new Date().toDateString() ? clock(d) : d.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
};
const store = {
  get(k) {
    try {
      return JSON.parse(localStorage.getItem(k));
    } catch {
      return null;
    }
  },
  set(k, v) {
    try {
      localStorage.setItem(k, JSON.stringify(v));
    } catch {
      /* full or blocked */
    }
  },
};

let client = null;
let session = null; // {user, token}
let current = null;
let ticker = 0;
let errTimer = 0;
const views = new Map(); // room -> {room, ol, bySeq, byCid, hasMore, loaded, loading, unread, reads, people, typing}

function showError(text) {
  $('error').textContent = text ?? '';
  clearTimeout(errTimer);
  if (text) errTimer = setTimeout(() => ($('error').textContent = ''), 10000);
}

// DM rooms have opaque ids (dm:…): they are named after the other person, as far as this page knows.
let names = {};
const label = (room) => names[room] ?? (room.startsWith('dm:') ? 'Direct message' : `#${room}`);

function nameDm(room, others) {
  const other = others.find((u) => u && u !== session.user);
  if (!room.startsWith('dm:') || names[room] || !other) return;
  names[room] = `@${other}`;
  store.set(`chat.names.${session.user}`, names);
  views.get(room)?.ol.setAttribute('aria-label', `Messages with ${other}`);
  if (room === current) $('title').textContent = label(room);
  renderRooms();
}

const atBottom = (v) => v.ol.scrollHeight - v.ol.scrollTop - v.ol.clientHeight < 40;
const newest = (v) => Math.max(0, ...[...v.bySeq.keys()].filter(Number.isInteger));

function save() {
  store.set(`chat.rooms.${session.user}`, [...views.keys()]);
  if (current) store.set(`chat.room.${session.user}`, current);
}

// ---- rooms ------------------------------------------------------------------------------------------

function view(room) {
  let v = views.get(room);
  if (v) return v;
  const ol = el('ol', { hidden: true, tabIndex: 0 });
  ol.setAttribute('role', 'log');
  ol.setAttribute('aria-label', `Messages in ${label(room)}`);
  v = { room, ol, bySeq: new Map(), byCid: new Map(), hasMore: true, loaded: false, loading: false, unread: 0, reads: new Map(), people: [], typing: [] };
  ol.addEventListener('scroll', () => {
    if (ol.scrollTop < 40) older(v);
    maybeRead(v);
  });
  $('logs').append(ol);
  views.set(room, v);
  for (const e of client.outbox(room)) put(v, e, 'pending');
  save();
  renderRooms();
  return v;
}

function renderRooms() {
  $('rooms').replaceChildren(...[...views.values()].map((v) => {
    const b = el('button', { type: 'button', onclick: () => select(v.room) }, el('span', { textContent: label(v.room) }));
    if (v.unread) b.append(el('span', { className: 'badge' }, `${v.unread}`, el('span', { className: 'vh', textContent: ' unread' })));
    b.setAttribute('aria-current', String(v.room === current));
    return el('li', {}, b);
  }));
}

function select(room) {
  const v = view(room);
  current = room;
  for (const w of views.values()) w.ol.hidden = w !== v;
  $('title').textContent = label(room);
  $('older').hidden = !v.hasMore || !v.loaded;
  v.unread = 0;
  renderRooms();
  renderPeople(v);
  renderTyping(v);
  v.ol.scrollTop = v.ol.scrollHeight;
  maybeRead(v);
  save();
}

function removeRoom(room) {
  const v = views.get(room);
  if (!v) return;
  v.ol.remove();
  views.delete(room);
  client.leave(room);
  if (current === room) current = null;
  save();
  if (!current && views.size) select(views.keys().next().value);
  else renderRooms();
}

function joinRoom(room) {
  view(room);
  select(room);
  client.join(room).catch((e) => {
    if (e.code === 'disconnected' || e.code === 'timeout') return;
    showError(`${label(room)}: ${e.message}`);
    removeRoom(room);
  });
}

// ---- messages ---------------------------------------------------------------------------------------

// Messages keep seq order; pending ones (no seq yet) stay last, in the order they were sent.
function place(v, li) {
  let next = null;
  if (li.seq) {
    for (let c = v.ol.lastElementChild; c; c = c.previousElementSibling) {
      if (c === li) continue;
      if (c.seq && c.seq < li.seq) break;
      next = c;
    }
  }
  if (li.parentNode !== v.ol || li.nextElementSibling !== next) v.ol.insertBefore(li, next);
}

/** Shows message m (a server message, or an outbox entry with state 'pending'); once only per seq. */
function put(v, m, state) {
  const mine = m.from === session.user && m.kind !== 'system';
  let li = v.bySeq.get(m.seq) ?? (mine && m.clientId ? v.byCid.get(m.clientId) : null);
  if (li?.seq) return li; // stored messages do not change
  const bottom = atBottom(v);
  li ??= el('li');
  li.msg = m;
  if (mine && m.clientId) v.byCid.set(m.clientId, li);
  li.className = mine ? 'mine' : m.kind === 'system' ? 'system' : '';
  const d = m.ts ? new Date(m.ts) : null;
  li.replaceChildren(
    el('span', { className: 'from', textContent: m.kind === 'system' ? 'system' : m.from }),
    el('span', { className: 'text', textContent: m.text }),
    el('time', { dateTime: m.ts ?? '', textContent: d ? clock(d) : '' }),
  );
  if (m.seq) {
    li.seq = m.seq;
    li.dataset.seq = m.seq;
    v.bySeq.set(m.seq, li);
  }
  if (mine) {
    li.append(el('span', { className: 'mark' }));
    mark(v, li, m.seq ? 'sent' : state ?? 'pending');
  }
  place(v, li);
  if (bottom) v.ol.scrollTop = v.ol.scrollHeight;
  return li;
}

const MARKS = { pending: '◷ sending', sent: '✓ sent', read: '✓✓ read', failed: '⚠ not sent' };

function mark(v, li, state, why) {
  if (state === 'sent') {
    const by = [...v.reads].filter(([u, s]) => s >= li.seq && u !== session.user).map(([u]) => u);
    if (by.length) (state = 'read'), (why = `Read by ${by.join(', ')}`);
  }
  li.dataset.state = state;
  const m = li.querySelector('.mark');
  m.textContent = MARKS[state];
  m.title = why ?? '';
}

/** A line that is not a message (notices, commands); sorts after the messages shown so far. */
function note(v, text, cls = 'notice') {
  const li = el('li', { className: cls, textContent: text });
  li.seq = newest(v) + 0.5;
  place(v, li);
  v.ol.scrollTop = v.ol.scrollHeight;
}

async function loadLatest(v) {
  if (v.loading) return;
  v.loading = true;
  try {
    const page = await client.history(v.room, 0);
    for (const m of page.messages) put(v, m);
    v.hasMore = page.hasMore;
    v.loaded = true;
    v.ol.scrollTop = v.ol.scrollHeight;
    const authors = new Set(page.messages.filter((m) => m.kind !== 'system').map((m) => m.from));
    client.presence(v.room, [...authors].slice(0, 100)).catch(() => {});
  } catch (e) {
    if (e.code !== 'disconnected') showError(`history of ${label(v.room)}: ${e.message}`);
  } finally {
    v.loading = false;
    if (v.room === current) $('older').hidden = !v.hasMore;
  }
}

async function older(v) {
  if (!v.hasMore || v.loading || !v.loaded || !client.connected) return;
  const oldest = Math.min(...[...v.bySeq.keys()]);
  if (!Number.isFinite(oldest)) return;
  v.loading = true;
  try {
    const page = await client.history(v.room, oldest);
    const keep = v.ol.scrollHeight - v.ol.scrollTop;
    for (const m of page.messages.reverse()) put(v, m);
    v.ol.scrollTop = v.ol.scrollHeight - keep;
    v.hasMore = page.hasMore;
  } catch (e) {
    if (e.code !== 'disconnected') showError(e.message);
  } finally {
    v.loading = false;
    if (v.room === current) $('older').hidden = !v.hasMore;
  }
}

function maybeRead(v) {
  if (v.room === current && !document.hidden && atBottom(v) && client.connected) client.markRead(v.room, newest(v));
}

// ---- people and typing ------------------------------------------------------------------------------

function renderPeople(v) {
  if (v.room !== current) return;
  $('people').replaceChildren(...v.people.map((p) => {
    const li = el('li', { className: p.online ? 'on' : 'off', textContent: p.user + (p.user === session.user ? ' (you)' : '') });
    li.append(el('small', { textContent: p.online ? 'online' : p.lastSeen ? `last seen ${seen(p.lastSeen)}` : 'offline' }));
    return li;
  }));
}

function renderTyping(v) {
  if (v.room !== current) return;
  const u = v.typing;
  $('typing').textContent = u.length ? `${u.join(', ')} ${u.length > 1 ? 'are' : 'is'} typing…` : '';
}

// ---- the connection indicator -----------------------------------------------------------------------

function showState(s) {
  clearInterval(ticker);
  const c = $('conn');
  let color = 'red';
  let text = s.state;
  $('countdown').textContent = '';
  if (s.state === 'connected') (color = 'green'), (text = 'connected');
  else if (s.state === 'connecting') (color = 'amber'), (text = 'connecting…');
  else if (s.state === 'reconnecting' && !s.retryInMs) (color = 'amber'), (text = 'reconnecting…');
  else if (s.state === 'reconnecting') {
    text = 'offline';
    const tick = () => ($('countdown').textContent = `retrying in ${Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000))} s`);
    tick();
    ticker = setInterval(tick, 250);
  } else if (s.state === 'failed') text = s.reason === 'kicked' ? 'removed by an admin' : 'offline, gave up';
  c.className = `conn ${color}`;
  c.dataset.state = s.state;
  c.dataset.url = s.url ?? c.dataset.url ?? '';
  $('conn-text').textContent = text;
  $('retry').hidden = !(s.state === 'failed' || (s.state === 'reconnecting' && s.retryInMs));
  if (s.state === 'failed' && (s.reason === 'unauthorized' || s.reason === 'expired')) signOut('Your session has ended: sign in again.');
}

// ---- sign-in and wiring -----------------------------------------------------------------------------

function start() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  const fallback = typeof EventSource === 'function' && !params.has('gateways') ? SseSocket : null;
  client = new ChatClient({ urls, token: session.token, fallback });
  window.chat = { client, views };
  $('me').textContent = client.user + (client.admin ? ' (admin)' : '');
  $('admin-hint').hidden = !client.admin;
  client.on('state', showState);
  client.on('joined', (j) => {
    nameDm(j.room, j.online);
    const v = view(j.room);
    if (j.truncated) {
      // More was missed than the server replays: drop what is older than the gap; scroll back pages it.
      for (const [seq, li] of v.bySeq) if (seq <= j.afterSeq) li.remove(), v.bySeq.delete(seq);
      v.hasMore = true;
    }
    if (!v.loaded) loadLatest(v);
    maybeRead(v);
  });
  client.on('message', (m) => {
    const v = views.get(m.room);
    if (!v) return;
    nameDm(m.room, [m.from]);
    put(v, m);
    if (m.room !== current || document.hidden) {
      if (m.from !== session.user && m.room !== current) (v.unread += 1), renderRooms();
    } else maybeRead(v);
  });
  client.on('ack', (a) => {
    const v = views.get(a.room);
    const li = v?.byCid.get(a.clientId);
    if (li && !li.seq) put(v, { ...li.msg, seq: a.seq, id: a.id, ts: a.ts ?? li.msg.ts });
  });
  client.on('read', (r) => {
    const v = views.get(r.room);
    if (!v || r.user === session.user) return;
    v.reads.set(r.user, Math.max(r.seq, v.reads.get(r.user) ?? 0));
    for (const li of v.ol.querySelectorAll('li.mine[data-state="sent"]')) mark(v, li, 'sent');
  });
  client.on('typing', (t) => {
    const v = views.get(t.room);
    if (v) (v.typing = t.users), renderTyping(v);
  });
  client.on('presence', (p) => {
    const v = views.get(p.room);
    if (v) (v.people = p.people), renderPeople(v);
  });
  client.on('notice', (n) => current && note(views.get(current), `Notice${n.from ? ` from ${n.from}` : ''}: ${n.text}`));
  client.on('cleared', (c) => {
    const v = views.get(c.room);
    if (!v) return;
    for (const [seq, li] of v.bySeq) if (seq <= c.seq) li.remove(), v.bySeq.delete(seq);
    note(v, 'The history of this room was cleared.');
  });
  client.on('left', (l) => {
    if (views.has(l.room)) showError(`You are no longer in ${label(l.room)}.`), removeRoom(l.room);
  });
  client.on('error', (e) => {
    const v = e.room && views.get(e.room);
    const li = e.clientId && v?.byCid.get(e.clientId);
    if (li) return mark(v, li, 'failed', `${e.code}: ${e.message}`);
    if (v && !e.clientId) removeRoom(e.room);
    showError(`${e.code}: ${e.message}`);
  });

  names = store.get(`chat.names.${session.user}`) ?? {};
  const rooms = store.get(`chat.rooms.${session.user}`) ?? ['general'];
  for (const room of [...rooms, ...client.outbox().map((e) => e.room)]) {
    view(room);
    client.join(room).catch(() => {});
  }
  const last = store.get(`chat.room.${session.user}`);
  if (views.size) select(views.has(last) ? last : views.keys().next().value);
  client.connect();
}

function signOut(why) {
  client?.close();
  client = null;
  sessionStorage.removeItem('chat.session');
  for (const v of views.values()) v.ol.remove();
  views.clear();
  current = null;
  $('app').hidden = true;
  $('signout').hidden = true;
  $('login').hidden = false;
  $('me').textContent = '';
  showState({ state: 'disconnected' });
  showError(why);
}

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError();
  const user = $('user').value.trim();
  try {
    const res = await fetch('/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify($('admin').checked ? { user, admin: true } : { user }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || !body.token) return showError(body.error?.message ?? `Sign-in failed (HTTP ${res.status}).`);
    session = { user: body.user ?? user, token: body.token };
    sessionStorage.setItem('chat.session', JSON.stringify(session));
    start();
    $('text').focus();
  } catch (e) {
    showError(`Sign-in failed: ${e.message}`);
  }
});

$('signout').addEventListener('click', () => signOut());
$('retry').addEventListener('click', () => client?.retry());
$('older').addEventListener('click', () => current && older(views.get(current)));
$('join').addEventListener('submit', (ev) => {
  ev.preventDefault();
  joinRoom($('room').value.trim());
  $('room').value = '';
});
$('dm').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const user = $('dm-user').value.trim();
  try {
    const j = await client.openDm(user);
    $('dm-user').value = '';
    nameDm(j.room, [user]);
    select(j.room);
  } catch (e) {
    showError(`Direct message: ${e.message}`);
  }
});
$('text').addEventListener('input', () => {
  const t = $('text').value;
  if (current) client.typing(current, t.length > 0 && !(client.admin && t.startsWith('/')));
});
$('send').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('text').value;
  if (!text.trim() || !current) return;
  if (new TextEncoder().encode(text).length > 4096) return showError('That message is too long (4 KiB at most).');
  $('text').value = '';
  const v = views.get(current);
  if (client.admin && text.startsWith('/')) {
    client.typing(current, false);
    const echo = (answer) => (note(v, `› ${text}`, 'system'), note(v, answer));
    if (text === '/help') return echo($('admin-hint').textContent);
    return client.command(current, text).then(
      (b) => echo(b.text ?? Object.entries(b).map(([k, x]) => `${k}: ${x}`).join(', ')),
      (e) => echo(`${e.code}: ${e.message}`),
    );
  }
  put(v, client.send(current, text), 'pending');
});
document.addEventListener('visibilitychange', () => current && maybeRead(views.get(current)));
addEventListener('online', () => client && !client.connected && client.retry());

try {
  session = JSON.parse(sessionStorage.getItem('chat.session'));
} catch {
  session = null;
}
if (session?.token) start();
