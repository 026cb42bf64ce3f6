// Unit tests of the web client module (services/gateway/web/chat-client.js) in Node, without a DOM: a
// fake WebSocket class, fake storage and a fake clock are injected through the constructor options.
//   node --test tests/web/client.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const WEB = path.resolve(here, '..', '..', 'services', 'gateway', 'web');
const { ChatClient, BACKOFF, backoffDelay, claimsOf } = await import(path.join(WEB, 'chat-client.js'));

// ---- fakes ------------------------------------------------------------------------------------------

function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  let id = 0;
  const q = new Map();
  return {
    now: () => t,
    setTimeout: (f, ms) => (q.set(++id, { at: t + Math.max(0, ms), f }), id),
    clearTimeout: (i) => q.delete(i),
    /** Runs every timer due within ms, in time order (timers may add timers). */
    advance(ms) {
      const end = t + ms;
      for (;;) {
        let next = null;
        for (const [i, e] of q) if (e.at <= end && (!next || e.at < next[1].at)) next = [i, e];
        if (!next) break;
        q.delete(next[0]);
        t = next[1].at;
        next[1].f();
      }
      t = end;
    },
  };
}

function fakeStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
    map: m,
  };
}

function fakeWebSocketClass() {
  const sockets = [];
  class FakeWS {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closed = false;
      sockets.push(this);
    }
    send(s) {
      if (this.readyState !== 1) throw new Error('not open');
      this.sent.push(JSON.parse(s));
    }
    close() {
      this.closed = true;
      this.readyState = 3;
    }
    // test side
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    recv(f) {
      this.onmessage?.({ data: typeof f === 'string' ? f : JSON.stringify(f) });
    }
    drop(code = 1006) {
      this.readyState = 3;
      this.onclose?.({ code });
    }
    welcome(heartbeatSeconds = 15, user = 'alice') {
      this.open();
      this.recv({ welcome: { user, connectionId: 'c1', heartbeatSeconds } });
    }
    /** The frames sent of one type (join, send, …). */
    of(type) {
      return this.sent.filter((f) => f[type] !== undefined);
    }
  }
  FakeWS.sockets = sockets;
  return FakeWS;
}

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const tokenFor = (claims) => `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.sig`;

function setup({ urls = ['ws://a/ws'], claims = { sub: 'alice' }, random = () => 0.5, storage = fakeStorage(), ...rest } = {}) {
  const clock = fakeClock();
  const WS = fakeWebSocketClass();
  let n = 0;
  const c = new ChatClient({
    urls, token: tokenFor(claims), WebSocket: WS, storage, random, uuid: () => `cid-${++n}`,
    now: clock.now, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, ...rest,
  });
  const events = [];
  for (const type of ['state', 'joined', 'message', 'ack', 'typing', 'presence', 'read', 'notice', 'cleared', 'left', 'error', 'frame']) {
    c.on(type, (d) => events.push({ type, ...d }));
  }
  const of = (type) => events.filter((e) => e.type === type);
  const ws = () => WS.sockets.at(-1);
  return { c, clock, WS, storage, events, of, ws };
}

/** Connects and joins `room`, answering with lastSeq. */
function connectAndJoin(t, room = 'general', lastSeq = '0') {
  t.c.connect();
  t.ws().welcome();
  t.c.join(room);
  const j = t.ws().of('join').at(-1);
  t.ws().recv({ ref: j.ref, joined: { room, lastSeq, online: ['alice'] } });
  return t.ws();
}

// ---- tests ------------------------------------------------------------------------------------------

test('backoff: 1, 2, 4, 8, 16 s with ±20 % jitter', () => {
  assert.deepEqual(BACKOFF, [1, 2, 4, 8, 16]);
  for (let n = 1; n <= 5; n++) {
    const base = BACKOFF[n - 1] * 1000;
    assert.equal(backoffDelay(n, () => 0.5), base);
    assert.equal(backoffDelay(n, () => 0), 0.8 * base);
    assert.ok(backoffDelay(n, () => 0.999999) <= 1.2 * base);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(n);
      assert.ok(d >= 0.8 * base && d <= 1.2 * base, `attempt ${n}: ${d}`);
    }
  }
});

