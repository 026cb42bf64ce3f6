// chat-client.js: a small client for the chat gateway's protocol v1 (JSON frames over WebSocket, see
// DESIGN.md). One ES module, no dependencies, no build step. Runs in browsers and in Node 18+: pass
// WebSocket, storage and timers in the options to run it without a DOM (the unit tests do).
//
//   const c = new ChatClient({ url: 'wss://host/ws', token });   // or urls: [...] (tried in turn)
//   c.on('message', (m) => …); c.on('state', (s) => …); c.connect(); await c.join('general');
//   const entry = c.send('general', 'hello');   // pending at once; 'ack' event when it is durable
//
// Connection states: disconnected, connecting, connected, reconnecting (detail.retryInMs > 0 while it
// waits, 0 while it tries), failed (after 5 tries; retry() starts over). Backoff 1, 2, 4, 8, 16 s, ±20 %
// jitter. Its own heartbeat: a ping every heartbeatSeconds of the welcome, no pong within twice that
// means the connection is dead. Sends wait in an outbox kept in storage (a reload keeps them) and go out
// in order, again after a reconnect with the same clientId (the server dedups by it). Per room the last
// seq is tracked; a reconnect resumes after it, and messages at or below it are dropped as duplicates.
//
// Events (on(type, fn) returns an unsubscribe function): state, joined (also after a resume: detail
// .resumed, .truncated, .afterSeq), message, ack, typing, presence, read, notice, cleared, left, error
// (detail.clientId and .failed when a send was refused for good), frame (any frame it does not know).

export const BACKOFF = [1, 2, 4, 8, 16];
const TYPING_EVERY_MS = 2000; // send typing at most this often
const TYPING_SHOWN_MS = 6000; // others' typing hides after this without a refresh (server: 5 s)
const TRANSIENT = new Set(['rate_limited', 'unavailable', 'timeout']); // a send is retried on these

/** Delay in ms before reconnect attempt n (1-based): BACKOFF[n-1] s, ±20 % jitter. */
export const backoffDelay = (n, random = Math.random) =>
  Math.round(BACKOFF[Math.min(n, BACKOFF.length) - 1] * 1000 * (0.8 + 0.4 * random()));

/** int64 fields arrive as strings (proto3 JSON); seqs stay far below 2^53. Missing means 0. */
export const num = (v) => Number(v ?? 0) || 0;

