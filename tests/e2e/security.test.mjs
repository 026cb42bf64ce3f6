// Security, abuse limits and administration end to end (issue 5): ONE table of cases, each row an input
// and the answer it must get (an error code and the echoed ref, an HTTP status of the upgrade, a close
// code, or what admin commands must do), run against real chat-messages, chat-presence and chat-gateway
// replicas on a throwaway PostgreSQL + Redis:
//   gateway-0, gateway-1  the two replicas of the suite (MAX_CONNECTIONS_PER_USER=4 so the cap is cheap)
//   gateway-2             a third replica with MAX_CONNECTIONS=3 and ALLOWED_ORIGINS=https://app.example.com
// PRESENCE_TTL_SECONDS=3 on presence and the gateways, so /stats (gateway heartbeats every TTL/3) is fresh.
//
// After the table: a bystander on each replica, connected before the first row, still chats normally
// across replicas; PostgreSQL holds none of the sends that were refused (every send is recorded in a
// ledger with the answers it got: refused ones must be absent, acked ones present, admin commands never
// stored); and no process exited.
//
// Every row prints one line: PASS/FAIL, its input, what it expected and what it got. Waits are generous
// (ASan builds are 5-10x slower) and no absolute time is asserted.
//
// Run: CHAT_BIN_DIR=build/release/bin node --test tests/e2e/security.test.mjs
// Knobs: E2E_SECURITY_ROWS (comma list of row-id prefixes to run, e.g. "auth.,mute."), E2E_TIMEOUT_MS (30000
// per reply), E2E_SECURITY_WAIT_MS (90000, for things behind timers: mute expiry, heartbeats, restarts),
// E2E_KEEP=1 keeps the logs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import WebSocket from 'ws';
import { startStack, addGateway } from './lib/stack.mjs';
import { ChatClient, DEFAULT_TIMEOUT_MS, sleep } from './lib/client.mjs';

const T = DEFAULT_TIMEOUT_MS; // one reply
const LONG = Number(process.env.E2E_SECURITY_WAIT_MS || 90_000);
const ROW_TIMEOUT_MS = 10 * 60_000;
const ONLY = (process.env.E2E_SECURITY_ROWS || '').split(',').map((s) => s.trim()).filter(Boolean);

const CAP_PER_USER = 4;
const GW2_MAX_CONNECTIONS = 3;
const GW2_ORIGIN = 'https://app.example.com';
const TTL_S = 3;
const TEXT_LIMIT = 4096; // TEXT_LIMIT_BYTES default
const FRAME_LIMIT = 65536; // FRAME_LIMIT_BYTES default
// Pipelined rows send this many frames past a bucket's burst: enough that a slow (ASan) gateway still
// refuses some before the bucket refills, and few enough (first refusal + 9 strikes < 10) that the flood
// cut-off does not end the connection.
const EXTRA = 10;
const SEND_BURST = 20;
const JOIN_BURST = 20;
const TYPING_BURST = 10;
const READ_BURST = 30;
const QUERY_BURST = 30;
const FLOOD_CLOSE_AFTER = 10;

const PUBLIC_ROOMS = ['general', 'random', 'lobby', 'ops', 'frames', 'rl', 'flood', 'polite', 'buckets', 'cmd',
  'mute', 'kick', 'clr', 'rr'];
const SECRET = 'secret'; // private, member: carol (inserted with psql)

let stack;
let G0;
let G1;
let G2;
let failed = false;
const longLived = []; // clients of the whole run: bystanders, admins, listeners
let rowClients = null; // clients opened by the running row; closed when it ends
const results = [];
const shared = {}; // values one row leaves for a later one (the DM room id)
let byst = []; // one bystander per replica
let adm0; // admin 'root' on gateway-0
let adm1; // admin 'root' on gateway-1

// ---- helpers -------------------------------------------------------------------------------------------

const b64url = (s) => Buffer.from(s).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** A JWT with any header and claims; HMAC-signed with `secret` and `hash` (none: empty signature). */
function rawJwt(header, claims, secret, hash = 'sha256') {
  const h = b64url(JSON.stringify(header));
  const p = b64url(JSON.stringify(claims));
  const sig = secret === null ? '' : crypto.createHmac(hash, secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    }),
  ]);
}

/**
 * A WebSocket upgrade by hand: resolves with {http, code, protocol} where `code` is error.code of a JSON
 * refusal and `protocol` the Sec-WebSocket-Protocol the server selected. A 101 socket is closed at once.
 */
function upgrade(g, { path = '/ws', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: g.httpPort,
      path,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
        ...headers,
      },
      timeout: T,
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ http: res.statusCode, protocol: res.headers['sec-websocket-protocol'] ?? null });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        let code = null;
        try {
          code = JSON.parse(body).error?.code ?? null;
        } catch {
          code = `(not JSON: ${body.slice(0, 80)})`;
        }
        resolve({ http: res.statusCode, code });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`upgrade ${path}: no answer in ${T} ms`)));
    req.on('error', reject);
    req.end();
  });
}

const tokenQuery = (tok) => `/ws?token=${encodeURIComponent(tok)}`;

function track(c, user, g) {
  c.user = user;
  c.gw = g.name;
  (rowClients ?? longLived).push(c);
  return c;
}

/** A client of `user` on gateway `g` (welcome received); closed at the end of the row that opened it. */
async function connect(user, g, { admin = false } = {}) {
  const c = await ChatClient.connect(g.wsUrl, stack.token(user, { admin }), { name: `${user}@${g.name}` });
  return track(c, user, g);
}

