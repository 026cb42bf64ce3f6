// Driven by tests/deploy/lb_smoke.sh: talks to two real gateways only through nginx running
// deploy/nginx/chat.conf. Env: LB_URL (http://127.0.0.1:PORT), GATEWAY_PIDS ("gw-a:PID,gw-b:PID"),
// METRICS_URLS (the /metrics of messages and presence, comma-separated), DRAINED_FILE (gets the id of
// the gateway it drains).
// Prints "ok - ..." per check and exits non-zero on the first failure.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const WebSocket = require(path.join(here, '..', 'e2e', 'node_modules', 'ws'));

const LB = process.env.LB_URL;
const WS_URL = LB.replace(/^http/, 'ws');
const PIDS = Object.fromEntries((process.env.GATEWAY_PIDS || '').split(',').map((kv) => kv.split(':')));
const TIMEOUT_MS = 10_000;
let passed = 0;

function ok(what) {
  passed++;
  console.log(`ok - ${what}`);
}

function withTimeout(promise, what, ms = TIMEOUT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// A WebSocket client that queues frames so a test can wait for the next one matching a predicate.
class Client {
  constructor(user, token) {
    this.user = user;
    this.frames = [];
    this.waiters = [];
    this.ws = new WebSocket(`${WS_URL}/ws?token=${encodeURIComponent(token)}`);
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
    this.ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      const i = this.waiters.findIndex((w) => w.match(frame));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(frame);
      else this.frames.push(frame);
    });
  }
  next(match, what) {
    const i = this.frames.findIndex(match);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return withTimeout(new Promise((resolve) => this.waiters.push({ match, resolve })), `${this.user}: ${what}`);
  }
  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }
  async welcome() {
    await withTimeout(this.opened, `${this.user}: WebSocket open`);
    const w = await this.next((f) => f.welcome, 'welcome');
    this.connectionId = w.welcome.connectionId;
    // Connection ids are {GATEWAY_ID}.{process id}-{n}.
    this.gateway = Object.keys(PIDS).find((id) => this.connectionId.startsWith(`${id}.`));
    return this;
  }
  close() {
    this.ws.terminate();
  }
}

async function login(user) {
  const res = await fetch(`${LB}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  assert.equal(res.status, 200, `POST /api/login for ${user}`);
  const body = await res.json();
  assert.ok(body.token, 'login returns a token');
  return body.token;
}

async function main() {
  const page = await fetch(`${LB}/`);
  assert.equal(page.status, 200, 'GET /');
  assert.match(await page.text(), /<html/i, 'GET / is the web page');
  ok('GET / through nginx serves the web page');

  const ready = await fetch(`${LB}/readyz`);
  assert.equal(ready.status, 200, 'GET /readyz');
  ok('GET /readyz through nginx is 200');

  const tokens = { alice: await login('alice'), bob: await login('bob') };
  ok('POST /api/login through nginx mints tokens');

  // least_conn sends a new connection to the replica with fewer: keep connecting bob until one lands
  // on the other replica than alice's.
  const alice = await new Client('alice', tokens.alice).welcome();
  assert.ok(alice.gateway, `alice's connection id ${alice.connectionId} names a gateway`);
  const extra = [];
  let bob;
  for (let i = 0; i < 6; i++) {
    const c = await new Client('bob', tokens.bob).welcome();
    if (c.gateway !== alice.gateway) {
      bob = c;
      break;
    }
    extra.push(c);
  }
  assert.ok(bob, 'a WebSocket through nginx reaches the second replica');
  ok(`WebSocket upgrade through nginx reaches both replicas (alice on ${alice.gateway}, bob on ${bob.gateway})`);
  for (const c of extra) c.close();

  for (const [ref, c] of [[1, alice], [2, bob]]) {
    c.send({ ref, join: { room: 'general' } });
    await c.next((f) => f.ref === ref && (f.joined || f.error), 'joined').then((f) => assert.ok(f.joined, JSON.stringify(f)));
  }
  const clientId = `lb-${crypto.randomUUID()}`;
  const text = `hello through nginx ${clientId}`;
  alice.send({ ref: 3, send: { room: 'general', clientId, text } });
  const ack = await alice.next((f) => f.ref === 3 && (f.ack || f.error), 'ack');
  assert.ok(ack.ack, JSON.stringify(ack));
  const msg = await bob.next((f) => f.message && f.message.clientId === clientId, 'the message on the other replica');
  assert.equal(msg.message.text, text);
  assert.equal(msg.message.from, 'alice');
  ok('a message sent on one replica reaches a client on the other, through nginx');

  // Drain: SIGTERM alice's replica; alice is closed with 1001 and reconnects through nginx to the other.
  const drained = alice.gateway;
  if (process.env.DRAINED_FILE) fs.writeFileSync(process.env.DRAINED_FILE, drained);
  const t0 = Date.now();
  process.kill(Number(PIDS[drained]), 'SIGTERM');
  const closed = await withTimeout(alice.closed, 'close after SIGTERM', 8_000);
  assert.equal(closed.code, 1001, `close code after SIGTERM (reason '${closed.reason}')`);
  ok(`SIGTERM to ${drained}: its client is closed with 1001 after ${Date.now() - t0} ms`);

  let again;
  for (let i = 0; i < 20 && !again; i++) {
    try {
      again = await new Client('alice', tokens.alice).welcome();
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  assert.ok(again, 'alice reconnects through nginx after the drain');
  assert.notEqual(again.gateway, drained, 'the reconnect lands on the replica that is still up');
  ok(`reconnect through nginx lands on ${again.gateway}`);
  again.send({ ref: 4, join: { room: 'general' } });
  await again.next((f) => f.ref === 4 && f.joined, 'joined after reconnect');
  ok('rejoin after the reconnect');

  // A malformed frame (no body) gets an error frame, so chat_errors_total has a series too.
  again.send({ ref: 5 });
  const err = await again.next((f) => f.ref === 5 && f.error, 'error frame for a frame without a body');
  assert.equal(err.error.code, 'bad_request');

  // Every metric the Grafana dashboard queries is served live: the gateway's /metrics through nginx,
  // messages' and presence's on their metrics ports.
  const names = new Set();
  for (const url of [`${LB}/metrics`, ...(process.env.METRICS_URLS || '').split(',').filter(Boolean)]) {
    const res = await fetch(url);
    assert.equal(res.status, 200, `GET ${url}`);
    for (const line of (await res.text()).split('\n')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
      if (m) names.add(m[1]);
    }
  }
  const dashboard = JSON.parse(fs.readFileSync(path.join(here, '..', '..', 'deploy', 'grafana', 'chat-suite.json'), 'utf8'));
  const used = new Set();
  for (const p of dashboard.panels) for (const t of p.targets || []) for (const m of t.expr.match(/\bchat_[a-z0-9_]+/g) || []) used.add(m);
  const missing = [...used].filter((m) => !names.has(m)).sort();
  assert.deepEqual(missing, [], `dashboard metrics missing from the live /metrics: ${missing.join(', ')}`);
  ok(`all ${used.size} metric series the Grafana dashboard queries are served by the running processes`);

  for (const c of [again, bob]) c.close();
  console.log(`lb smoke: ${passed} passed, 0 failed`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`not ok - ${err.message}`);
    console.log(`lb smoke: ${passed} passed, 1 failed`);
    process.exit(1);
  },
);