/** The claims of a JWT (unverified: only to show the user name and admin flag). */
export function claimsOf(token) {
  try {
    const b = atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(b, (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

const fail = (code, message, extra) => Object.assign(new Error(message), { code, ...extra });

function uuid4() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) =>
    ((c === 'x' ? 0 : 8) + Math.random() * (c === 'x' ? 16 : 4)).toString(16)[0]);
}

export class ChatClient {
  constructor(o = {}) {
    this.urls = [].concat(o.urls ?? o.url ?? []);
    this.token = o.token;
    const claims = claimsOf(o.token ?? '');
    this.user = o.user ?? claims.sub;
    this.admin = claims.admin === true;
    this.exp = claims.exp;
    this.WS = o.WebSocket ?? globalThis.WebSocket;
    this.Fallback = o.fallback ?? null; // a WebSocket-shaped class used when WebSocket cannot connect
    let ls = null;
    try {
      ls = globalThis.localStorage;
    } catch {
      /* blocked */
    }
    this.store = o.storage ?? ls;
    this.key = o.storageKey ?? `chat.outbox.${this.user}`;
    this.setT = o.setTimeout ?? ((f, ms) => setTimeout(f, ms));
    this.clearT = o.clearTimeout ?? ((t) => clearTimeout(t));
    this.now = o.now ?? (() => Date.now());
    this.random = o.random ?? Math.random;
    this.uuid = o.uuid ?? uuid4;
    this.connectTimeoutMs = o.connectTimeoutMs ?? 10000;
    this.requestTimeoutMs = o.requestTimeoutMs ?? 20000;
    this.window = o.sendWindow ?? 10; // sends in flight at once
    this.state = 'disconnected';
    this.tries = 0; // failed attempts since the last welcome
    this.wsFails = 0; // WebSocket attempts that never opened, in a row
    this.ui = 0; // index into urls
    this.ref = 0;
    this.reqs = new Map(); // ref -> {resolve, reject, timer}
    this.quiet = new Set(); // refs of fire-and-forget frames: their errors are not reported
    this.rooms = new Map(); // room -> {lastSeq, joined, people, typers, readSent, typedAt}
    this.inflight = new Set(); // clientIds sent on this connection, not acked yet
    this.hold = new Map(); // clientId -> time before which it is not sent again (rate limited)
    this.handlers = new Map();
    this.ws = null;
    this.timers = {};
    this.mem = null; // the outbox when storage does not work
    this.dups = 0;
  }

  // ---- events --------------------------------------------------------------------------------------

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }

  emit(type, detail) {
    for (const fn of this.handlers.get(type) ?? []) {
      try {
        fn(detail);
      } catch (e) {
        globalThis.console?.error(e);
      }
    }
  }

  _state(state, detail = {}) {
    const prev = this.state;
    this.state = state;
    this.emit('state', { state, prev, attempt: this.tries, retryInMs: 0, ...detail });
  }

  // ---- connection ----------------------------------------------------------------------------------

  /** Starts connecting (no-op while connected or trying). */
  connect() {
    if (this.ws || this.timers.retry) return;
    this.tries = 0;
    this._attempt('connecting');
  }

  /** After `failed` (or while waiting to reconnect): try again now, with a fresh backoff. */
  retry() {
    if (this.state === 'connected' || this.ws) return;
    this._clear('retry');
    this.tries = 0;
    this._attempt('connecting');
  }

  /** Closes for good (until connect()); the outbox stays in storage. */
  close() {
    this._clear('retry');
    const ws = this.ws;
    if (ws) this._lost(ws, 'closed', true);
    this._state('disconnected', { reason: 'closed' });
  }

  _clear(...names) {
    for (const n of names) {
      if (this.timers[n] !== undefined) this.clearT(this.timers[n]);
      delete this.timers[n];
    }
  }

  _attempt(state) {
    if (this.exp && this.exp * 1000 <= this.now()) return this._state('failed', { reason: 'expired' });
    const url = this.urls[this.ui % this.urls.length];
    const sse = this.Fallback && this.wsFails >= 2;
    const target = `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(this.token)}`;
    let ws;
    try {
      ws = sse ? new this.Fallback(url, this.token) : new this.WS(target);
    } catch (e) {
      ws = null;
    }
    this._state(state, { url, transport: sse ? 'sse' : 'ws' });
    if (!ws) return this._schedule('bad url');
    this.ws = ws;
    ws.opened = false;
    ws.sse = sse;
    ws.onopen = () => (ws.opened = true);
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (f && typeof f === 'object') this._frame(f);
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => this._lost(ws, ev.code ?? 1006);
    this.timers.connect = this.setT(() => this._lost(ws, 'timeout'), this.connectTimeoutMs);
  }

  /** The connection `ws` is gone (closed, dead heartbeat, timeout): clean up and maybe reconnect. */
  _lost(ws, code, byUser = false) {
    if (this.ws !== ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      if (ws.readyState < 2) ws.close();
    } catch {
      /* gone */
    }
    this._clear('connect', 'beat', 'pong');
    this.wsFails = ws.sse || ws.opened ? 0 : this.wsFails + 1;
    const reqs = [...this.reqs.values()];
    this.reqs.clear();
    this.quiet.clear();
    this.inflight.clear();
    for (const [room, r] of this.rooms) {
      r.joined = false;
      r.typedAt = 0;
      for (const user of [...r.typers.keys()]) this._typing(room, user, false);
    }
    if (byUser) this.state = 'disconnected';
    else if (code === 4001 || code === 4003) this._state('failed', { reason: code === 4001 ? 'unauthorized' : 'kicked', code });
    else this._schedule(code);
    for (const r of reqs) {
      this.clearT(r.timer);
      r.done(fail('disconnected', 'connection lost'));
    }
  }

  _schedule(code) {
    if (this.tries >= BACKOFF.length) return this._state('failed', { reason: 'unreachable', code });
    const n = ++this.tries;
    const delay = backoffDelay(n, this.random);
    this.ui++;
    this._state('reconnecting', { attempt: n, retryInMs: delay, retryAt: this.now() + delay, code });
    this.timers.retry = this.setT(() => {
      delete this.timers.retry;
      this._attempt('reconnecting');
    }, delay);
  }

  _beat() {
    const ws = this.ws;
    this.timers.beat = this.setT(() => {
      if (this.ws !== ws) return;
      this._tx({ ping: {} });
      if (this.timers.pong === undefined) {
        this.timers.pong = this.setT(() => this._lost(ws, 'heartbeat'), 2 * this.hb);
      }
      this._beat();
    }, this.hb);
  }

  _tx(frame) {
    try {
      this.ws.send(JSON.stringify(frame));
    } catch {
      /* the close event follows */
    }
  }

  get connected() {
    return this.state === 'connected';
  }

  /** Sends a frame with a ref; resolves with the reply's body, rejects with err.code on an error reply. */
  request(body) {
    return new Promise((resolve, reject) => this._call(body, (e, b) => (e ? reject(e) : resolve(b))));
  }

  /** request() with a callback, done(err, body), called as the reply is handled (no microtask later). */
  _call(body, done) {
    if (!this.connected) return done(fail('disconnected', 'not connected'));
    const ref = ++this.ref;
    const timer = this.setT(() => {
      this.reqs.delete(ref);
      done(fail('timeout', 'no answer from the server'));
    }, this.requestTimeoutMs);
    this.reqs.set(ref, { done, timer });
    this._tx({ ref, ...body });
  }

  /** Sends a frame whose answer nobody waits for; an error reply to it is dropped. */
  _fire(body) {
    if (!this.connected) return;
    const ref = ++this.ref;
    this.quiet.add(ref);
    if (this.quiet.size > 200) this.quiet.delete(this.quiet.values().next().value);
    this._tx({ ref, ...body });
  }

  // ---- rooms ---------------------------------------------------------------------------------------

  _room(room) {
    let r = this.rooms.get(room);
    if (!r) {
      r = { lastSeq: null, joined: false, people: new Map(), typers: new Map(), readSent: 0, typedAt: 0 };
      this.rooms.set(room, r);
    }
    return r;
  }

  /** Joins (or, when its last seq is known, resumes) a room; now when connected, else at connect. */
  join(room) {
    this._room(room);
    if (!this.connected) return Promise.resolve(null);
    return new Promise((resolve, reject) => this._enter(room, (e, b) => (e ? reject(e) : resolve(b))));
  }

  _enter(room, done) {
    const r = this._room(room);
    r.from = r.lastSeq; // what the answer's replay follows
    const body = r.lastSeq === null ? { join: { room } } : { resume: { room, afterSeq: String(r.lastSeq) } };
    this._call(body, (e, b) => {
      if (!e) return done(null, b);
      if (e.code === 'unavailable' && this.rooms.has(room)) {
        const again = () => this.connected && this.rooms.has(room) && !this._room(room).joined && this._enter(room, () => {});
        this.setT(again, 2000);
      } else if (e.code !== 'disconnected' && e.code !== 'timeout') {
        this.rooms.delete(room); // not_found, forbidden, …: its queued messages cannot go out either
        for (const m of this.outbox(room)) {
          this.discard(m.clientId);
          this.emit('error', { code: e.code, message: e.message, room, clientId: m.clientId, failed: true });
        }
      }
      done(Object.assign(e, { room }));
    });
  }

  /** Opens (or finds) the direct-message room with `user`; resolves with the joined body. */
  openDm(user) {
    return this.request({ openDm: { user } });
  }

  leave(room) {
    const had = this.rooms.delete(room);
    if (had && this.connected) this._fire({ leave: { room } });
  }

  /** A page of older messages (seq < beforeSeq; 0 = the newest), ascending: {messages, hasMore}. */
  async history(room, beforeSeq = 0, limit = 50) {
    const h = await this.request({ history: { room, beforeSeq: String(num(beforeSeq)), limit } });
    return { room, messages: (h.messages ?? []).map(norm), hasMore: h.hasMore === true };
  }

  /** Who is online in `room`, and online + last seen of `users`; also updates the presence list. */
  async presence(room, users = []) {
    const s = await this.request({ presence: { room, users } });
    const r = this.rooms.get(room);
    if (r) {
      for (const u of s.users ?? []) r.people.set(u.user, { online: u.online === true, lastSeen: u.lastSeen });
      for (const u of s.online ?? []) r.people.set(u, { ...r.people.get(u), online: true });
      this._people(room);
    }
    return s;
  }

  _people(room, change = {}) {
    const r = this.rooms.get(room);
    const people = [...r.people].map(([user, p]) => ({ user, ...p }))
      .sort((a, b) => b.online - a.online || (a.user < b.user ? -1 : 1));
    this.emit('presence', { room, ...change, people });
  }

  /** Call on every keystroke; sends typing at most every 2 s. typing(room, false) when the input empties. */
  typing(room, active = true) {
    const r = this.rooms.get(room);
    if (!r?.joined || !this.connected) return;
    const t = this.now();
    if (active && t - r.typedAt < TYPING_EVERY_MS) return;
    if (!active && (!r.typedAt || t - r.typedAt > 5000)) return void (r.typedAt = 0);
    r.typedAt = active ? t : 0;
    this._fire({ typing: { room, active } });
  }

  /** Tells the others this user has read up to seq (only when it moved forward). */
  markRead(room, seq) {
    const r = this.rooms.get(room);
    seq = num(seq);
    if (!r?.joined || !this.connected || seq <= r.readSent) return;
    r.readSent = seq;
    this._fire({ read: { room, seq: String(seq) } });
  }

  _typing(room, user, active) {
    const r = this.rooms.get(room);
    if (!r) return;
    this.clearT(r.typers.get(user));
    const was = r.typers.delete(user);
    if (active) r.typers.set(user, this.setT(() => this._typing(room, user, false), TYPING_SHOWN_MS));
    if (active || was) this.emit('typing', { room, user, active, users: [...r.typers.keys()] });
  }

  // ---- sending and the outbox ----------------------------------------------------------------------

  /** Queues a message; returns its outbox entry {room, clientId, text, from, ts} (pending until 'ack'). */
  send(room, text, clientId = this.uuid()) {
    const e = { room, clientId, text, from: this.user, ts: new Date(this.now()).toISOString() };
    this._save([...this._load(), e]);
    if (!this.rooms.has(room)) this.join(room).catch(() => {});
    this._room(room).typedAt = 0; // the server clears our typing when the message arrives
    this._pump();
    return e;
  }

  /** An admin slash command ("/kick bob"): never queued (waits only for a join in progress); resolves with the reply body. */
  async command(room, text) {
    if (this.connected && this.rooms.has(room) && !this.rooms.get(room).joined) {
      await new Promise((resolve) => {
        const off = this.on('joined', (j) => j.room === room && done());
        const t = this.setT(() => done(), this.requestTimeoutMs);
        const done = () => (off(), this.clearT(t), resolve());
      });
    }
    return this.request({ send: { room, clientId: this.uuid(), text } });
  }

  /** Unsent messages, oldest first (of one room, or all). */
  outbox(room) {
    return this._load().filter((e) => room === undefined || e.room === room);
  }

  /** Drops a message from the outbox (e.g. the user discards a failed one). */
  discard(clientId) {
    this._save(this._load().filter((e) => e.clientId !== clientId));
  }

  _load() {
    if (this.mem) return this.mem;
    try {
      return JSON.parse(this.store?.getItem(this.key) ?? '[]') ?? [];
    } catch {
      return [];
    }
  }

  _save(list) {
    try {
      if (this.mem || !this.store) throw 0;
      if (list.length) this.store.setItem(this.key, JSON.stringify(list));
      else this.store.removeItem(this.key);
    } catch {
      this.mem = list; // storage full or missing: keep them in memory
    }
  }

  _pump() {
    if (!this.connected) return;
    for (const e of this._load()) {
      if (this.inflight.size >= this.window) return;
      const r = this.rooms.get(e.room);
      if (this.inflight.has(e.clientId) || (this.hold.get(e.clientId) ?? 0) > this.now()) continue;
      if (!r?.joined) continue;
      this.inflight.add(e.clientId);
      const ws = this.ws;
      this._call({ send: { room: e.room, clientId: e.clientId, text: e.text } }, (err, ack) => {
        if (this.ws !== ws) return; // lost: resent after the reconnect
        this.inflight.delete(e.clientId);
        if (!err) {
          this.hold.delete(e.clientId);
          this.discard(e.clientId);
          this.emit('ack', { ...ack, room: e.room, clientId: e.clientId, seq: num(ack.seq), duplicate: ack.duplicate === true });
        } else if (TRANSIENT.has(err.code)) {
          const wait = err.retryAfterMs || 1000;
          this.hold.set(e.clientId, this.now() + wait);
          this.setT(() => this._pump(), wait);
        } else {
          this.discard(e.clientId);
          this.emit('error', { code: err.code, message: err.message, room: e.room, clientId: e.clientId, failed: true });
        }
        this._pump();
      });
    }
  }

  // ---- frames from the server ----------------------------------------------------------------------

  _frame(f) {
    const ref = f.ref;
    const type = Object.keys(f).find((k) => k !== 'ref');
    const b = f[type] ?? {};
    const req = ref !== undefined && this.reqs.get(ref);
    if (req) {
      this.reqs.delete(ref);
      this.clearT(req.timer);
    }
    if (type === 'error') {
      if (req) return req.done(fail(b.code, b.message, { retryAfterMs: b.retryAfterMs ?? 0 }));
      if (ref !== undefined && this.quiet.delete(ref)) return;
      return this.emit('error', { code: b.code, message: b.message, retryAfterMs: b.retryAfterMs ?? 0 });
    }
    const room = b.room;
    const r = room !== undefined && this.rooms.get(room);
    switch (type) {
      case 'welcome':
        this._clear('connect');
        this.tries = 0;
        this.hb = (b.heartbeatSeconds || 15) * 1000;
        this._state('connected', { user: b.user, connectionId: b.connectionId, url: this.urls[this.ui % this.urls.length] });
        this._beat();
        for (const e of this._load()) this._room(e.room);
        for (const name of [...this.rooms.keys()]) this._enter(name, (e) => e && this._joinFailed(e));
        break;
      case 'joined':
      case 'resumed': {
        const rr = this._room(room);
        rr.joined = true;
        const afterSeq = rr.from;
        if (type === 'joined' && rr.lastSeq === null) rr.lastSeq = num(b.lastSeq);
        const online = new Set(b.online ?? []);
        for (const [u, p] of rr.people) if (!online.has(u)) rr.people.set(u, { ...p, online: false });
        for (const u of online) rr.people.set(u, { ...rr.people.get(u), online: true });
        this.emit('joined', {
          room, lastSeq: num(b.lastSeq), online: [...online], resumed: type === 'resumed',
          afterSeq: afterSeq ?? 0, replayed: b.replayed ?? 0, truncated: b.truncated === true,
        });
        this._people(room);
        this._pump();
        break;
      }
      case 'message': {
        const m = norm(b);
        if (!r) break; // not (or no longer) in this room
        if (r.lastSeq !== null && m.seq <= r.lastSeq) {
          this.dups++;
          break;
        }
        r.lastSeq = m.seq;
        this._typing(room, m.from, false);
        if (m.from === this.user && m.clientId && this.outbox().some((e) => e.clientId === m.clientId)) {
          this.discard(m.clientId); // stored: the ack may come later or be lost with the connection
        }
        this.emit('message', m);
        break;
      }
      case 'typing':
        if (r && b.user !== this.user) this._typing(room, b.user, b.active === true);
        break;
      case 'presence':
        if (r) {
          r.people.set(b.user, { online: b.online === true, lastSeen: b.lastSeen });
          if (b.online !== true) this._typing(room, b.user, false);
          this._people(room, { user: b.user, online: b.online === true, lastSeen: b.lastSeen });
        }
        break;
      case 'read':
        if (r) this.emit('read', { room, user: b.user, seq: num(b.seq) });
        break;
      case 'pong':
        this._clear('pong');
        break;
      case 'cleared':
        this.emit('cleared', { room, seq: num(b.seq) });
        break;
      case 'left':
        if (!req) this.rooms.delete(room); // the server took us out (e.g. kicked from the room)
        this.emit('left', { room });
        break;
      case 'notice':
        if (!req) this.emit('notice', b); // else the answer to a command: the caller shows it
        break;
      case 'ack':
      case 'history':
      case 'presenceStatus':
        break;
      default:
        this.emit('frame', f);
    }
    if (req) req.done(null, b);
  }

  _joinFailed(e) {
    if (e.code !== 'disconnected') this.emit('error', { code: e.code, message: e.message, room: e.room });
  }
}