/** Like connect, with the token in a Sec-WebSocket-Protocol entry next to chat.v1. */
function connectWithSubprotocol(user, g) {
  const ws = new WebSocket(g.wsUrl, ['chat.v1', `bearer.${stack.token(user)}`], { handshakeTimeout: T });
  const c = new ChatClient(ws, `${user}@${g.name}(subprotocol)`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${c.name}: no welcome within ${T} ms`)), T);
    c.welcomed = new Promise((res) => (c._onWelcome = res));
    c.welcomed.then(() => {
      clearTimeout(timer);
      resolve(track(c, user, g));
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      ws.terminate();
      reject(new Error(`${c.name}: upgrade refused with HTTP ${res.statusCode}`));
    });
    ws.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`${c.name}: closed (${code}) before welcome`));
    });
  });
}

const join = (c, room) => c.call({ join: { room } }, 'joined');

async function joined(user, g, rooms = [], opts = {}) {
  const c = await connect(user, g, opts);
  for (const r of rooms) await join(c, r);
  return c;
}

/** True when the connection still answers a ping. */
async function alive(c) {
  if (!c.isOpen) return false;
  try {
    return !!(await c.request({ ping: {} })).pong;
  } catch {
    return false;
  }
}

// The ledger of every send: sender + clientId -> the answers it got ('ack', an error code, 'notice',
// 'stats', 'none' when the connection closed first). Checked against PostgreSQL after the table.
const ledger = new Map();
let cidSeq = 0;
const cid = (prefix) => `${prefix}-${++cidSeq}`;
const REFUSALS = new Set(['bad_request', 'forbidden', 'not_found', 'rate_limited', 'too_large', 'muted']);

function note(sender, clientId, reply, text) {
  if (!clientId) return;
  const key = `${sender}\t${clientId}`;
  const e = ledger.get(key) ?? { sender, clientId, text: String(text).slice(0, 40), answers: [] };
  let a = 'none';
  if (reply?.ack) a = 'ack';
  else if (reply?.error) a = reply.error.code;
  else if (reply?.notice) a = 'notice';
  else if (reply?.stats) a = 'stats';
  else if (reply) a = `other:${Object.keys(reply).join(',')}`;
  e.answers.push(a);
  ledger.set(key, e);
}

/** One send; resolves with the reply frame (ack or error), recorded in the ledger. */
async function send(c, room, text, clientId = cid(c.user)) {
  let reply = null;
  try {
    reply = await c.request({ send: { room, clientId, text } });
    return reply;
  } finally {
    note(c.user, clientId, reply, text);
  }
}

/** Many sends at once (pipelined); resolves with one reply frame or null (closed first) per send. */
async function sendMany(c, room, n, prefix) {
  const ids = Array.from({ length: n }, () => cid(prefix));
  const settled = await Promise.allSettled(ids.map((clientId) => c.request({ send: { room, clientId, text: `${prefix} ${clientId}` } })));
  return settled.map((s, k) => {
    const reply = s.status === 'fulfilled' ? s.value : null;
    note(c.user, ids[k], reply, prefix);
    return reply;
  });
}

/** The error code and echoed ref of a reply, and whether the connection still answers a ping. */
async function answer(c, reply) {
  return { error: reply.error?.code ?? null, ref: reply.ref ?? null, open: await alive(c) };
}

/** Frames with refs sent without waiting for replies, for bodies that answer only on error. */
function fire(c, frames) {
  for (const f of frames) c.sendRaw(f);
}

/** Error frames in the inbox with a ref in refs. */
const errorsFor = (c, refs) => c.inbox.filter((f) => f.error && refs.includes(Number(f.ref)));

/** Sends a slash command (or any text) as `c` and resolves with the reply frame. */
const command = (c, room, text) => send(c, room, text, cid(`cmd-${c.user}`));

async function waitCloseCode(c, ms = T) {
  const info = await withTimeout(c.closed, ms, `close of ${c.name}`);
  return info.code;
}

async function gatewayConnections(g) {
  return stack.metric(g.name, 'chat_connections');
}

async function waitGatewayConnections(g, n) {
  const deadline = Date.now() + LONG;
  let v;
  while (Date.now() < deadline) {
    v = await gatewayConnections(g);
    if (v === n) return;
    await sleep(100);
  }
  throw new Error(`${g.name}: chat_connections stayed ${v}, expected ${n}`);
}

async function waitMessagesUp() {
  // Every replica is ready again only once its stream to messages is back.
  await stack.waitAllReady(LONG);
}

// ---- the table -------------------------------------------------------------------------------------------
// row(id, input, expect, run): run() resolves with `got`; every key of `expect` must deep-equal got[key].
// Keys of `got` that are not in `expect` are details, printed only.

const ROWS = [];
const row = (id, input, expect, run) => ROWS.push({ id, input, expect, run });

// -- authentication: the upgrade is refused with 401 {"error":{"code":"unauthorized"}} before any frame
const claims = (sub, extra = {}) => ({ sub, exp: now() + 3600, ...extra });
const UNAUTH = { http: 401, code: 'unauthorized' };

row('auth.missing', 'GET /ws without any token', UNAUTH, () => upgrade(G0));
row('auth.empty', 'GET /ws?token= (empty)', UNAUTH, () => upgrade(G0, { path: '/ws?token=' }));
row('auth.garbage', '?token=not.a.jwt', UNAUTH, () => upgrade(G0, { path: tokenQuery('not.a.jwt') }));
row('auth.forged', 'HS256 token signed with another secret', UNAUTH,
  () => upgrade(G0, { path: tokenQuery(rawJwt({ alg: 'HS256', typ: 'JWT' }, claims('mallet'), 'not-the-secret-0123456789')) }));
row('auth.tampered', 'valid token with its payload swapped for one claiming admin:true (signature kept)', UNAUTH, () => {
  const [h, , s] = stack.token('mallet').split('.');
  return upgrade(G0, { path: tokenQuery(`${h}.${b64url(JSON.stringify(claims('mallet', { admin: true })))}.${s}`) });
});
row('auth.expired', 'exp one hour ago', UNAUTH,
  () => upgrade(G0, { path: tokenQuery(stack.token('oldie', { exp: now() - 3600 })) }));
row('auth.skew', 'exp 5 s ago (inside JWT_CLOCK_SKEW_SECONDS=30)', { http: 101 },
  () => upgrade(G0, { path: tokenQuery(stack.token('skewy', { exp: now() - 5 })) }));
row('auth.alg-none', 'header {"alg":"none"}, valid claims, empty signature', UNAUTH,
  () => upgrade(G0, { path: tokenQuery(rawJwt({ alg: 'none', typ: 'JWT' }, claims('mallet', { admin: true }), null)) }));
row('auth.alg-none-signed', 'header {"alg":"none"} with an HS256 signature of the right secret', UNAUTH,
  () => upgrade(G0, { path: tokenQuery(rawJwt({ alg: 'none', typ: 'JWT' }, claims('mallet'), stack.secret)) }));
row('auth.wrong-alg', 'HS512 token signed with the right secret', UNAUTH,
  () => upgrade(G0, { path: tokenQuery(rawJwt({ alg: 'HS512', typ: 'JWT' }, claims('mallet'), stack.secret, 'sha512')) }));
row('auth.nbf-future', 'nbf one hour ahead', UNAUTH,
  () => upgrade(G0, { path: tokenQuery(rawJwt({ alg: 'HS256', typ: 'JWT' }, claims('early', { nbf: now() + 3600 }), stack.secret)) }));
row('auth.no-sub', 'valid signature, no sub', UNAUTH,
  () => upgrade(G0, { path: tokenQuery(rawJwt({ alg: 'HS256', typ: 'JWT' }, { exp: now() + 3600 }, stack.secret)) }));
row('auth.no-exp', 'valid signature, no exp', UNAUTH,
  () => upgrade(G0, { path: tokenQuery(rawJwt({ alg: 'HS256', typ: 'JWT' }, { sub: 'forever' }, stack.secret)) }));
row('auth.bad-sub', 'valid signature, sub "a/b" (not a user id)', UNAUTH,
  () => upgrade(G0, { path: tokenQuery(stack.token('a/b')) }));
row('auth.query', 'valid token in ?token=', { http: 101 }, () => upgrade(G0, { path: tokenQuery(stack.token('qtok')) }));
row('auth.bearer', 'valid token in Authorization: Bearer', { http: 101 },
  () => upgrade(G0, { headers: { Authorization: `Bearer ${stack.token('btok')}` } }));
row('auth.bearer-forged', 'forged token in Authorization: Bearer', UNAUTH,
  () => upgrade(G0, { headers: { Authorization: `Bearer ${rawJwt({ alg: 'HS256' }, claims('mallet'), 'wrong-secret-0123456789abcdef')}` } }));
row('auth.subprotocol', 'Sec-WebSocket-Protocol: chat.v1, bearer.<token> (raw upgrade, then a real client)',
  { http: 101, protocol: 'chat.v1', welcomeUser: 'sptok', clientProtocol: 'chat.v1' }, async () => {
    const raw = await upgrade(G0, { headers: { 'Sec-WebSocket-Protocol': `chat.v1, bearer.${stack.token('sptok')}` } });
    const c = await connectWithSubprotocol('sptok', G0);
    return { ...raw, welcomeUser: c.welcome.user, clientProtocol: c.ws.protocol };
  });
row('auth.subprotocol-forged', 'Sec-WebSocket-Protocol: chat.v1, bearer.<forged token>', UNAUTH,
  () => upgrade(G0, { headers: { 'Sec-WebSocket-Protocol': `chat.v1, bearer.${rawJwt({ alg: 'HS256' }, claims('mallet'), 'wrong-secret-0123456789abcdef')}` } }));

// -- Origin allow-list (default: the gateway's own Host, and localhost / 127.0.0.1 on any port)
const FORBIDDEN_ORIGIN = { http: 403, code: 'forbidden' };
row('origin.foreign', 'Origin: https://evil.example (valid token)', FORBIDDEN_ORIGIN,
  () => upgrade(G0, { path: tokenQuery(stack.token('orig1')), headers: { Origin: 'https://evil.example' } }));
row('origin.null', 'Origin: null (sandboxed page)', FORBIDDEN_ORIGIN,
  () => upgrade(G0, { path: tokenQuery(stack.token('orig2')), headers: { Origin: 'null' } }));
row('origin.own-host', 'Host: chat.example.com, Origin: https://chat.example.com', { http: 101 },
  () => upgrade(G0, { path: tokenQuery(stack.token('orig3')), headers: { Host: 'chat.example.com', Origin: 'https://chat.example.com' } }));
row('origin.other-host', 'Host: chat.example.com, Origin: https://chat.example.com.evil.example', FORBIDDEN_ORIGIN,
  () => upgrade(G0, { path: tokenQuery(stack.token('orig4')), headers: { Host: 'chat.example.com', Origin: 'https://chat.example.com.evil.example' } }));
row('origin.localhost', 'Origin: http://localhost:3000', { http: 101 },
  () => upgrade(G0, { path: tokenQuery(stack.token('orig5')), headers: { Origin: 'http://localhost:3000' } }));
row('origin.loopback', 'Origin: http://127.0.0.1:5173', { http: 101 },
  () => upgrade(G0, { path: tokenQuery(stack.token('orig6')), headers: { Origin: 'http://127.0.0.1:5173' } }));
row('origin.list-allowed', `gateway-2 (ALLOWED_ORIGINS=${GW2_ORIGIN}): Origin: ${GW2_ORIGIN}`, { http: 101 },
  () => upgrade(G2, { path: tokenQuery(stack.token('orig7')), headers: { Origin: GW2_ORIGIN } }));
row('origin.list-replaces-default', 'gateway-2 (allow-list set): Origin: http://localhost:3000', FORBIDDEN_ORIGIN,
  () => upgrade(G2, { path: tokenQuery(stack.token('orig8')), headers: { Origin: 'http://localhost:3000' } }));

// -- connection caps
row('cap.per-user', `user opens ${CAP_PER_USER} connections on gateway-0 (MAX_CONNECTIONS_PER_USER=${CAP_PER_USER}), one more there, then one on gateway-1`,
  { opened: CAP_PER_USER, http: 429, code: 'rate_limited', firstStillOpen: true, otherGatewayWelcome: 'capper' }, async () => {
    const cs = [];
    for (let i = 0; i < CAP_PER_USER; i++) cs.push(await connect('capper', G0));
    const extra = await upgrade(G0, { path: tokenQuery(stack.token('capper')) });
    const other = await connect('capper', G1); // the cap is per gateway
    return { opened: cs.length, ...extra, firstStillOpen: await alive(cs[0]), otherGatewayWelcome: other.welcome.user };
  });
row('cap.slot-freed', `same user: open ${CAP_PER_USER} on gateway-0, close one, connect again`, { refusedBefore: 429, reconnected: true }, async () => {
  const cs = [];
  for (let i = 0; i < CAP_PER_USER; i++) cs.push(await connect('capper2', G0));
  const before = await upgrade(G0, { path: tokenQuery(stack.token('capper2')) });
  await cs[0].close();
  const deadline = Date.now() + LONG;
  let last = null;
  while (Date.now() < deadline) {
    try {
      await connect('capper2', G0);
      return { refusedBefore: before.http, reconnected: true };
    } catch (err) {
      last = err.message;
      await sleep(100);
    }
  }
  return { refusedBefore: before.http, reconnected: false, last };
});
row('cap.per-gateway', `gateway-2 (MAX_CONNECTIONS=${GW2_MAX_CONNECTIONS}, its bystander holds 1): two more users, then a fourth user`,
  { opened: GW2_MAX_CONNECTIONS - 1, http: 429, code: 'rate_limited', bystanderOpen: true }, async () => {
    await waitGatewayConnections(G2, 1); // only the bystander (earlier rows' upgrades are gone)
    const cs = [];
    for (let i = 0; i < GW2_MAX_CONNECTIONS - 1; i++) cs.push(await connect(`gwcap${i}`, G2));
    const extra = await upgrade(G2, { path: tokenQuery(stack.token('gwcap-extra')) });
    return { opened: cs.length, ...extra, bystanderOpen: await alive(byst[2]) };
  });

// -- frames: bad input gets an error frame (ref echoed where the frame had one) or a close code
const BAD = (ref) => ({ error: 'bad_request', ref, open: true });
const rawError = async (user, data, opts) => {
  const c = await connect(user, G0);
  c.ws.send(data, opts);
  const f = await c.waitFor((x) => x.error, T, 'error frame');
  return { error: f.error.code, ref: f.ref ?? null, open: await alive(c) };
};
const frameError = async (user, frame, rooms = []) => {
  const c = await joined(user, G0, rooms);
  return answer(c, await c.request(frame));
};
row('frame.malformed-json', 'text frame {"ref":1,"join":', BAD(null), () => rawError('f-mal', '{"ref":1,"join":'));
row('frame.not-json', 'text frame hello', BAD(null), () => rawError('f-txt', 'hello'));
row('frame.json-array', 'text frame [1,2,3]', BAD(null), () => rawError('f-arr', '[1,2,3]'));
row('frame.no-body', '{"ref":5}', BAD(5), () => frameError('f-nob', { ref: 5 }));
row('frame.two-bodies', '{"ref":6,"join":{"room":"frames"},"ping":{}}', BAD(6),
  () => frameError('f-two', { ref: 6, join: { room: 'frames' }, ping: {} }));
row('frame.wrong-type-room', '{"ref":7,"join":{"room":12}}', BAD(7), () => frameError('f-typ', { ref: 7, join: { room: 12 } }));
row('frame.wrong-type-text', '{"ref":8,"send":{"room":"frames","clientId":"x","text":{"a":1}}}', BAD(8),
  () => frameError('f-typ2', { ref: 8, send: { room: 'frames', clientId: 'x', text: { a: 1 } } }, ['frames']));
row('frame.wrong-type-body', '{"ref":9,"join":"frames"}', BAD(9), () => frameError('f-typ3', { ref: 9, join: 'frames' }));
row('frame.unknown-body', '{"ref":10,"dance":{}} (unknown fields ignored: no body)', BAD(10),
  () => frameError('f-unk', { ref: 10, dance: {} }));
row('frame.unknown-room', '{"ref":11,"join":{"room":"nosuchroom"}}', { error: 'not_found', ref: 11, open: true },
  () => frameError('f-nf', { ref: 11, join: { room: 'nosuchroom' } }));
row('frame.bad-room-name', '{"ref":12,"join":{"room":"no spaces!"}}', BAD(12), () => frameError('f-brn', { ref: 12, join: { room: 'no spaces!' } }));
row('frame.room-name-too-long', 'join a room of 65 characters', BAD(13), () => frameError('f-long', { ref: 13, join: { room: 'r'.repeat(65) } }));
row('frame.send-without-join', '{"ref":14,"send":{"room":"frames",...}} before joining', { error: 'forbidden', ref: 14, open: true }, async () => {
  const c = await connect('f-nj', G0);
  const id = cid('f-nj');
  const r = await c.request({ ref: 14, send: { room: 'frames', clientId: id, text: 'sneaky' } });
  note('f-nj', id, r, 'sneaky');
  return answer(c, r);
});
row('frame.typing-without-join', '{"ref":15,"typing":{"room":"frames","active":true}} before joining', { error: 'forbidden', ref: 15, open: true },
  () => frameError('f-tnj', { ref: 15, typing: { room: 'frames', active: true } }));
row('frame.read-without-join', '{"ref":16,"read":{"room":"frames","seq":"1"}} before joining', { error: 'forbidden', ref: 16, open: true },
  () => frameError('f-rnj', { ref: 16, read: { room: 'frames', seq: '1' } }));
row('frame.leave-not-joined', '{"ref":17,"leave":{"room":"frames"}} before joining', { error: 'not_found', ref: 17, open: true },
  () => frameError('f-lnj', { ref: 17, leave: { room: 'frames' } }));
row('frame.no-client-id', 'send without clientId (joined)', BAD(18),
  () => frameError('f-ncid', { ref: 18, send: { room: 'frames', text: 'no id' } }, ['frames']));
row('frame.empty-text', 'send with text "" (joined)', { error: 'bad_request', open: true }, async () => {
  const c = await joined('f-empty', G0, ['frames']);
  return answer(c, await send(c, 'frames', ''));
});
row('frame.negative-seq', '{"ref":19,"resume":{"room":"frames","afterSeq":"-1"}}', BAD(19),
  () => frameError('f-neg', { ref: 19, resume: { room: 'frames', afterSeq: '-1' } }));
row('frame.text-too-large', `send of ${TEXT_LIMIT + 1} ASCII bytes`, { error: 'too_large', open: true }, async () => {
  const c = await joined('f-big', G0, ['frames']);
  return answer(c, await send(c, 'frames', 'x'.repeat(TEXT_LIMIT + 1)));
});
row('frame.text-too-large-utf8', `send of ${TEXT_LIMIT / 2 + 1} x "é" (${TEXT_LIMIT + 2} bytes, fewer characters than the limit)`,
  { error: 'too_large', open: true }, async () => {
    const c = await joined('f-big8', G0, ['frames']);
    return answer(c, await send(c, 'frames', 'é'.repeat(TEXT_LIMIT / 2 + 1)));
  });
row('frame.text-at-limit', `send of exactly ${TEXT_LIMIT} bytes (accepted)`, { ack: true, open: true }, async () => {
  const c = await joined('f-edge', G0, ['frames']);
  const r = await send(c, 'frames', `${'é'.repeat(TEXT_LIMIT / 2 - 2)}abcd`);
  return { ack: !!r.ack, error: r.error?.code, open: await alive(c) };
});
row('frame.frame-too-large', `text frame over ${FRAME_LIMIT} bytes (a valid send frame of ~${FRAME_LIMIT + 4400 + 60})`, { close: 1009 }, async () => {
  const c = await connect('f-huge', G0);
  c.sendRaw(JSON.stringify({ ref: 1, send: { room: 'frames', clientId: 'huge', text: 'y'.repeat(FRAME_LIMIT + 4400) } }));
  return { close: await waitCloseCode(c) };
});
row('frame.invalid-utf8', 'text frame with bytes 7b ff fe 7d', { close: 1007 }, async () => {
  const c = await connect('f-utf8', G0);
  c.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
  return { close: await waitCloseCode(c) };
});
row('frame.binary', 'binary frame holding {"ref":99,"ping":{}}, then a ping', { ...BAD(null), interpreted: false }, async () => {
  const got = await rawError('f-bin', Buffer.from('{"ref":99,"ping":{}}'), { binary: true });
  const c = rowClients.at(-1);
  return { ...got, interpreted: c.inbox.some((f) => Number(f.ref) === 99) };
});

// -- rates (per connection; each kind its own bucket)
row('rate.send-burst', `${SEND_BURST + EXTRA} sends pipelined on a fresh connection`,
  { burstAcked: SEND_BURST, someRateLimited: true, retryAfterMsPositive: true, open: true }, async () => {
    const c = await joined('rl-user', G0, ['rl']);
    const replies = await sendMany(c, 'rl', SEND_BURST + EXTRA, 'rl');
    const limited = replies.filter((r) => r?.error?.code === 'rate_limited');
    return {
      burstAcked: replies.slice(0, SEND_BURST).filter((r) => r?.ack).length,
      someRateLimited: limited.length > 0,
      retryAfterMsPositive: limited.length > 0 && limited.every((r) => Number(r.error.retryAfterMs) > 0),
      open: await alive(c),
      acked: replies.filter((r) => r?.ack).length,
      rateLimited: limited.length,
      other: replies.filter((r) => !r?.ack && r?.error?.code !== 'rate_limited').map((r) => r?.error?.code ?? 'none'),
    };
  });
row('rate.flood', `200 sends pipelined, ignoring retryAfterMs (FLOOD_CLOSE_AFTER=${FLOOD_CLOSE_AFTER})`,
  { warnedFirst: true, close: 1008 }, async () => {
    const c = await joined('flooder', G0, ['flood']);
    const replies = await sendMany(c, 'flood', 200, 'flood');
    const code = await waitCloseCode(c);
    return {
      warnedFirst: replies.some((r) => r?.error?.code === 'rate_limited'),
      close: code,
      acked: replies.filter((r) => r?.ack).length,
      rateLimited: replies.filter((r) => r?.error?.code === 'rate_limited').length,
      unanswered: replies.filter((r) => r === null).length,
    };
  });
row('rate.polite', `${SEND_BURST} sends, then 15 more each waiting the retryAfterMs it is given`,
  { allAcked: true, open: true }, async () => {
    const c = await joined('polite-user', G0, ['polite']);
    const first = await sendMany(c, 'polite', SEND_BURST, 'polite');
    let acked = first.filter((r) => r?.ack).length;
    let limited = 0;
    for (let i = 0; i < 15; i++) {
      const id = cid('polite');
      for (let attempt = 0; attempt < 100; attempt++) {
        const r = await send(c, 'polite', `polite ${id}`, id);
        if (r.ack) {
          acked++;
          break;
        }
        if (r.error?.code !== 'rate_limited') throw new Error(`polite send: ${JSON.stringify(r)}`);
        limited++;
        await sleep(Number(r.error.retryAfterMs) + 20);
      }
    }
    return { allAcked: acked === SEND_BURST + 15, open: await alive(c), acked, rateLimitedAnswers: limited };
  });
row('rate.join-bucket', `${JOIN_BURST + EXTRA} pipelined join/resume/openDm frames (one bucket, 5/s burst ${JOIN_BURST})`,
  { burstNotLimited: JOIN_BURST, someLimitedAfter: true, open: true }, async () => {
    const c = await connect('jb-user', G0);
    const frames = [];
    for (let i = 0; i < JOIN_BURST + EXTRA; i++) {
      if (i % 3 === 0) frames.push({ join: { room: `nope-${i}` } });
      else if (i % 3 === 1) frames.push({ resume: { room: 'buckets', afterSeq: '0' } });
      else frames.push({ openDm: { user: 'jb-peer' } });
    }
    const replies = await Promise.all(frames.map((f) => c.request(f)));
    const limited = (r) => r.error?.code === 'rate_limited';
    return {
      burstNotLimited: replies.slice(0, JOIN_BURST).filter((r) => !limited(r)).length,
      someLimitedAfter: replies.slice(JOIN_BURST).some(limited),
      open: await alive(c),
      answers: [...new Set(replies.map((r) => r.error?.code ?? Object.keys(r).find((k) => k !== 'ref')))],
    };
  });
row('rate.typing-bucket', `${TYPING_BURST + EXTRA} typing frames with refs in a joined room (5/s burst ${TYPING_BURST}; success is silent)`,
  { burstErrors: 0, someLimitedAfter: true, open: true }, async () => {
    const c = await joined('tb-user', G0, ['buckets']);
    const n = TYPING_BURST + EXTRA;
    fire(c, Array.from({ length: n }, (_, i) => ({ ref: 1000 + i, typing: { room: 'buckets', active: i % 2 === 0 } })));
    const open = await alive(c); // the ping's answer comes after every synchronous refusal
    const refs = (from, to) => Array.from({ length: to - from }, (_, i) => 1000 + from + i);
    return {
      burstErrors: errorsFor(c, refs(0, TYPING_BURST)).length,
      someLimitedAfter: errorsFor(c, refs(TYPING_BURST, n)).some((f) => f.error.code === 'rate_limited'),
      open,
    };
  });
row('rate.read-bucket', `${READ_BURST + EXTRA} read frames with refs in a joined room (10/s burst ${READ_BURST}; success is silent)`,
  { burstErrors: 0, someLimitedAfter: true, open: true }, async () => {
    const c = await joined('rb-user', G0, ['buckets']);
    const n = READ_BURST + EXTRA;
    fire(c, Array.from({ length: n }, (_, i) => ({ ref: 2000 + i, read: { room: 'buckets', seq: '1' } })));
    const open = await alive(c);
    const refs = (from, to) => Array.from({ length: to - from }, (_, i) => 2000 + from + i);
    return {
      burstErrors: errorsFor(c, refs(0, READ_BURST)).length,
      someLimitedAfter: errorsFor(c, refs(READ_BURST, n)).some((f) => f.error.code === 'rate_limited'),
      open,
    };
  });
row('rate.query-bucket', `${QUERY_BURST + EXTRA} pipelined history and presence queries (one bucket, 10/s burst ${QUERY_BURST})`,
  { burstAnswered: QUERY_BURST, someLimitedAfter: true, open: true }, async () => {
    const c = await joined('qb-user', G0, ['buckets']);
    const frames = Array.from({ length: QUERY_BURST + EXTRA }, (_, i) => (i % 2 === 0
      ? { history: { room: 'buckets', limit: 5 } }
      : { presence: { room: 'buckets' } }));
    const replies = await Promise.all(frames.map((f) => c.request(f)));
    return {
      burstAnswered: replies.slice(0, QUERY_BURST).filter((r) => r.history || r.presenceStatus).length,
      someLimitedAfter: replies.slice(QUERY_BURST).some((r) => r.error?.code === 'rate_limited'),
      open: await alive(c),
      burstOther: replies.slice(0, QUERY_BURST).filter((r) => !r.history && !r.presenceStatus).map((r) => JSON.stringify(r).slice(0, 120)),
    };
  });
row('rate.buckets-independent', `join bucket exhausted (a join, then ${JOIN_BURST - 1 + EXTRA} bad joins), then at once: history, send, typing, read`,
  { joinLimited: true, history: true, send: 'ack', typingOrReadErrors: 0 }, async () => {
    const c = await joined('ib-user', G0, ['buckets']);
    const bad = await Promise.all(Array.from({ length: JOIN_BURST - 1 + EXTRA }, () => c.request({ join: { room: 'bad name' } })));
    const h = await c.request({ history: { room: 'buckets', limit: 1 } });
    const s = await send(c, 'buckets', 'still allowed to talk');
    fire(c, [{ ref: 3000, typing: { room: 'buckets', active: true } }, { ref: 3001, read: { room: 'buckets', seq: '1' } }]);
    await alive(c);
    return {
      joinLimited: bad.some((r) => r.error?.code === 'rate_limited'),
      history: !!h.history,
      send: s.ack ? 'ack' : s.error?.code,
      typingOrReadErrors: errorsFor(c, [3000, 3001]).length,
    };
  });

// -- public rooms: anyone joins, and joining makes you a member
row('public.join-makes-member', 'newcomer joins the public room lobby', { joined: true, member: true }, async () => {
  const c = await connect('newcomer', G1);
  const j = await c.request({ join: { room: 'lobby' } });
  const rows = await stack.psql("SELECT count(*) FROM room_members WHERE room = 'lobby' AND user_id = 'newcomer'");
  return { joined: !!j.joined, member: Number(rows[0][0]) === 1, error: j.error?.code };
});

// -- private room 'secret' (members: carol): non-members are refused every frame kind
const FORBID = (ref) => ({ error: 'forbidden', ref, open: true });
row('private.member-join-send', 'carol (member) joins secret and sends', { joined: true, send: 'ack' }, async () => {
  const c = await connect('carol', G1);
  const j = await c.request({ join: { room: SECRET } });
  const s = await send(c, SECRET, 'for members only');
  return { joined: !!j.joined, send: s.ack ? 'ack' : s.error?.code ?? 'none' };
});
const eve = () => connect('eve', G0);
row('private.nonmember-join', 'eve: {"ref":21,"join":{"room":"secret"}}', FORBID(21),
  async () => { const c = await eve(); return answer(c, await c.request({ ref: 21, join: { room: SECRET } })); });
row('private.nonmember-send', 'eve: {"ref":22,"send":{"room":"secret",...}}', FORBID(22), async () => {
  const c = await eve();
  const id = cid('eve');
  const r = await c.request({ ref: 22, send: { room: SECRET, clientId: id, text: 'let me in' } });
  note('eve', id, r, 'let me in');
  return answer(c, r);
});
row('private.nonmember-history', 'eve: {"ref":23,"history":{"room":"secret"}}', { ...FORBID(23), leaked: 0 }, async () => {
  const c = await eve();
  const r = await c.request({ ref: 23, history: { room: SECRET } });
  return { ...(await answer(c, r)), leaked: r.history?.messages?.length ?? 0 };
});
row('private.nonmember-resume', 'eve: {"ref":24,"resume":{"room":"secret","afterSeq":"0"}}', { ...FORBID(24), leaked: 0 }, async () => {
  const c = await eve();
  const r = await c.request({ ref: 24, resume: { room: SECRET, afterSeq: '0' } });
  const a = await answer(c, r);
  return { ...a, leaked: c.messages(SECRET).length };
});
row('private.nonmember-typing', 'eve: {"ref":25,"typing":{"room":"secret","active":true}}', FORBID(25),
  async () => { const c = await eve(); return answer(c, await c.request({ ref: 25, typing: { room: SECRET, active: true } })); });
row('private.nonmember-read', 'eve: {"ref":26,"read":{"room":"secret","seq":"1"}}', FORBID(26),
  async () => { const c = await eve(); return answer(c, await c.request({ ref: 26, read: { room: SECRET, seq: '1' } })); });

// -- DMs
row('dm.open', 'dana on gateway-0: {"ref":31,"openDm":{"user":"frank"}}', { ref: 31, joined: true, roomIsDm: true }, async () => {
  const c = await connect('dana', G0);
  const r = await c.request({ ref: 31, openDm: { user: 'frank' } });
  shared.dm = r.joined?.room;
  return { ref: r.ref ?? null, joined: !!r.joined, roomIsDm: /^dm:/.test(r.joined?.room ?? ''), room: r.joined?.room, error: r.error?.code };
});
row('dm.same-room', 'frank on gateway-1 opens the DM with dana; dana sends; frank receives', { sameRoom: true, delivered: true }, async () => {
  const d = await connect('dana', G0);
  const f = await connect('frank', G1);
  const fr = await f.call({ openDm: { user: 'dana' } }, 'joined');
  const dr = await d.call({ openDm: { user: 'frank' } }, 'joined');
  const s = await send(d, dr.room, 'psst, frank');
  const m = await f.waitFor((x) => x.message?.room === dr.room && x.message.seq === s.ack?.seq, T, 'the DM');
  return { sameRoom: fr.room === dr.room && dr.room === shared.dm, delivered: m.message.text === 'psst, frank' && m.message.from === 'dana' };
});
const dmEve = async () => {
  if (!shared.dm) throw new Error('no DM room id (row dm.open failed)');
  return eve();
};
row('dm.nonmember-join', 'eve: join the dana/frank DM room', FORBID(32),
  async () => { const c = await dmEve(); return answer(c, await c.request({ ref: 32, join: { room: shared.dm } })); });
row('dm.nonmember-send', 'eve: send to the DM room', FORBID(33), async () => {
  const c = await dmEve();
  const id = cid('eve');
  const r = await c.request({ ref: 33, send: { room: shared.dm, clientId: id, text: 'hi both' } });
  note('eve', id, r, 'hi both');
  return answer(c, r);
});
row('dm.nonmember-history', 'eve: history of the DM room', { ...FORBID(34), leaked: 0 }, async () => {
  const c = await dmEve();
  const r = await c.request({ ref: 34, history: { room: shared.dm } });
  return { ...(await answer(c, r)), leaked: r.history?.messages?.length ?? 0 };
});
row('dm.nonmember-resume', 'eve: resume the DM room afterSeq 0', { ...FORBID(35), leaked: 0 }, async () => {
  const c = await dmEve();
  const a = await answer(c, await c.request({ ref: 35, resume: { room: shared.dm, afterSeq: '0' } }));
  return { ...a, leaked: c.messages(shared.dm).length };
});
row('dm.nonmember-typing', 'eve: typing in the DM room', FORBID(36),
  async () => { const c = await dmEve(); return answer(c, await c.request({ ref: 36, typing: { room: shared.dm, active: true } })); });
row('dm.nonmember-read', 'eve: read in the DM room', FORBID(37),
  async () => { const c = await dmEve(); return answer(c, await c.request({ ref: 37, read: { room: shared.dm, seq: '1' } })); });
row('dm.self', 'dana: {"ref":38,"openDm":{"user":"dana"}}', BAD(38),
  async () => { const c = await connect('dana', G0); return answer(c, await c.request({ ref: 38, openDm: { user: 'dana' } })); });
row('dm.bad-user', 'dana: {"ref":39,"openDm":{"user":"a/b"}}', BAD(39),
  async () => { const c = await connect('dana', G0); return answer(c, await c.request({ ref: 39, openDm: { user: 'a/b' } })); });

// -- read receipts
row('read.receipts', 'in room rr (3 messages) reader on gateway-0 reads 2, then 1, then 3; watcher on gateway-1',
  { watcherSaw: ['2', '3'], readerSaw: ['2', '3'], dbPosition: '3' }, async () => {
    const w = await joined('rr-writer', G0, ['rr']);
    const r = await joined('rr-reader', G0, ['rr']);
    const v = await joined('rr-watcher', G1, ['rr']);
    for (let i = 1; i <= 3; i++) await send(w, 'rr', `rr ${i}`);
    await v.waitFor((f) => f.message?.room === 'rr' && f.message.seq === '3', T, 'rr seq 3');
    const reads = (c) => c.inbox.filter((f) => f.read?.room === 'rr' && f.read.user === 'rr-reader').map((f) => f.read.seq);
    r.sendRaw({ ref: 41, read: { room: 'rr', seq: '2' } });
    await v.waitFor((f) => f.read?.user === 'rr-reader' && f.read.seq === '2', T, 'read 2 at the watcher');
    r.sendRaw({ ref: 42, read: { room: 'rr', seq: '1' } });
    r.sendRaw({ ref: 43, read: { room: 'rr', seq: '3' } });
    await v.waitFor((f) => f.read?.user === 'rr-reader' && f.read.seq === '3', T, 'read 3 at the watcher');
    await r.waitFor((f) => f.read?.user === 'rr-reader' && f.read.seq === '3', T, 'read 3 at the reader');
    const [[pos]] = await stack.psql("SELECT last_read_seq FROM room_members WHERE room = 'rr' AND user_id = 'rr-reader'");
    return { watcherSaw: reads(v), readerSaw: reads(r), dbPosition: pos, readerErrors: errorsFor(r, [41, 42, 43]).map((f) => f.error.code) };
  });

// -- slash commands of non-admins: forbidden, nothing stored
for (const [i, text] of ['/kick bob', '/mute bob', '/mute bob 60', '/unmute bob', '/clear', '/broadcast hello all', '/stats'].entries()) {
  row(`cmd.non-admin-${text.split(' ')[0].slice(1)}${text.includes('60') ? '-seconds' : ''}`, `non-admin sends "${text}" in a joined room`,
    { error: 'forbidden', open: true }, async () => {
      const c = await joined(`pleb${i}`, G0, ['cmd']);
      return answer(c, await send(c, 'cmd', text));
    });
}
row('cmd.unknown-word', 'non-admin sends "/shrug whatever" (not a command: an ordinary message)', { ack: true, storedAsText: true }, async () => {
  const c = await joined('pleb-shrug', G0, ['cmd']);
  const r = await send(c, 'cmd', '/shrug whatever');
  const rows = r.ack ? await stack.psql(`SELECT body FROM messages WHERE room = 'cmd' AND seq = ${Number(r.ack.seq)}`) : [];
  return { ack: !!r.ack, storedAsText: rows[0]?.[0] === '/shrug whatever', error: r.error?.code };
});
for (const text of ['/mute', '/mute bob -3', '/mute bob soon', '/kick', '/kick a b', '/unmute', '/clear now', '/stats please']) {
  row(`cmd.admin-usage:${text}`, `admin sends "${text}"`, { error: 'bad_request', open: true },
    async () => answer(adm0, await command(adm0, 'ops', text)));
}

// -- mute / unmute (stored by messages: survives its restart; expires)
row('mute.mute', 'admin on gateway-0: "/mute mallory"; mallory (gateway-1) sends', { notice: 'muted mallory', send: 'muted', stored: 'forever' }, async () => {
  const m = await joined('mallory', G1, ['mute']);
  const n = await command(adm0, 'ops', '/mute mallory');
  const s = await send(m, 'mute', 'you cannot silence me');
  const rows = await stack.psql("SELECT CASE WHEN until IS NULL THEN 'forever' ELSE 'until' END FROM mutes WHERE user_id = 'mallory'");
  return { notice: n.notice?.text ?? n.error?.code, send: s.error?.code ?? (s.ack ? 'ack' : 'none'), stored: rows[0]?.[0] ?? 'no row' };
});
row('mute.survives-restart', 'restart chat-messages (SIGTERM, start); mallory sends again', { send: 'muted' }, async () => {
  await stack.restartProc('messages');
  await waitMessagesUp();
  const m = await joined('mallory', G1, ['mute']);
  const deadline = Date.now() + LONG;
  let s;
  do {
    s = await send(m, 'mute', 'and now?');
    if (s.error?.code !== 'unavailable') break;
    await sleep(500);
  } while (Date.now() < deadline);
  return { send: s.error?.code ?? (s.ack ? 'ack' : 'none') };
});
row('mute.unmute', 'admin on gateway-1: "/unmute mallory"; mallory sends', { notice: 'unmuted mallory', send: 'ack', mutesLeft: 0 }, async () => {
  const m = await joined('mallory', G1, ['mute']);
  const n = await command(adm1, 'ops', '/unmute mallory');
  const s = await send(m, 'mute', 'thank you');
  const rows = await stack.psql("SELECT count(*) FROM mutes WHERE user_id = 'mallory'");
  return { notice: n.notice?.text ?? n.error?.code, send: s.ack ? 'ack' : s.error?.code, mutesLeft: Number(rows[0][0]) };
});
row('mute.expires', 'admin: "/mute tim 2"; tim sends at once, then every 500 ms until accepted', { notice: 'muted tim for 2 s', first: 'muted', later: 'ack' }, async () => {
  const c = await joined('tim', G0, ['mute']);
  const n = await command(adm0, 'ops', '/mute tim 2');
  const first = await send(c, 'mute', 'hello?');
  const deadline = Date.now() + LONG;
  let later;
  let tries = 0;
  do {
    await sleep(500);
    later = await send(c, 'mute', 'hello again');
    tries++;
  } while (later.error?.code === 'muted' && Date.now() < deadline);
  return { notice: n.notice?.text ?? n.error?.code, first: first.error?.code ?? 'ack', later: later.ack ? 'ack' : later.error?.code, mutedTries: tries - 1 };
});

// -- kick across replicas
row('kick.across-replicas', 'victim has 2 connections on gateway-0 and 2 on gateway-1; admin on gateway-0: "/kick victim"',
  { notice: 'kicked victim', closes: [4003, 4003, 4003, 4003], othersOpen: true }, async () => {
    const vs = [await connect('victim', G0), await connect('victim', G0), await joined('victim', G1, ['kick']), await connect('victim', G1)];
    const other = await joined('kick-other', G1, ['kick']);
    const n = await command(adm0, 'ops', '/kick victim');
    const closes = await Promise.all(vs.map((c) => waitCloseCode(c, LONG).catch((e) => e.message)));
    return {
      notice: n.notice?.text ?? n.error?.code,
      closes,
      reasons: vs.map((c) => c.closeInfo?.reason),
      othersOpen: (await alive(other)) && (await alive(byst[0])) && (await alive(byst[1])) && (await alive(adm0)),
    };
  });

// -- clear
row('clear.event', 'room clr with 3 messages, members on both replicas; admin: "/clear" in clr',
  { notice: 'cleared clr', clearedSeqs: ['3', '3', '3'] }, async () => {
    const a = await joined('clr-a', G0, ['clr']);
    const b = await joined('clr-b', G1, ['clr']);
    await join(adm0, 'clr');
    for (let i = 1; i <= 3; i++) await send(a, 'clr', `before clear ${i}`);
    await b.waitFor((f) => f.message?.room === 'clr' && f.message.seq === '3', T, 'clr seq 3');
    const n = await command(adm0, 'clr', '/clear');
    const seqs = await Promise.all([a, b, adm0].map((c) => c.waitFor((f) => f.cleared?.room === 'clr', T, 'cleared').then((f) => f.cleared.seq)));
    shared.clr = { a, b };
    return { notice: n.notice?.text ?? n.error?.code, clearedSeqs: seqs };
  });
row('clear.hidden', 'after /clear: history, resume afterSeq 0, then a new message and history again',
  { historyBefore: [], resumeReplayed: 0, resumeMessages: [], newSeq: '4', historyAfter: ['4'] }, async () => {
    const b = await joined('clr-b', G1, ['clr']);
    const h1 = await b.call({ history: { room: 'clr' } }, 'history');
    const r = await connect('clr-c', G1);
    const res = await r.call({ resume: { room: 'clr', afterSeq: '0' } }, 'resumed');
    const a = await joined('clr-a', G0, ['clr']);
    const s = await send(a, 'clr', 'after clear');
    const h2 = await b.call({ history: { room: 'clr' } }, 'history');
    return {
      historyBefore: h1.messages.map((m) => m.seq),
      resumeReplayed: Number(res.replayed),
      resumeMessages: r.messages('clr').map((m) => m.seq),
      newSeq: s.ack?.seq,
      historyAfter: h2.messages.map((m) => m.seq),
    };
  });

// -- broadcast across replicas
row('broadcast.all', 'admin on gateway-1: "/broadcast maintenance at noon"; a listener on each of the 3 replicas, bystanders, admins',
  { notice: 'broadcast sent', reached: 'all', from: ['root'], tsOnAll: true }, async () => {
    const listeners = [await connect('lis0', G0), await connect('lis1', G1), await connect('lis2', G2)];
    const everyone = [...listeners, ...byst, adm0, adm1];
    const n = await command(adm1, 'ops', '/broadcast maintenance at noon');
    const got = await Promise.all(everyone.map((c) => c.waitFor((f) => f.notice?.text === 'maintenance at noon' && f.ref === undefined, T, 'broadcast')
      .then((f) => f.notice).catch(() => null)));
    const missing = everyone.filter((c, k) => !got[k]).map((c) => c.name);
    return {
      notice: n.notice?.text ?? n.error?.code,
      reached: missing.length === 0 ? 'all' : `missing: ${missing.join(', ')}`,
      from: [...new Set(got.filter(Boolean).map((x) => x.from))],
      tsOnAll: got.every((x) => x && typeof x.ts === 'string' && !Number.isNaN(Date.parse(x.ts))),
    };
  });

// -- stats
row('stats.cluster', 'admin: "/stats" (polled until the heartbeats catch up with the connections open now)',
  { gateways: 3, connectionsMatch: true, usersMatch: true, roomsPositive: true, mpsIsNumber: true }, async () => {
    const deadline = Date.now() + LONG;
    let got;
    for (;;) {
      const r = await command(adm0, 'ops', '/stats');
      if (!r.stats) return { error: r.error?.code ?? JSON.stringify(r) };
      const open = [...longLived, ...rowClients].filter((c) => c.isOpen);
      const users = new Set(open.map((c) => `${c.gw}|${c.user}`)).size;
      const s = r.stats;
      got = {
        gateways: Number(s.gateways),
        connectionsMatch: Number(s.connections) === open.length,
        usersMatch: Number(s.users) === users,
        roomsPositive: Number(s.rooms) > 0,
        mpsIsNumber: typeof s.messagesPerSecond === 'number' && s.messagesPerSecond >= 0,
        raw: s,
        expectedConnections: open.length,
        expectedUsers: users,
      };
      if ((got.gateways === stack.gateways.length && got.connectionsMatch && got.usersMatch) || Date.now() > deadline) return got;
      await sleep(1000);
    }
  });

// ---- running the table ---------------------------------------------------------------------------------

function matches(expect, got) {
  for (const [k, v] of Object.entries(expect)) {
    try {
      assert.deepStrictEqual(got?.[k], v);
    } catch {
      return false;
    }
  }
  return true;
}

const show = (v) => JSON.stringify(v, (_k, x) => (x === undefined ? null : x));

before(async () => {
  stack = await startStack({
    gateways: 2,
    env: {
      gateway: { MAX_CONNECTIONS_PER_USER: String(CAP_PER_USER), PRESENCE_TTL_SECONDS: String(TTL_S) },
      presence: { PRESENCE_TTL_SECONDS: String(TTL_S) },
      messages: { SEED_PUBLIC_ROOMS: PUBLIC_ROOMS.join(',') },
    },
  });
  G2 = await addGateway(stack, { MAX_CONNECTIONS: String(GW2_MAX_CONNECTIONS), ALLOWED_ORIGINS: GW2_ORIGIN });
  [G0, G1] = stack.gateways;
  await stack.psql(`INSERT INTO rooms (id, kind) VALUES ('${SECRET}', 'private'); ` +
    `INSERT INTO room_members (room, user_id) VALUES ('${SECRET}', 'carol')`);
  byst = [await joined('byst0', G0, ['lobby']), await joined('byst1', G1, ['lobby']), await joined('byst2', G2, ['lobby'])];
  adm0 = await joined('root', G0, ['ops'], { admin: true });
  adm1 = await joined('root', G1, ['ops'], { admin: true });
}, { timeout: 10 * 60_000 });

after(async () => {
  const pass = results.filter((r) => r.ok).length;
  console.log(`\n==== security table: ${pass}/${results.length} rows passed ====`);
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.id.padEnd(34)} ${r.input}\n        expect ${show(r.expect)}\n        got    ${show(r.got)}`);
  for (const c of [...longLived]) c.terminate();
  if (!stack) return;
  if (failed || stack.unexpectedExits.length > 0) {
    console.error(`e2e: failures or unexpected exits (${stack.unexpectedExits.join('; ') || 'none'}); log tails follow`);
    stack.printLogTails();
  }
  await stack.teardown();
}, { timeout: 5 * 60_000 });