test('claims of the token give user and admin', () => {
  assert.deepEqual(claimsOf(tokenFor({ sub: 'zoë', admin: true })), { sub: 'zoë', admin: true });
  assert.deepEqual(claimsOf('garbage'), {});
  const { c } = setup({ claims: { sub: 'root', admin: true } });
  assert.equal(c.user, 'root');
  assert.equal(c.admin, true);
});

test('state machine: connecting, connected, reconnecting with backoff, failed after 5 tries, retry()', () => {
  const t = setup({ urls: ['ws://a/ws', 'ws://b/ws'] });
  const { c, clock, WS } = t;
  assert.equal(c.state, 'disconnected');
  c.connect();
  assert.equal(c.state, 'connecting');
  assert.equal(WS.sockets.length, 1);
  assert.match(WS.sockets[0].url, /^ws:\/\/a\/ws\?token=/);
  c.connect(); // no second socket while trying
  assert.equal(WS.sockets.length, 1);
  t.ws().welcome();
  assert.equal(c.state, 'connected');

  t.ws().drop(1006);
  const waits = [];
  for (let n = 1; n <= 5; n++) {
    const s = t.of('state').at(-1);
    assert.equal(s.state, 'reconnecting');
    assert.equal(s.attempt, n);
    waits.push(s.retryInMs);
    assert.equal(s.retryAt, clock.now() + s.retryInMs);
    clock.advance(s.retryInMs - 1);
    assert.equal(WS.sockets.length, n, 'no attempt before the delay is over');
    clock.advance(1);
    assert.equal(WS.sockets.length, n + 1);
    assert.equal(c.state, 'reconnecting');
    assert.equal(t.of('state').at(-1).retryInMs, 0, 'trying now');
    // The attempts go round the list of gateways: b, a, b, …
    assert.match(t.ws().url, n % 2 ? /^ws:\/\/b\// : /^ws:\/\/a\//);
    t.ws().drop(1006); // refused
  }
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 16000]);
  assert.equal(c.state, 'failed');
  assert.equal(t.of('state').at(-1).reason, 'unreachable');
  clock.advance(10 * 60_000);
  assert.equal(WS.sockets.length, 6, 'failed stays failed');

  c.retry();
  assert.equal(c.state, 'connecting');
  assert.equal(WS.sockets.length, 7);
  t.ws().welcome();
  assert.equal(c.state, 'connected');
  t.ws().drop(1001);
  assert.equal(t.of('state').at(-1).attempt, 1, 'a welcome resets the tries');
  assert.equal(t.of('state').at(-1).retryInMs, 1000);
});

test('retry() while waiting tries at once; close() stops reconnecting', () => {
  const t = setup();
  t.c.connect();
  t.ws().welcome();
  t.ws().drop();
  assert.equal(t.c.state, 'reconnecting');
  t.c.retry();
  assert.equal(t.WS.sockets.length, 2);
  t.ws().welcome();
  t.c.close();
  assert.equal(t.c.state, 'disconnected');
  assert.equal(t.WS.sockets[1].closed, true);
  t.clock.advance(60_000);
  assert.equal(t.WS.sockets.length, 2);
});

test('an attempt that never opens times out and counts as a try', () => {
  const t = setup({ connectTimeoutMs: 5000 });
  t.c.connect();
  t.clock.advance(4999);
  assert.equal(t.c.state, 'connecting');
  t.clock.advance(1);
  assert.equal(t.c.state, 'reconnecting');
  assert.equal(t.WS.sockets[0].closed, true);
  assert.equal(t.of('state').at(-1).code, 'timeout');
});