/** A message with its int64 seq as a number and proto3 defaults filled in. */
function norm(m) {
  return { ...m, seq: num(m.seq), kind: m.kind || 'user', from: m.from ?? '' };
}

/**
 * The fallback when WebSocket cannot connect (a proxy that blocks upgrades), shaped like a WebSocket
 * for ChatClient (pass it as options.fallback; it is tried after two WebSocket attempts that never
 * opened). Server frames arrive over SSE: GET /api/events?token=T&room=R1&after=S1&ref=N1&room=R2&after=&ref=
 * (per room: replay after that seq, empty = a plain join; the ref of the join waiting for its answer),
 * each event's data one ServerFrame as over WebSocket, welcome first, then joined/resumed per room; a
 * last `close` event carries the close code a WebSocket would get (4003 kicked, 1001 shutdown). Client
 * frames go out as REST calls with Authorization: Bearer T: send = POST /api/rooms/R/messages
 * {clientId, text} -> {"ack":{…}}; history = GET /api/rooms/R/messages?beforeSeq=S&limit=N ->
 * {"history":{…}}; failures answer {"error":{…}}. A join reopens the stream with every room and the
 * last seq seen in each.
 */
export class SseSocket {
  constructor(wsUrl, token) {
    this.base = wsUrl.replace(/^ws/, 'http').replace(/\/ws(\?.*)?$/, '');
    this.token = token;
    this.readyState = 0;
    this.after = new Map(); // room -> last seq seen ('' = join)
    this.refs = new Map(); // room -> ref of the join or resume waiting for its answer
    this._open();
  }