for (const r of ROWS) {
  const skip = ONLY.length > 0 && !ONLY.some((p) => r.id.startsWith(p));
  test(`row ${r.id}: ${r.input}`, { timeout: ROW_TIMEOUT_MS, skip }, async () => {
    rowClients = [];
    let got;
    try {
      got = await r.run();
    } catch (err) {
      got = { threw: err.message };
    } finally {
      const mine = rowClients;
      rowClients = null;
      await Promise.all(mine.map((c) => c.close().catch(() => {})));
    }
    const ok = matches(r.expect, got);
    results.push({ id: r.id, input: r.input, expect: r.expect, got, ok });
    console.log(`${ok ? 'PASS' : 'FAIL'} ${r.id}: ${r.input} -> expect ${show(r.expect)} got ${show(got)}`);
    if (!ok) {
      failed = true;
      assert.fail(`row ${r.id}: input ${r.input}\n  expected ${show(r.expect)}\n  got      ${show(got)}`);
    }
  });
}

// ---- after the table ---------------------------------------------------------------------------------

test('after the table: a bystander on each replica still chats normally across replicas', { timeout: ROW_TIMEOUT_MS }, async () => {
  try {
    for (const b of byst) assert.ok(await alive(b), `${b.name} was disconnected by the table`);
    for (const from of byst) {
      const r = await send(from, 'lobby', `bystander ${from.user} still here`);
      assert.ok(r.ack, `${from.name}: send -> ${show(r)}`);
      for (const to of byst) {
        const m = await to.waitFor((f) => f.message?.room === 'lobby' && f.message.seq === r.ack.seq, T, `message ${r.ack.seq}`);
        assert.equal(m.message.from, from.user);
        assert.equal(m.message.text, `bystander ${from.user} still here`);
      }
    }
    // Each bystander's lobby stream is gap-free and has no duplicates.
    for (const b of byst) {
      const seqs = b.messages('lobby').map((m) => Number(m.seq));
      assert.deepEqual(seqs, seqs.map((_, k) => seqs[0] + k), `${b.name}: lobby seqs ${seqs.join(',')}`);
    }
    console.log(`bystanders: ${byst.map((b) => `${b.name} got ${b.messages('lobby').length} lobby messages`).join('; ')}`);
  } catch (err) {
    failed = true;
    throw err;
  }
});

