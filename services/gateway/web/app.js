// The web chat page: dev sign-in, one room at a time, history, pending/sent marks.
import { ChatClient } from '/chat-client.js';

const $ = (id) => document.getElementById(id);
let client = null;
let room = null;
const shown = new Map(); // clientId or seq key -> <li>

function showError(e) { $('error').textContent = e ? `${e.code ?? 'error'}: ${e.message}` : ''; }

function render(msg, pending = false) {
  const key = msg.clientId ? `c:${msg.clientId}` : `s:${msg.seq}`;
  let li = shown.get(key);
  if (!li) {
    li = document.createElement('li');
    shown.set(key, li);
    const list = $('messages');
    const after = [...list.children].find((x) => Number(x.dataset.seq || Infinity) > Number(msg.seq || Infinity));
    list.insertBefore(li, after ?? null);
  }
  li.className = pending ? 'pending' : '';
  if (msg.seq) li.dataset.seq = msg.seq;
  li.replaceChildren();
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = msg.from || 'system';
  const text = document.createElement('span');
  text.textContent = msg.text;
  const seq = document.createElement('span');
  seq.className = 'seq';
  seq.textContent = pending ? 'sending…' : `#${msg.seq}`;
  li.append(from, text, seq);
  li.scrollIntoView({ block: 'nearest' });
}

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError(null);
  const res = await fetch('/api/login', { method: 'POST', body: JSON.stringify({ user: $('user').value }) });
  const body = await res.json();
  if (!res.ok) return showError(body.error);
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  client = new ChatClient({ url: `${scheme}://${location.host}/ws`, token: body.token });
  client.addEventListener('state', (e) => {
    const s = $('state');
    s.className = `state ${e.detail.state}`;
    s.textContent = e.detail.retryInMs ? `${e.detail.state} in ${Math.round(e.detail.retryInMs / 1000)} s` : e.detail.state;
  });
  client.addEventListener('message', (e) => { if (e.detail.room === room) render(e.detail); });
  client.addEventListener('error', (e) => showError(e.detail));
  client.connect();
  $('login').hidden = true;
  $('chat').hidden = false;
});

$('join').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError(null);
  try {
    room = $('room').value;
    const joined = await client.join(room);
    $('messages').replaceChildren();
    shown.clear();
    $('online').textContent = `online: ${(joined.online || []).join(', ')}`;
    const page = await client.history(room);
    for (const m of page.messages || []) { client.accept(m); render(m); }
  } catch (e) { showError(e); }
});

$('older').addEventListener('click', async () => {
  const first = $('messages').firstElementChild;
  if (!room || !first) return;
  try {
    const page = await client.history(room, first.dataset.seq);
    for (const m of page.messages || []) render(m);
  } catch (e) { showError(e); }
});

$('send').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (!room) return showError({ message: 'join a room first' });
  const text = $('text').value;
  const clientId = crypto.randomUUID();
  render({ clientId, text, from: $('user').value }, true);
  $('text').value = '';
  try {
    const ack = await client.send(room, text, clientId);
    render({ clientId, text, from: $('user').value, seq: ack.seq });
  } catch (e) { showError(e); }
});