  _open() {
    this.es?.close();
    const q = new URLSearchParams({ token: this.token });
    for (const [room, seq] of this.after) q.append('room', room), q.append('after', seq), q.append('ref', this.refs.get(room) ?? '');
    const es = (this.es = new EventSource(`${this.base}/api/events?${q}`));
    es.onopen = () => this.readyState || ((this.readyState = 1), this.onopen?.());
    es.addEventListener('close', (ev) => {
      let code = 1006;
      try {
        code = JSON.parse(ev.data).code;
      } catch {
        /* keep 1006 */
      }
      this.close(code);
    });
    es.onmessage = (ev) => {
      try {
        this._in(JSON.parse(ev.data));
      } catch {
        /* not JSON */
      }
    };
    es.onerror = () => this.close();
  }

  _in(f) {
    if (f.welcome) {
      if (this.welcomed) return; // a reopened stream says welcome again
      this.welcomed = true;
    }
    const j = f.joined ?? f.resumed;
    if (j) {
      if (!this.refs.has(j.room)) return; // a room we had: the reopen is not news
      f.ref = this.refs.get(j.room);
      this.refs.delete(j.room);
    }
    if (f.error && f.ref != null) {
      // A join or resume that was refused: stop asking for that room on every reopen.
      for (const [room, ref] of this.refs) if (ref === f.ref) this.refs.delete(room), this.after.delete(room);
    }
    if (f.message) this.after.set(f.message.room, f.message.seq);
    this.onmessage?.({ data: JSON.stringify(f) });
  }