test('close codes 4001 and 4003 and an expired token end in failed without retrying', () => {
  for (const [code, reason] of [[4001, 'unauthorized'], [4003, 'kicked']]) {
    const t = setup();
    t.c.connect();
    t.ws().welcome();
    t.ws().drop(code);
    assert.equal(t.c.state, 'failed');
    assert.equal(t.of('state').at(-1).reason, reason);
    t.clock.advance(60_000);
    assert.equal(t.WS.sockets.length, 1);
  }
  const t = setup({ claims: { sub: 'alice', exp: Math.floor(1_700_000_000_000 / 1000) - 1 } });
  t.c.connect();
  assert.equal(t.c.state, 'failed');
  assert.equal(t.of('state').at(-1).reason, 'expired');
  assert.equal(t.WS.sockets.length, 0);
});

test('heartbeat: a ping every heartbeatSeconds; no pong within twice that means dead', () => {
  const t = setup();
  t.c.connect();
  t.ws().welcome(10);
  const ws = t.ws();
  t.clock.advance(10_000);
  assert.equal(ws.of('ping').length, 1);
  ws.recv({ pong: {} });
  t.clock.advance(10_000);
  assert.equal(ws.of('ping').length, 2);
  ws.recv({ pong: {} });
  // From now on the server is silent (a dead TCP connection that never closes).
  t.clock.advance(10_000); // ping 3 at t0+30 s; dead at t0+50 s
  assert.equal(ws.of('ping').length, 3);
  t.clock.advance(19_999);
  assert.equal(t.c.state, 'connected');
  t.clock.advance(1);
  assert.equal(t.c.state, 'reconnecting');
  assert.equal(t.of('state').at(-1).code, 'heartbeat');
  assert.equal(ws.closed, true);
  ws.recv({ pong: {} }); // late frames of the old socket are ignored
  assert.equal(t.c.state, 'reconnecting');
});

test('dedup by seq: live duplicates dropped; resume after the last seq; replayed duplicates dropped', () => {
  const t = setup();
  const ws = connectAndJoin(t, 'general', '5');
  assert.deepEqual(t.of('joined').at(-1), { type: 'joined', room: 'general', lastSeq: 5, online: ['alice'], resumed: false, afterSeq: 0, replayed: 0, truncated: false });
  const msg = (seq, from = 'bob') => ({ message: { room: 'general', seq: String(seq), id: `id${seq}`, clientId: `x${seq}`, from, text: `m${seq}`, ts: '2026-01-01T00:00:00Z' } });
  for (const s of [6, 7, 7, 6, 5, 8]) ws.recv(msg(s));
  assert.deepEqual(t.of('message').map((m) => m.seq), [6, 7, 8]);
  assert.equal(t.of('message')[0].kind, 'user', 'proto3 default filled in');
  assert.equal(t.c.dups, 3);
  ws.recv({ message: { ...msg(9).message, room: 'elsewhere' } });
  assert.equal(t.of('message').length, 3, 'rooms not joined are ignored');

  ws.drop();
  t.clock.advance(1000);
  const ws2 = t.ws();
  ws2.welcome();
  const [resume] = ws2.of('resume');
  assert.deepEqual(resume.resume, { room: 'general', afterSeq: '8' });
  assert.equal(ws2.of('join').length, 0);
  for (const s of [8, 9, 10]) ws2.recv(msg(s)); // the server's replay (8 would be a server bug)
  ws2.recv({ ref: resume.ref, resumed: { room: 'general', lastSeq: '10', replayed: 2, online: ['alice', 'bob'] } });
  ws2.recv(msg(10));
  ws2.recv(msg(11));
  assert.deepEqual(t.of('message').map((m) => m.seq), [6, 7, 8, 9, 10, 11]);
  const j = t.of('joined').at(-1);
  assert.equal(j.resumed, true);
  assert.equal(j.afterSeq, 8);
  assert.equal(j.truncated, false);
  assert.deepEqual(t.of('presence').at(-1).people.map((p) => [p.user, p.online]), [['alice', true], ['bob', true]]);
});

