// Smoke check of the benchmark peers, driving them with raw WebSocket clients speaking exactly the
// frames the C++ load generator will speak (README.md):
//   - ws_server: join, send -> ack + broadcast to two clients, ping, errors, /healthz, SIGTERM.
//   - socketio_server: two replicas on free ports sharing a throwaway Redis + Postgres
//     (tests/support/servers.sh): Engine.IO/Socket.IO v4 handshake, join, send -> ack + broadcast to
//     clients on both replicas, duplicate send, server ping / client pong, rows in Postgres, SIGTERM.
//
//   node bench/peers/smoke.mjs        exit 0 and "smoke: all passed" when everything holds
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import pg from 'pg';

const here = path.dirname(fileURLToPath(import.meta.url));
const serversSh = path.resolve(here, '../../tests/support/servers.sh');
const kTimeoutMs = 5000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An unsigned JWT-shaped token with claim sub: the peers read sub without verifying. */
const b64url = (s) => Buffer.from(s).toString('base64url');
const token = (sub) => `${b64url('{"alg":"none"}')}.${b64url(JSON.stringify({ sub }))}.unsigned`;

/** Starts a peer with --port 0 and resolves once it printed "listening <port>". */
function startPeer(script, env = {}) {
  const proc = spawn(process.execPath, [path.join(here, script), '--port', '0'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /^listening (\d+)$/m.exec(out);
      if (m) resolve({ port: Number(m[1]), proc, exited, name: script });
    });
    exited.then(({ code }) => reject(new Error(`${script} exited with ${code} before listening`)));
    setTimeout(() => reject(new Error(`${script}: no "listening" line in 10 s`)), 10_000).unref();
  });
}

/** SIGTERM, then expects exit code 0 within 3 s. */
async function stopPeer(peer) {
  peer.proc.kill('SIGTERM');
  const result = await Promise.race([peer.exited, sleep(3000).then(() => 'timeout')]);
  assert.deepEqual(result, { code: 0, signal: null }, `${peer.name} on SIGTERM`);
}

async function healthz(port) {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok');
}

/** A raw WebSocket that keeps every text frame until a waitFor takes it. */
class Conn {
  static open(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.once('open', () => resolve(new Conn(ws)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`${url}: HTTP ${res.statusCode}`)));
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = new Set();
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    this.autoPong = true; // Engine.IO: answer the server's "2" with "3"
    this.pings = 0;
    ws.on('message', (data) => {
      const text = data.toString('utf8');
      if (text === '2') {
        this.pings++;
        if (this.autoPong) ws.send('3');
        return;
      }
      this.frames.push(text);
      for (const w of this.waiters) w();
    });
  }

  send(text) {
    this.ws.send(text);
  }

  /** Resolves with (and removes) the first kept frame for which pred(frame) is true. */
  waitFor(pred, what = 'frame', ms = kTimeoutMs) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.frames.findIndex((f) => {
          try {
            return pred(f);
          } catch {
            return false;
          }
        });
        if (i < 0) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(this.frames.splice(i, 1)[0]);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no ${what} in ${ms} ms; kept frames: ${JSON.stringify(this.frames)}`));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  close() {
    this.ws.terminate();
  }
}

// ---------- ws_server: our JSON protocol ----------

async function smokeWs() {
  const peer = await startPeer('ws_server.mjs');
  try {
    await healthz(peer.port);
    const url = `ws://127.0.0.1:${peer.port}/ws`;
    await assert.rejects(Conn.open(`ws://127.0.0.1:${peer.port}/other`), /HTTP 404/);

    const alice = await Conn.open(`${url}?token=${token('alice')}`);
    const anon = await Conn.open(`${url}?x=1`); // no token: from is u<connection number>
    const call = async (c, frame) => {
      c.send(JSON.stringify(frame));
      return JSON.parse(await c.waitFor((f) => JSON.parse(f).ref === frame.ref, `reply to ref ${frame.ref}`));
    };

    assert.deepEqual(await call(alice, { ref: 1, join: { room: 'r1' } }), { ref: 1, joined: { room: 'r1', lastSeq: '0' } });
    assert.deepEqual(await call(anon, { ref: 1, join: { room: 'r1' } }), { ref: 1, joined: { room: 'r1', lastSeq: '0' } });

    for (const [c, clientId, from, seq] of [[alice, 'a-1', 'alice', '1'], [anon, 'b-1', 'u2', '2']]) {
      const { ack } = await call(c, { ref: 2, send: { room: 'r1', clientId, text: `hi from ${from}` } });
      assert.equal(ack.room, 'r1');
      assert.equal(ack.seq, seq);
      assert.match(ack.id, /^[0-9a-f-]{36}$/);
      assert.ok(!Number.isNaN(Date.parse(ack.ts)));
      for (const member of [alice, anon]) {
        const { message } = JSON.parse(await member.waitFor((f) => JSON.parse(f).message?.clientId === clientId, 'broadcast'));
        assert.deepEqual(message, { room: 'r1', seq, id: ack.id, clientId, from, text: `hi from ${from}`, ts: ack.ts });
      }
    }

    assert.deepEqual(await call(alice, { ref: 3, ping: {} }), { ref: 3, pong: {} });
    assert.equal((await call(alice, { ref: 4, history: { room: 'r1' } })).error.code, 'bad_request');
    assert.equal((await call(alice, { ref: 5, ping: {}, join: { room: 'r1' } })).error.code, 'bad_request');
    assert.equal((await call(alice, { ref: 6, send: { room: 'r1' } })).error.code, 'bad_request');
    alice.send('not json');
    assert.equal(JSON.parse(await alice.waitFor((f) => JSON.parse(f).error, 'error frame')).error.code, 'bad_request');

    const late = await Conn.open(url);
    assert.deepEqual(await call(late, { ref: 1, join: { room: 'r1' } }), { ref: 1, joined: { room: 'r1', lastSeq: '2' } });

    // SIGTERM with clients still connected: they get a 1001 close and the process exits 0.
    await stopPeer(peer);
    assert.equal(await alice.closed, 1001);
    console.log('smoke: ws_server ok');
  } finally {
    peer.proc.kill('SIGKILL');
  }
}

