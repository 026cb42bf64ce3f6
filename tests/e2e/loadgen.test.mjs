// The benchmark's load generator (bench/loadgen, issue #8) against the real stack. It speaks WebSocket
// itself (bench/loadgen/ws_wire.h), so this checks what the benchmark's figures rest on: every send is
// acked and every delivery counted, with and without permessage-deflate; a quiet connection answers the
// gateway's pings and stays; a refused upgrade is reported with its HTTP status.
// Skipped where chat-loadgen is not built (the sanitizer build leaves bench/ out).
//
// Run: CHAT_BIN_DIR=build/release/bin node --test tests/e2e/loadgen.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startStack } from './lib/stack.mjs';

const LOADGEN = path.join(process.env.CHAT_BIN_DIR ?? '', 'chat-loadgen');
const built = fs.existsSync(LOADGEN);
const ROOMS = 5;

let stack;

before(async () => {
  if (!built) return;
  stack = await startStack({
    gateways: 1,
    env: {
      // WS_DEFLATE lets the --deflate run compress; a client that does not offer it is served plain.
      // HEARTBEAT_SECONDS=1: a connection quiet for 1 s is pinged, for 2 s dropped.
      gateway: { WS_DEFLATE: '1', HEARTBEAT_SECONDS: '1', SEND_RATE_PER_SECOND: '1000', SEND_BURST: '1000' },
      messages: { SEED_PUBLIC_ROOMS: Array.from({ length: ROOMS }, (_, i) => `r${i}`).join(',') },
    },
  });
}, { timeout: 5 * 60_000 });

after(async () => {
  await stack?.teardown();
});

/** Runs chat-loadgen against gateway-0 and resolves with its JSON report (the last line of stdout). */
function loadgen(args, { secret = stack.secret } = {}) {
  const all = ['--url', stack.gateways[0].wsUrl, '--jwt-secret', secret, '--quiet', ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(LOADGEN, all, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop();
      try {
        resolve({ code, report: JSON.parse(last), stderr: err });
      } catch {
        reject(new Error(`chat-loadgen exited ${code} without a report: ${err.slice(-2000)}`));
      }
    });
  });
}

function assertWhole(r, label) {
  assert.deepEqual(r.connect.errors, {}, `${label}: connect errors`);
  assert.equal(r.connect.ok, 40, `${label}: every connection ready`);
  assert.equal(r.join.ok, 40, `${label}: every join answered`);
  assert.equal(r.welcomes, 40, `${label}: each connection's welcome read`);
  assert.ok(r.sent >= 150, `${label}: sends made (${r.sent})`);
  assert.equal(r.acked, r.sent, `${label}: every send acked`);
  assert.equal(r.send_errors, 0, `${label}: no send refused`);
  assert.equal(r.deliveries, r.expected_deliveries, `${label}: every delivery counted`);
  assert.equal(r.lost, 0, `${label}: nothing lost`);
  assert.equal(r.unparsed_frames, 0, `${label}: every frame understood`);
  assert.deepEqual(r.disconnects, {}, `${label}: no connection dropped`);
}

const LOAD = ['--connections', '40', '--rooms', String(ROOMS), '--senders-per-room', '2', '--rate', '100',
  '--warmup', '1', '--duration', '2', '--drain', '1'];

test('every send is acked and every delivery counted, plain and with permessage-deflate', { skip: !built && 'chat-loadgen not built', timeout: 120_000 }, async () => {
  const plain = await loadgen(LOAD);
  assert.equal(plain.code, 0, plain.stderr);
  assertWhole(plain.report, 'plain');
  // 8 members a room: each message reaches all of them, its sender included.
  assert.equal(plain.report.expected_deliveries, plain.report.sent * 8);

  const before = await stack.metric('gateway-0', 'chat_ws_frames_deflated_total');
  // Texts above WS_DEFLATE_MIN_BYTES (256) go out compressed.
  const deflated = await loadgen([...LOAD, '--deflate', '--text-bytes', '600']);
  assert.equal(deflated.code, 0, deflated.stderr);
  assertWhole(deflated.report, 'deflate');
  const compressed = (await stack.metric('gateway-0', 'chat_ws_frames_deflated_total')) - before;
  assert.ok(compressed >= deflated.report.sent, `broadcasts went out compressed (${compressed} frames)`);
});

test('a quiet connection answers the gateway\'s pings and is kept', { skip: !built && 'chat-loadgen not built', timeout: 120_000 }, async () => {
  // 4 s idle before sending: with HEARTBEAT_SECONDS=1 the gateway pings each connection after 1 s of
  // quiet and drops one quiet for 2 s, so only answered pings keep all 40 (assertWhole: no disconnects).
  const r = await loadgen([...LOAD, '--idle-seconds', '4']);
  assert.equal(r.code, 0, r.stderr);
  assertWhole(r.report, 'after 4 s idle');
});

test('a refused upgrade is reported with its HTTP status', { skip: !built && 'chat-loadgen not built', timeout: 60_000 }, async () => {
  const r = await loadgen(['--connections', '3', '--rooms', '1', '--rate', '0', '--duration', '0', '--drain', '0'],
    { secret: 'not-the-gateway-secret' });
  assert.equal(r.report.connect.ok, 0);
  assert.deepEqual(r.report.connect.errors, { 'handshake: HTTP 401': 3 });
});