test('a truncated resume is reported so the page can page the gap with history', () => {
  const t = setup();
  const ws = connectAndJoin(t, 'general', '3');
  ws.drop();
  t.clock.advance(1000);
  t.ws().welcome();
  const [resume] = t.ws().of('resume');
  t.ws().recv({ message: { room: 'general', seq: '2000', from: 'bob', text: 'x' } });
  t.ws().recv({ ref: resume.ref, resumed: { room: 'general', lastSeq: '2000', replayed: 1000, truncated: true } });
  const j = t.of('joined').at(-1);
  assert.equal(j.truncated, true);
  assert.equal(j.afterSeq, 3);
  assert.equal(j.lastSeq, 2000);
});

test('history pages: int64 strings become numbers, proto3 defaults filled in', async () => {
  const t = setup();
  const ws = connectAndJoin(t);
  const p = t.c.history('general', 120, 50);
  const h = ws.of('history').at(-1);
  assert.deepEqual(h.history, { room: 'general', beforeSeq: '120', limit: 50 });
  ws.recv({ ref: h.ref, history: { room: 'general', messages: [{ room: 'general', seq: '70', from: 'bob', text: 'a' }] } });
  const page = await p;
  assert.equal(page.hasMore, false);
  assert.equal(page.messages[0].seq, 70);
  const p2 = t.c.history('general');
  const h2 = ws.of('history').at(-1);
  assert.equal(h2.history.beforeSeq, '0');
  ws.recv({ ref: h2.ref, history: { room: 'general' } });
  assert.deepEqual((await p2).messages, []);
});

test('offline queue: kept in storage across a reload, sent after connecting with the same clientId', () => {
  const storage = fakeStorage();
  const t1 = setup({ storage });
  t1.c.join('general');
  const e = t1.c.send('general', 'written offline');
  assert.deepEqual(Object.keys(e).sort(), ['clientId', 'from', 'room', 'text', 'ts']);
  assert.equal(e.clientId, 'cid-1');
  assert.deepEqual(t1.c.outbox('general').map((x) => x.text), ['written offline']);
  assert.ok(storage.getItem('chat.outbox.alice').includes('written offline'));

  // "Reload": a new client on the same storage; the room is joined because its outbox needs it.
  const t2 = setup({ storage });
  assert.deepEqual(t2.c.outbox().map((x) => x.clientId), ['cid-1']);
  t2.c.connect();
  t2.ws().welcome();
  const [join] = t2.ws().of('join');
  assert.equal(join.join.room, 'general');
  assert.equal(t2.ws().of('send').length, 0, 'not before the join is answered');
  t2.ws().recv({ ref: join.ref, joined: { room: 'general', lastSeq: '4' } });
  const [send] = t2.ws().of('send');
  assert.deepEqual(send.send, { room: 'general', clientId: 'cid-1', text: 'written offline' });
  t2.ws().recv({ ref: send.ref, ack: { room: 'general', seq: '5', id: 'm5', ts: '2026-01-01T00:00:00Z' } });
  assert.deepEqual(t2.of('ack').map((a) => [a.clientId, a.seq, a.duplicate]), [['cid-1', 5, false]]);
  assert.deepEqual(t2.c.outbox(), []);
  assert.equal(storage.getItem('chat.outbox.alice'), null);
});

test('a send lost with the connection goes out again with the same clientId; duplicate ack accepted', () => {
  const t = setup();
  const ws = connectAndJoin(t, 'general', '0');
  t.c.send('general', 'one');
  t.c.send('general', 'two');
  assert.deepEqual(ws.of('send').map((f) => f.send.clientId), ['cid-1', 'cid-2']);
  ws.recv({ ref: ws.of('send')[0].ref, ack: { room: 'general', seq: '1', id: 'a' } });
  ws.drop(); // the ack of "two" is lost (it was stored, though)
  assert.deepEqual(t.c.outbox().map((e) => e.text), ['two']);
  t.c.send('general', 'three'); // while offline
  t.clock.advance(1000);
  const ws2 = t.ws();
  ws2.welcome();
  const [resume] = ws2.of('resume');
  assert.equal(resume.resume.afterSeq, '0', 'no message frame seen yet');
  ws2.recv({ ref: resume.ref, resumed: { room: 'general', lastSeq: '2' } });
  assert.deepEqual(ws2.of('send').map((f) => [f.send.clientId, f.send.text]), [['cid-2', 'two'], ['cid-3', 'three']]);
  ws2.recv({ ref: ws2.of('send')[0].ref, ack: { room: 'general', seq: '2', id: 'b', duplicate: true } });
  ws2.recv({ ref: ws2.of('send')[1].ref, ack: { room: 'general', seq: '3', id: 'c' } });
  assert.deepEqual(t.of('ack').map((a) => [a.clientId, a.seq, a.duplicate]), [['cid-1', 1, false], ['cid-2', 2, true], ['cid-3', 3, false]]);
  assert.deepEqual(t.c.outbox(), []);
});