  send(text) {
    const { ref, ...f } = JSON.parse(text);
    const [type] = Object.keys(f);
    const b = f[type];
    const reply = (body) => setTimeout(() => this.readyState === 1 && this.onmessage?.({ data: JSON.stringify({ ref, ...body }) }));
    if (type === 'ping') return reply({ pong: {} });
    if (type === 'join' || type === 'resume' || type === 'leave') {
      if (type === 'leave') this.after.delete(b.room), reply({ left: { room: b.room } });
      else this.refs.set(b.room, ref), this.after.set(b.room, b.afterSeq ?? '');
      clearTimeout(this.t);
      this.t = setTimeout(() => this.readyState === 1 && this._open()); // one reopen for many joins
      return;
    }
    const url = `${this.base}/api/rooms/${encodeURIComponent(b.room)}/messages`;
    const init = { headers: { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json' } };
    let res;
    if (type === 'send') res = fetch(url, { ...init, method: 'POST', body: JSON.stringify({ clientId: b.clientId, text: b.text }) });
    else if (type === 'history') res = fetch(`${url}?beforeSeq=${b.beforeSeq}&limit=${b.limit}`, init);
    else return reply({ error: { code: 'bad_request', message: `${type} needs a WebSocket connection` } });
    res.then((r) => r.json()).then(reply, () => reply({ error: { code: 'unavailable', message: 'network error' } }));
  }

  close(code = 1006) {
    if (this.readyState > 1) return;
    this.readyState = 3;
    this.es?.close();
    clearTimeout(this.t);
    this.onclose?.({ code });
  }
}