test('after the table: PostgreSQL holds nothing that was refused, and everything acked', { timeout: ROW_TIMEOUT_MS }, async () => {
  try {
    const rows = await stack.psql('SELECT sender, client_id, room, seq FROM messages');
    const stored = new Map(rows.map(([s, c, room, seq]) => [`${s}\t${c}`, `${room}#${seq}`]));
    const refusedStored = [];
    const commandStored = [];
    const ackedMissing = [];
    let refused = 0;
    let commands = 0;
    let acked = 0;
    for (const [key, e] of ledger) {
      const wasAcked = e.answers.includes('ack');
      if (wasAcked) {
        acked++;
        if (!stored.has(key)) ackedMissing.push(e);
      } else if (e.answers.some((a) => a === 'notice' || a === 'stats')) {
        commands++;
        if (stored.has(key)) commandStored.push({ ...e, at: stored.get(key) });
      } else if (e.answers.some((a) => REFUSALS.has(a))) {
        refused++;
        if (stored.has(key)) refusedStored.push({ ...e, at: stored.get(key) });
      }
    }
    const slash = await stack.psql("SELECT sender, room, seq, body FROM messages WHERE body ~ '^/(kick|mute|unmute|clear|broadcast|stats)( |$)'");
    const oversized = await stack.psql(`SELECT sender, room, seq, octet_length(body) FROM messages WHERE octet_length(body) > ${TEXT_LIMIT}`);
    const fromEve = await stack.psql("SELECT room, seq, body FROM messages WHERE sender = 'eve'");
    const inSecret = await stack.psql(`SELECT sender, seq FROM messages WHERE room = '${SECRET}' AND sender <> 'carol'`);
    const mutedStored = await stack.psql("SELECT seq, body FROM messages WHERE sender = 'mallory' AND body IN ('you cannot silence me', 'and now?')");
    const unanswered = [...ledger.values()].filter((e) => e.answers.every((a) => a === 'none'));
    const unansweredStored = unanswered.filter((e) => stored.has(`${e.sender}\t${e.clientId}`)).length;
    console.log(`ledger: ${ledger.size} sends: ${acked} acked (all must be stored), ${refused} refused and ${commands} admin commands ` +
      `(none may be stored), ${unanswered.length} unanswered (connection closed first; ${unansweredStored} of them stored); ` +
      `${rows.length} rows in messages`);
    assert.deepEqual(refusedStored, [], 'refused sends found in messages');
    assert.deepEqual(commandStored, [], 'admin commands stored as messages');
    assert.deepEqual(slash, [], 'slash commands stored as messages');
    assert.deepEqual(oversized, [], `messages over ${TEXT_LIMIT} bytes stored`);
    assert.deepEqual(fromEve, [], 'messages from the non-member eve stored');
    assert.deepEqual(inSecret, [], 'messages from non-members in the private room');
    assert.deepEqual(mutedStored, [], 'messages of muted mallory stored');
    assert.deepEqual(ackedMissing, [], 'acked sends missing from messages');
  } catch (err) {
    failed = true;
    throw err;
  }
});

test('after the table: no process exited', () => {
  assert.deepEqual(stack.unexpectedExits, []);
});