test('own message frame with the clientId clears the outbox even when the ack is lost', () => {
  const t = setup();
  const ws = connectAndJoin(t);
  t.c.send('general', 'hi');
  ws.recv({ message: { room: 'general', seq: '1', clientId: 'cid-1', from: 'alice', text: 'hi' } });
  assert.deepEqual(t.c.outbox(), []);
  ws.drop();
  t.clock.advance(1000);
  t.ws().welcome();
  t.ws().recv({ ref: t.ws().of('resume')[0].ref, resumed: { room: 'general', lastSeq: '1' } });
  assert.equal(t.ws().of('send').length, 0);
});

test('sends: at most sendWindow in flight, in order; rate_limited retried later; refused ones fail for good', () => {
  const t = setup({ sendWindow: 2 });
  const ws = connectAndJoin(t);
  for (const x of ['a', 'b', 'c', 'd']) t.c.send('general', x);
  assert.deepEqual(ws.of('send').map((f) => f.send.text), ['a', 'b']);
  ws.recv({ ref: ws.of('send')[0].ref, ack: { room: 'general', seq: '1' } });
  assert.deepEqual(ws.of('send').map((f) => f.send.text), ['a', 'b', 'c']);
  ws.recv({ ref: ws.of('send')[1].ref, error: { code: 'rate_limited', message: 'slow down', retryAfterMs: 400 } });
  assert.deepEqual(ws.of('send').map((f) => f.send.text), ['a', 'b', 'c', 'd'], 'b waits, d goes');
  ws.recv({ ref: ws.of('send')[2].ref, error: { code: 'too_large', message: 'text is over 4096 bytes' } });
  const failed = t.of('error').at(-1);
  assert.deepEqual([failed.clientId, failed.code, failed.failed], ['cid-3', 'too_large', true]);
  t.clock.advance(399);
  assert.equal(ws.of('send').length, 4);
  t.clock.advance(1);
  assert.deepEqual(ws.of('send').map((f) => f.send.text), ['a', 'b', 'c', 'd', 'b']);
  assert.equal(ws.of('send')[4].send.clientId, 'cid-2');
  assert.deepEqual(t.c.outbox().map((e) => e.text), ['b', 'd']);
});

test('a send that is never answered times out and is sent again with the same clientId', () => {
  const t = setup({ requestTimeoutMs: 3000 });
  const ws = connectAndJoin(t);
  t.c.send('general', 'x');
  t.clock.advance(3000);
  t.clock.advance(1000);
  assert.deepEqual(ws.of('send').map((f) => f.send.clientId), ['cid-1', 'cid-1']);
});

test('a join refused for good drops the room and fails its queued messages', () => {
  const t = setup();
  t.c.join('nope');
  t.c.send('nope', 'lost');
  t.c.connect();
  t.ws().welcome();
  const [join] = t.ws().of('join');
  t.ws().recv({ ref: join.ref, error: { code: 'not_found', message: 'no such room' } });
  return new Promise((r) => setImmediate(r)).then(() => {
    assert.deepEqual(t.c.outbox(), []);
    assert.equal(t.c.rooms.has('nope'), false);
    const errs = t.of('error');
    assert.ok(errs.some((e) => e.clientId === 'cid-1' && e.failed));
    assert.ok(errs.some((e) => e.room === 'nope' && !e.clientId && e.code === 'not_found'));
  });
});