// ---------- socketio_server: Engine.IO v4 / Socket.IO v4 over a raw WebSocket ----------

/** Opens the Engine.IO session and connects the main namespace; auth goes in the "40" packet. */
async function sioConnect(port, { auth, query = '' } = {}) {
  const c = await Conn.open(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket${query}`);
  const open = JSON.parse((await c.waitFor((f) => f[0] === '0', 'Engine.IO open packet')).slice(1));
  assert.equal(typeof open.sid, 'string');
  assert.equal(typeof open.pingInterval, 'number');
  assert.equal(typeof open.pingTimeout, 'number');
  c.send(auth ? `40${JSON.stringify(auth)}` : '40');
  const connect = JSON.parse((await c.waitFor((f) => f.startsWith('40'), 'namespace connect')).slice(2));
  assert.equal(typeof connect.sid, 'string');
  c.sid = connect.sid; // the Socket.IO socket.id, not the Engine.IO sid of the open packet
  c.nextAck = 0;
  return c;
}

/** 42<id>["event",arg] -> resolves with the argument of the server's 43<id>[...]. */
async function emitWithAck(c, event, arg) {
  const id = c.nextAck++;
  c.send(`42${id}${JSON.stringify([event, arg])}`);
  const reply = await c.waitFor((f) => f.startsWith(`43${id}[`), `ack ${id} for ${event}`);
  return JSON.parse(reply.slice(2 + String(id).length))[0];
}

/** Waits for 42["message",{...}] matching pred; returns the message object. */
async function nextMessage(c, pred = () => true) {
  const f = await c.waitFor((f) => {
    if (!f.startsWith('42[')) return false;
    const [event, msg] = JSON.parse(f.slice(2));
    return event === 'message' && pred(msg);
  }, 'broadcast 42["message",...]');
  return JSON.parse(f.slice(2))[1];
}

async function smokeSocketIo() {
  const dir = mkdtempSync(path.join(tmpdir(), 'peers-smoke-'));
  const run = (cmd) => new Promise((resolve, reject) => {
    const p = spawn('bash', [serversSh, cmd, dir], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`servers.sh ${cmd} exited ${code}`))));
  });
  const peers = [];
  let pool;
  try {
    await run('start'); // inside the try: servers.sh stop also clears what a failed start left
    const env = Object.fromEntries(readFileSync(path.join(dir, 'env'), 'utf8').trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
    // Two replicas started together (race on CREATE TABLE IF NOT EXISTS), short pings to see one.
    const peerEnv = { DATABASE_URL: env.DATABASE_URL, REDIS_ADDR: env.REDIS_ADDR, PG_POOL: '4', SIO_PING_INTERVAL_MS: '300', SIO_PING_TIMEOUT_MS: '300' };
    peers.push(...(await Promise.all([startPeer('socketio_server.mjs', peerEnv), startPeer('socketio_server.mjs', peerEnv)])));
    const [a, b] = peers;
    await healthz(a.port);
    await healthz(b.port);

    const alice = await sioConnect(a.port, { auth: { token: token('alice') } }); // auth in 40{...}
    const bob = await sioConnect(a.port, { query: `&token=${token('bob')}` }); // token in the query
    const carol = await sioConnect(b.port); // plain 40: from is her socket id
    for (const c of [alice, bob, carol]) assert.deepEqual(await emitWithAck(c, 'join', 'r1'), { room: 'r1', lastSeq: 0 });

    // alice on replica a -> bob (a) and carol (b, through Redis); carol on b -> alice and bob on a.
    let lastSeq = 0;
    for (const [c, from] of [[alice, 'alice'], [carol, carol.sid], [bob, 'bob']]) {
      const clientId = `${from}-1`;
      const ack = await emitWithAck(c, 'send', { room: 'r1', clientId, text: `hi from ${from}` });
      assert.deepEqual(Object.keys(ack).sort(), ['id', 'room', 'seq', 'ts']);
      assert.equal(ack.room, 'r1');
      assert.ok(Number(ack.seq) > lastSeq, `seq grows: ${ack.seq}`);
      lastSeq = Number(ack.seq);
      for (const member of [alice, bob, carol]) {
        const msg = await nextMessage(member, (m) => m.clientId === clientId);
        assert.deepEqual(msg, { room: 'r1', seq: ack.seq, id: ack.id, clientId, from, text: `hi from ${from}`, ts: ack.ts });
      }
    }

    // Same (sender, clientId) again: the first message comes back, marked duplicate, and nobody gets a broadcast.
    const first = await emitWithAck(alice, 'send', { room: 'r1', clientId: 'dup', text: 'once' });
    for (const member of [alice, bob, carol]) await nextMessage(member, (m) => m.clientId === 'dup');
    const again = await emitWithAck(alice, 'send', { room: 'r1', clientId: 'dup', text: 'twice' });
    assert.deepEqual(again, { ...first, duplicate: true });
    await sleep(300);
    for (const member of [alice, bob, carol]) assert.deepEqual(member.frames, [], 'no broadcast for a duplicate');

    assert.equal((await emitWithAck(alice, 'send', { room: 'r1' })).error.code, 'bad_request');
    // Sloppy frames (no ack id, an extra argument where the ack goes, an unknown event) get no answer
    // and must not take the server down: the next call still works.
    alice.send('42["join","r9","extra"]');
    alice.send('427["nosuch",1]');
    assert.deepEqual(await emitWithAck(alice, 'join', { room: 'r2' }), { room: 'r2', lastSeq: 0 });

    pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 1 });
    const { rows } = await pool.query('SELECT sender, client_id, body FROM messages ORDER BY seq');
    assert.deepEqual(rows.map((r) => `${r.sender}/${r.client_id}/${r.body}`),
      ['alice/alice-1/hi from alice', `${carol.sid}/${carol.sid}-1/hi from ${carol.sid}`, 'bob/bob-1/hi from bob', 'alice/dup/once']);

    // Heartbeat: the server sends "2"; a client answering "3" stays, one that does not is dropped
    // after pingInterval + pingTimeout.
    await sleep(1000);
    assert.ok(alice.pings >= 2, `alice saw ${alice.pings} pings`);
    const mute = await sioConnect(b.port);
    mute.autoPong = false;
    const code = await Promise.race([mute.closed, sleep(3000).then(() => 'still open')]);
    assert.notEqual(code, 'still open', 'a client that does not answer "3" is disconnected');
    assert.equal(alice.ws.readyState, WebSocket.OPEN);

    for (const p of peers) await stopPeer(p);
    console.log('smoke: socketio_server ok (2 replicas through Redis)');
  } finally {
    for (const p of peers) p.proc.kill('SIGKILL');
    await pool?.end();
    await run('stop');
  }
}

await smokeWs();
await smokeSocketIo();
console.log('smoke: all passed');
process.exit(0); // leftover client sockets must not keep the process alive