test('typing: sent at most every 2 s; shown, expired, and hidden by that user\'s message', () => {
  const t = setup();
  const ws = connectAndJoin(t);
  t.c.typing('general');
  t.c.typing('general');
  t.clock.advance(1999);
  t.c.typing('general');
  assert.equal(ws.of('typing').length, 1);
  t.clock.advance(1);
  t.c.typing('general');
  assert.equal(ws.of('typing').length, 2);
  t.c.typing('general', false);
  assert.deepEqual(ws.of('typing').map((f) => f.typing.active), [true, true, false]);
  assert.ok(ws.of('typing').every((f) => typeof f.ref === 'number'));

  ws.recv({ typing: { room: 'general', user: 'bob', active: true } });
  ws.recv({ typing: { room: 'general', user: 'carol', active: true } });
  assert.deepEqual(t.of('typing').at(-1).users, ['bob', 'carol']);
  ws.recv({ message: { room: 'general', seq: '1', from: 'bob', text: 'hi' } });
  const hid = t.of('typing').at(-1);
  assert.deepEqual([hid.user, hid.active, hid.users], ['bob', false, ['carol']]);
  t.clock.advance(6000);
  assert.deepEqual(t.of('typing').at(-1).users, [], 'expires without a refresh');
  ws.recv({ typing: { room: 'general', user: 'alice', active: true } });
  assert.deepEqual(t.of('typing').at(-1).users, [], 'own typing (another tab) is not shown');
  ws.recv({ typing: { room: 'general', user: 'dave' } }); // active:false is omitted in proto3 JSON
  assert.equal(t.of('typing').filter((e) => e.user === 'dave').length, 0, 'stop of someone not shown: no event');
});

test('presence events, presence queries, read receipts, notices, cleared, unknown frames', async () => {
  const t = setup();
  const ws = connectAndJoin(t);
  ws.recv({ presence: { room: 'general', user: 'bob', online: true } });
  ws.recv({ presence: { room: 'general', user: 'carol', lastSeen: '2026-01-01T10:00:00Z' } });
  const p = t.of('presence').at(-1);
  assert.deepEqual([p.user, p.online, p.lastSeen], ['carol', false, '2026-01-01T10:00:00Z']);
  assert.deepEqual(p.people.map((x) => `${x.user}:${x.online}`), ['alice:true', 'bob:true', 'carol:false']);
  const q = t.c.presence('general', ['dave']);
  const f = ws.of('presence').at(-1);
  assert.deepEqual(f.presence, { room: 'general', users: ['dave'] });
  ws.recv({ ref: f.ref, presenceStatus: { room: 'general', online: ['alice', 'bob'], users: [{ user: 'dave', lastSeen: '2026-01-02T00:00:00Z' }] } });
  await q;
  assert.deepEqual(t.of('presence').at(-1).people.map((x) => x.user), ['alice', 'bob', 'carol', 'dave']);

  t.c.markRead('general', '7');
  t.c.markRead('general', 7);
  t.c.markRead('general', 5);
  assert.deepEqual(ws.of('read').map((x) => x.read), [{ room: 'general', seq: '7' }]);
  ws.recv({ ref: ws.of('read')[0].ref, error: { code: 'bad_request', message: "'read' is not supported by this gateway version yet" } });
  assert.equal(t.of('error').length, 0, 'errors of fire-and-forget frames are not reported');
  ws.recv({ read: { room: 'general', user: 'bob', seq: '7' } });
  assert.deepEqual(t.of('read').map((r) => [r.user, r.seq]), [['bob', 7]]);

  ws.recv({ notice: { text: 'maintenance at 10', ts: '2026-01-01T00:00:00Z' } });
  assert.equal(t.of('notice')[0].text, 'maintenance at 10');
  ws.recv({ cleared: { room: 'general', seq: '40' } });
  assert.equal(t.of('cleared')[0].seq, 40);
  ws.recv({ somethingNew: { x: 1 } });
  assert.deepEqual(t.of('frame')[0].somethingNew, { x: 1 });
  ws.recv('not json');
  ws.recv('[1,2]');
  ws.recv({ error: { code: 'rate_limited', message: 'slow', retryAfterMs: 100 } });
  assert.equal(t.of('error').at(-1).code, 'rate_limited');
  assert.equal(t.c.state, 'connected');
});

test('openDm: the joined answer adds the DM room, resumed after a reconnect', async () => {
  const t = setup();
  const ws = connectAndJoin(t);
  const p = t.c.openDm('bob');
  const f = ws.of('openDm')[0];
  assert.deepEqual(f.openDm, { user: 'bob' });
  ws.recv({ ref: f.ref, joined: { room: 'dm:alice:bob', lastSeq: '3', online: ['alice'] } });
  assert.equal((await p).room, 'dm:alice:bob');
  ws.drop();
  t.clock.advance(1000);
  t.ws().welcome();
  assert.deepEqual(t.ws().of('resume').map((r) => r.resume), [{ room: 'general', afterSeq: '0' }, { room: 'dm:alice:bob', afterSeq: '3' }]);
});

test('requests fail fast when not connected; pending ones reject on a drop', async () => {
  const t = setup();
  await assert.rejects(t.c.history('general'), { code: 'disconnected' });
  const ws = connectAndJoin(t);
  const p = t.c.history('general');
  ws.drop();
  await assert.rejects(p, { code: 'disconnected' });
  const cmd = t.c.command('general', '/kick bob');
  await assert.rejects(cmd, { code: 'disconnected' });
  assert.deepEqual(t.c.outbox(), [], 'commands are never queued');
});

test('an admin command waits for the join in progress, then goes out once; its answer resolves it', async () => {
  const t = setup({ claims: { sub: 'root', admin: true } });
  t.c.connect();
  t.ws().welcome();
  t.c.join('general');
  const p = t.c.command('general', '/stats');
  await new Promise((r) => setImmediate(r));
  assert.equal(t.ws().of('send').length, 0);
  t.ws().recv({ ref: t.ws().of('join')[0].ref, joined: { room: 'general' } });
  await new Promise((r) => setImmediate(r));
  const [send] = t.ws().of('send');
  assert.equal(send.send.text, '/stats');
  t.ws().recv({ ref: send.ref, stats: { gateways: '2', connections: '5' } });
  assert.deepEqual(await p, { gateways: '2', connections: '5' });
  const p2 = t.c.command('general', '/kick bob');
  t.ws().recv({ ref: t.ws().of('send')[1].ref, notice: { text: 'kicked bob' } });
  assert.equal((await p2).text, 'kicked bob');
  assert.equal(t.of('notice').length, 0, 'the answer to a command is not a broadcast notice');
  assert.deepEqual(t.c.outbox(), []);
});

test('storage that throws (full, blocked) falls back to memory', () => {
  const storage = { getItem: () => null, setItem: () => { throw new Error('QuotaExceededError'); }, removeItem: () => {} };
  const t = setup({ storage });
  t.c.send('general', 'still queued');
  assert.deepEqual(t.c.outbox().map((e) => e.text), ['still queued']);
});

test('size: the module gzipped stays under 10 KiB, the whole page under 50 KiB', () => {
  const files = fs.readdirSync(WEB).filter((f) => !f.startsWith('.'));
  let total = 0;
  let totalGz = 0;
  for (const f of files) {
    const buf = fs.readFileSync(path.join(WEB, f));
    total += buf.length;
    totalGz += zlib.gzipSync(buf, { level: 9 }).length;
  }
  const mod = fs.readFileSync(path.join(WEB, 'chat-client.js'));
  const modGz = zlib.gzipSync(mod, { level: 9 }).length;
  console.log(`web: chat-client.js ${mod.length} B, gzipped ${modGz} B; page (${files.join(', ')}) ${total} B, gzipped ${totalGz} B`);
  assert.ok(modGz < 10 * 1024, `chat-client.js gzipped is ${modGz} B`);
  assert.ok(total < 50 * 1024, `the page is ${total} B`);
});
