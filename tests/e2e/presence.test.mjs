// Presence and typing end to end (issue "Presence and typing"): real chat-messages, chat-presence and two
// chat-gateway replicas on a throwaway PostgreSQL + Redis, with short timers so the test runs in minutes:
// PRESENCE_GRACE_MS, PRESENCE_TTL_SECONDS and TYPING_EXPIRE_MS below (set on chat-presence; the TTL also
// on the gateways, which heartbeat every TTL/3).
//   (1) two tabs of one user on two replicas: closing one keeps them online, closing both makes them
//       offline once after the grace, re-joining within the grace publishes nothing; every transition
//       arrives exactly once at watchers on both replicas; presence event latency across replicas.
//   (2) kill -9 of a gateway: its users go offline (once) for the other replica within TTL + grace; a user
//       with a tab on the surviving replica stays online. (2b) the same with the killed gateway restarted at
//       once under the same GATEWAY_ID (a container restart keeps GATEWAY_ID: compose and k8s set it).
//   (3) typing reaches the other replica, is throttled, expires with one active:false, active:false goes
//       out at once, a message clears it silently; typing to a room not joined is forbidden.
//   (4) the presence query frame, joined.online and resumed.online.
//   (5) Redis operations per connect+join and per close (INFO commandstats deltas), on a stack of its own
//       whose gateways heartbeat rarely, so the figures hold only the connection's own work.
//   (6) a client that stops answering WebSocket pings is dropped and goes offline (same second stack,
//       HEARTBEAT_SECONDS=2).
// proto3 JSON omits false booleans: `online`/`active` missing means false, and the tests accept both.
// Latencies are printed, never asserted; waits are generous (ASan builds are several times slower).
//
// Run: CHAT_BIN_DIR=build/release/bin node --test --test-concurrency=1 tests/e2e/presence.test.mjs
// Knobs: E2E_PRESENCE_GRACE_MS (1500), E2E_PRESENCE_TTL_SECONDS (4), E2E_TYPING_EXPIRE_MS (1500),
// E2E_PRESENCE_SLACK_MS (20000, added to every deadline), E2E_PRESENCE_CASES (e.g. "1,2b"),
// E2E_LATENCY_SAMPLES (10), E2E_HEARTBEAT_SECONDS (2, second stack), E2E_KEEP=1 keeps the logs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { startStack } from './lib/stack.mjs';
import { ChatClient, sleep } from './lib/client.mjs';
import { describeMs } from './lib/checks.mjs';

const GRACE_MS = Number(process.env.E2E_PRESENCE_GRACE_MS || 1500);
const TTL_S = Number(process.env.E2E_PRESENCE_TTL_SECONDS || 4);
const TYPING_MS = Number(process.env.E2E_TYPING_EXPIRE_MS || 1500);
const SLACK_MS = Number(process.env.E2E_PRESENCE_SLACK_MS || 20_000);
const LATENCY_SAMPLES = Number(process.env.E2E_LATENCY_SAMPLES || 10);
const CASES = new Set((process.env.E2E_PRESENCE_CASES || '1,2,2b,3,4,5,6').split(',').map((s) => s.trim()));
// After a transition, a duplicate or a wrong event would show up within this long.
const QUIET_MS = GRACE_MS + 1500;
// Timers may fire a little early relative to what the client measured (clock granularity, batching).
const EARLY_TOLERANCE_MS = 250;
const EVENT_TIMEOUT_MS = GRACE_MS + SLACK_MS;
const TEST_TIMEOUT_MS = 15 * 60_000;

const ROOMS = {
  tabs: 'presence-tabs',
  latency: 'presence-latency',
  kill: 'presence-kill',
  killRestart: 'presence-kill-restart',
  typing: 'presence-typing',
  typingOther: 'presence-typing-other',
  query: 'presence-query',
  ops: 'presence-ops',
  heartbeat: 'presence-heartbeat',
};
const SEED_ROOMS = ['general', 'random', ...Object.values(ROOMS)].join(',');

let stack;
let failed = false;
const allClients = [];

function step(id, name, fn) {
  test(`(${id}) ${name}`, { timeout: TEST_TIMEOUT_MS, skip: !CASES.has(String(id)) }, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      failed = true;
      throw err;
    }
  });
}

before(async () => {
  stack = await startStack({
    gateways: 2,
    env: {
      presence: {
        PRESENCE_GRACE_MS: String(GRACE_MS),
        PRESENCE_TTL_SECONDS: String(TTL_S),
        TYPING_EXPIRE_MS: String(TYPING_MS),
      },
      gateway: { PRESENCE_TTL_SECONDS: String(TTL_S) },
      messages: { SEED_PUBLIC_ROOMS: SEED_ROOMS },
    },
  });
  console.log(`e2e(presence): PRESENCE_GRACE_MS=${GRACE_MS} PRESENCE_TTL_SECONDS=${TTL_S} TYPING_EXPIRE_MS=${TYPING_MS} ` +
    `slack=${SLACK_MS}ms`);
}, { timeout: 10 * 60_000 });

after(async () => {
  for (const c of allClients) c.terminate();
  if (!stack) return;
  if (failed || stack.unexpectedExits.length > 0) {
    console.error(`e2e(presence): failures or unexpected exits (${stack.unexpectedExits.join('; ') || 'none'}); log tails follow`);
    stack.printLogTails();
  }
  await stack.teardown();
}, { timeout: 5 * 60_000 });

// ---- helpers -------------------------------------------------------------------------------------

/** Arrival time (performance.now()) of every pushed frame of the clients made by connect(). */
const arrival = new WeakMap();

async function connect(user, gw, { on = stack } = {}) {
  const c = await ChatClient.connect(on.gateways[gw].wsUrl, on.token(user), { name: `${user}@gw${gw}` });
  allClients.push(c);
  assert.equal(c.welcome.user, user, `${c.name}: welcome.user`);
  // Stamp each frame as it lands in the inbox (ChatClient looks _onFrame up on every message).
  const orig = c._onFrame.bind(c);
  c._onFrame = (data, isBinary) => {
    const t = performance.now();
    const n = c.inbox.length;
    orig(data, isBinary);
    for (let i = n; i < c.inbox.length; i++) arrival.set(c.inbox[i], t);
  };
  return c;
}

const join = (c, room) => c.call({ join: { room } }, 'joined');
const leave = (c, room) => c.call({ leave: { room } }, 'left');

/** Presence events of `user` in `room` that `c` received, in order: {online, lastSeen, at, wall}. */
function presenceOf(c, room, user) {
  return c.inbox
    .filter((f) => f.presence && f.presence.room === room && f.presence.user === user)
    .map((f) => ({ online: f.presence.online === true, lastSeen: f.presence.lastSeen, raw: f.presence, at: arrival.get(f) }));
}

/** Typing events of `user` in `room` that `c` received, in order: {active, at}. */
function typingOf(c, room, user) {
  return c.inbox
    .filter((f) => f.typing && f.typing.room === room && f.typing.user === user)
    .map((f) => ({ active: f.typing.active === true, raw: f.typing, at: arrival.get(f) }));
}

const seqOf = (events) => events.map((e) => (e.online ? 'online' : 'offline')).join(',') || '(none)';

/** Waits until `c` holds at least n presence events of user in room; resolves with the n-th. */
async function nthPresence(c, room, user, n, timeoutMs = EVENT_TIMEOUT_MS) {
  await c.until(() => presenceOf(c, room, user).length >= n, timeoutMs,
    `presence event #${n} of ${user} in ${room} (has: ${seqOf(presenceOf(c, room, user))})`);
  return presenceOf(c, room, user)[n - 1];
}

function assertPresenceSeq(c, room, user, expected, what) {
  const got = presenceOf(c, room, user).map((e) => e.online);
  assert.deepEqual(got.map((o) => (o ? 'online' : 'offline')), expected.map((o) => (o ? 'online' : 'offline')),
    `${c.name}: presence events of ${user} in ${room} ${what}: ${JSON.stringify(presenceOf(c, room, user).map((e) => e.raw))}`);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** lastSeen is RFC 3339 and lies within [fromWall - 2 s, toWall + 2 s] (same host clock). */
function assertLastSeen(lastSeen, fromWall, toWall, what) {
  assert.ok(typeof lastSeen === 'string' && RFC3339.test(lastSeen), `${what}: lastSeen is RFC 3339 (got ${JSON.stringify(lastSeen)})`);
  const t = Date.parse(lastSeen);
  assert.ok(t >= fromWall - 2000 && t <= toWall + 2000,
    `${what}: lastSeen ${lastSeen} lies between ${new Date(fromWall).toISOString()} and ${new Date(toWall).toISOString()}`);
}

const sameSet = (a, b, what) => assert.deepEqual([...new Set(a ?? [])].sort(), [...new Set(b)].sort(), what);

/** Sends a presence query frame and returns presenceStatus (throws on an error reply). */
const queryPresence = (c, body) => c.call({ presence: body }, 'presenceStatus');

function statusOf(reply, user) {
  const u = (reply.users ?? []).find((x) => x.user === user);
  assert.ok(u, `presenceStatus lists ${user}: ${JSON.stringify(reply)}`);
  return { online: u.online === true, lastSeen: u.lastSeen, raw: u };
}

const round = (ms) => Math.round(ms);

// ---- (1) tabs, grace, flapping -------------------------------------------------------------------

step(1, 'two tabs on two replicas: one closing keeps the user online, both closing -> one offline after the grace, re-join within the grace -> nothing', async () => {
  const R = ROOMS.tabs;
  const BOB = 'tabs-bob';
  const alice = await connect('tabs-alice', 0);
  const carol = await connect('tabs-carol', 1);
  await join(alice, R);
  await join(carol, R);
  const watchers = [alice, carol];

  // bob's first tab (replica 1): one online event at each watcher.
  const tab1 = await connect(BOB, 1);
  const tJoin1 = performance.now();
  const j1 = await join(tab1, R);
  const ev = await Promise.all(watchers.map((w) => nthPresence(w, R, BOB, 1)));
  for (const [k, e] of ev.entries()) assert.equal(e.online, true, `${watchers[k].name}: first event of ${BOB} is online`);
  console.log(`e2e(1): ${BOB} joined on gw1; online event at alice@gw0 after ${round(ev[0].at - tJoin1)} ms, ` +
    `at carol@gw1 after ${round(ev[1].at - tJoin1)} ms; joined.online=${JSON.stringify(j1.online ?? [])}`);
  sameSet(j1.online, ['tabs-alice', 'tabs-carol', BOB], `${BOB}'s joined.online`);

  // Second tab on the other replica: bob already online, nothing published.
  const tab2 = await connect(BOB, 0);
  const j2 = await join(tab2, R);
  sameSet(j2.online, ['tabs-alice', 'tabs-carol', BOB], `${BOB}'s second tab joined.online`);
  await sleep(QUIET_MS);
  for (const w of watchers) assertPresenceSeq(w, R, BOB, [true], 'after the second tab joined');

  // Closing one tab keeps bob online: no event, not even after the grace.
  await tab1.close();
  await sleep(QUIET_MS);
  for (const w of watchers) assertPresenceSeq(w, R, BOB, [true], 'after closing one of two tabs');
  const q1 = await queryPresence(alice, { room: R, users: [BOB] });
  assert.equal(statusOf(q1, BOB).online, true, `${BOB} is online with one tab left: ${JSON.stringify(q1)}`);
  sameSet(q1.online, ['tabs-alice', 'tabs-carol', BOB], 'room online with one tab of bob left');

  // Closing the last tab: exactly one offline event, after the grace.
  const wallClose = Date.now();
  const tClose = performance.now();
  await tab2.close();
  const off = await Promise.all(watchers.map((w) => nthPresence(w, R, BOB, 2)));
  const offAfter = off.map((e) => round(e.at - tClose));
  for (const [k, e] of off.entries()) {
    assert.equal(e.online, false, `${watchers[k].name}: second event of ${BOB} is offline`);
    assert.ok(offAfter[k] >= GRACE_MS - EARLY_TOLERANCE_MS,
      `${watchers[k].name}: offline came ${offAfter[k]} ms after the close, before the grace of ${GRACE_MS} ms`);
    assertLastSeen(e.lastSeen, wallClose, Date.now(), `${watchers[k].name}: offline event of ${BOB}`);
  }
  console.log(`e2e(1): last tab closed; offline at alice@gw0 after ${offAfter[0]} ms, at carol@gw1 after ${offAfter[1]} ms ` +
    `(grace ${GRACE_MS} ms); lastSeen=${off[0].lastSeen}`);
  await sleep(QUIET_MS);
  for (const w of watchers) assertPresenceSeq(w, R, BOB, [true, false], 'after closing both tabs');
  const q2 = await queryPresence(alice, { room: R, users: [BOB] });
  assert.equal(statusOf(q2, BOB).online, false, `${BOB} is offline: ${JSON.stringify(q2)}`);
  assertLastSeen(statusOf(q2, BOB).lastSeen, wallClose, Date.now(), 'presence query after the offline');
  sameSet(q2.online, ['tabs-alice', 'tabs-carol'], 'room online after bob went offline');

  // Back online: one online event.
  const tab3 = await connect(BOB, 1);
  await join(tab3, R);
  for (const w of watchers) assert.equal((await nthPresence(w, R, BOB, 3)).online, true, `${w.name}: ${BOB} back online`);

  // Flapping within the grace publishes nothing. Each new tab is connected before the old one goes, so
  // that the gap between losing the room and re-joining it is one join request.
  const gaps = [];
  // (a) close on replica 1, re-join on replica 0.
  const tab4 = await connect(BOB, 0);
  let t0 = performance.now();
  await tab3.close();
  await join(tab4, R);
  gaps.push(['close gw1 -> join gw0', round(performance.now() - t0)]);
  // (b) leave and join again on the same connection.
  t0 = performance.now();
  await leave(tab4, R);
  await join(tab4, R);
  gaps.push(['leave -> join same socket', round(performance.now() - t0)]);
  // (c) abrupt socket loss (no close frame) on replica 0, re-join on replica 1.
  const tab5 = await connect(BOB, 1);
  t0 = performance.now();
  tab4.terminate();
  await join(tab5, R);
  gaps.push(['terminate gw0 -> join gw1', round(performance.now() - t0)]);
  console.log(`e2e(1): flaps (time without a joined tab, client side): ${gaps.map(([w, ms]) => `${w} ${ms} ms`).join('; ')}`);
  for (const [w, ms] of gaps) {
    assert.ok(ms < GRACE_MS * 0.8, `flap "${w}" took ${ms} ms, too close to the grace of ${GRACE_MS} ms to test it (raise E2E_PRESENCE_GRACE_MS)`);
  }
  await sleep(QUIET_MS + GRACE_MS);
  for (const w of watchers) assertPresenceSeq(w, R, BOB, [true, false, true], 'after three flaps within the grace');

  // Leaving the room (socket stays open) is going away from the room: offline after the grace, once.
  const tLeave = performance.now();
  await leave(tab5, R);
  const offLeave = await Promise.all(watchers.map((w) => nthPresence(w, R, BOB, 4)));
  for (const [k, e] of offLeave.entries()) {
    assert.equal(e.online, false, `${watchers[k].name}: ${BOB} offline after leave`);
    assert.ok(e.at - tLeave >= GRACE_MS - EARLY_TOLERANCE_MS, `${watchers[k].name}: offline after leave came before the grace`);
  }
  console.log(`e2e(1): after leave (socket open): offline at alice after ${round(offLeave[0].at - tLeave)} ms`);
  await sleep(QUIET_MS);
  for (const w of watchers) assertPresenceSeq(w, R, BOB, [true, false, true, false], 'at the end');
  await tab5.close();
  await sleep(QUIET_MS);
  for (const w of watchers) assertPresenceSeq(w, R, BOB, [true, false, true, false], 'after closing a socket that had left the room');
  console.log(`e2e(1): events of ${BOB} at alice@gw0: ${seqOf(presenceOf(alice, R, BOB))}; at carol@gw1: ${seqOf(presenceOf(carol, R, BOB))} (each transition once)`);

  // Presence event latency, same and across replicas: a fresh user joins; watchers on both replicas.
  const L = ROOMS.latency;
  const w0 = await connect('lat-watch0', 0);
  const w1 = await connect('lat-watch1', 1);
  await join(w0, L);
  await join(w1, L);
  const cross = [];
  const same = [];
  const offLag = [];
  for (let k = 0; k < LATENCY_SAMPLES; k++) {
    const gw = k % 2;
    const user = `lat-${k}-${crypto.randomBytes(3).toString('hex')}`;
    const c = await connect(user, gw);
    const t = performance.now();
    await join(c, L);
    const [e0, e1] = await Promise.all([nthPresence(w0, L, user, 1), nthPresence(w1, L, user, 1)]);
    assert.ok(e0.online && e1.online, `${user}: online at both watchers`);
    (gw === 0 ? same : cross).push(round(e0.at - t));
    (gw === 1 ? same : cross).push(round(e1.at - t));
    const tc = performance.now();
    await c.close();
    const [f0, f1] = await Promise.all([nthPresence(w0, L, user, 2), nthPresence(w1, L, user, 2)]);
    assert.ok(!f0.online && !f1.online, `${user}: offline at both watchers`);
    offLag.push(round(f0.at - tc - GRACE_MS), round(f1.at - tc - GRACE_MS));
  }
  console.log(`e2e(1): presence online latency (join sent -> event), across replicas: ${describeMs(cross)} ms; ` +
    `same replica: ${describeMs(same)} ms`);
  console.log(`e2e(1): offline event after close minus grace (${GRACE_MS} ms), both replicas: ${describeMs(offLag)} ms`);
  await Promise.all([alice, carol, w0, w1].map((c) => c.close()));
});

// ---- (2) kill -9 of a gateway ---------------------------------------------------------------------

async function killCase({ room, restartAtOnce }) {
  const alice = await connect(`${room}-alice`, 0);
  await join(alice, room);
  const bob = `${room}-bob`;
  const dave = `${room}-dave`;
  const bobTab = await connect(bob, 1);
  await join(bobTab, room);
  const daveTabs = [await connect(dave, 0), await connect(dave, 1)];
  for (const d of daveTabs) await join(d, room);
  await nthPresence(alice, room, bob, 1);
  await nthPresence(alice, room, dave, 1);
  await sleep(500);
  assertPresenceSeq(alice, room, dave, [true], 'before the kill');

  const deadline = TTL_S * 1000 + GRACE_MS + SLACK_MS;
  const wallKill = Date.now();
  const tKill = performance.now();
  await stack.killProc('gateway-1');
  let tRestarted = null;
  if (restartAtOnce) {
    await stack.startProc('gateway-1');
    tRestarted = performance.now();
  }
  try {
    let off;
    try {
      off = await nthPresence(alice, room, bob, 2, deadline);
    } catch (err) {
      const q = await queryPresence(alice, { room, users: [bob] }).catch((e) => e.message);
      throw new Error(`${bob} (only tab on the killed gateway-1${restartAtOnce ? ', restarted at once under the same GATEWAY_ID' : ''}) ` +
        `not reported offline within ${deadline} ms of the kill; presence query now says ${JSON.stringify(q)}: ${err.message}`);
    }
    const tookMs = round(off.at - tKill);
    assert.equal(off.online, false, `${bob} reported offline after the kill`);
    assert.ok(tookMs >= GRACE_MS - EARLY_TOLERANCE_MS, `offline after the kill came after ${tookMs} ms, before the grace of ${GRACE_MS} ms`);
    assertLastSeen(off.lastSeen, wallKill - TTL_S * 1000, Date.now(), `offline event of ${bob} after the kill`);
    console.log(`e2e(2${restartAtOnce ? 'b' : ''}): kill -9 of gateway-1${restartAtOnce ? ` (restarted under the same GATEWAY_ID after ${round(tRestarted - tKill)} ms)` : ''}: ` +
      `${bob} offline at alice@gw0 ${tookMs} ms after the kill (TTL ${TTL_S * 1000} ms + grace ${GRACE_MS} ms = ${TTL_S * 1000 + GRACE_MS} ms); lastSeen=${off.lastSeen}`);

    // No second offline (e.g. one when the stream broke and one when the TTL ran out), and dave, who
    // still has a tab on gateway-0, never goes offline.
    await sleep(TTL_S * 1000 + QUIET_MS);
    assertPresenceSeq(alice, room, bob, [true, false], 'after the kill');
    assertPresenceSeq(alice, room, dave, [true], 'after the kill (a tab on the surviving replica)');
    const q = await queryPresence(alice, { room, users: [bob, dave] });
    assert.equal(statusOf(q, bob).online, false, `${bob} offline in the query: ${JSON.stringify(q)}`);
    assert.equal(statusOf(q, dave).online, true, `${dave} online in the query: ${JSON.stringify(q)}`);
    sameSet(q.online, [`${room}-alice`, dave], `room online after the kill: ${JSON.stringify(q)}`);
  } finally {
    if (!stack.proc('gateway-1').running) await stack.startProc('gateway-1');
  }

  // Back on the restarted replica: online once, and offline once after the grace.
  const again = await connect(bob, 1);
  await join(again, room);
  assert.equal((await nthPresence(alice, room, bob, 3)).online, true, `${bob} online again on the restarted gateway-1`);
  await again.close();
  assert.equal((await nthPresence(alice, room, bob, 4)).online, false, `${bob} offline again`);
  await sleep(QUIET_MS);
  assertPresenceSeq(alice, room, bob, [true, false, true, false], 'at the end');
  assertPresenceSeq(alice, room, dave, [true], 'at the end');
  await Promise.all([alice, daveTabs[0]].map((c) => c.close()));
}

step(2, 'kill -9 of a gateway: its users go offline once for the other replica within TTL + grace', async () => {
  await killCase({ room: ROOMS.kill, restartAtOnce: false });
});

// A container restart (docker restart policy, a Kubernetes container restart in the same pod) brings
// the gateway back under the same GATEWAY_ID, usually within the TTL: the dead process's users must still
// go offline, not stay online behind the new process's heartbeats.
step('2b', 'kill -9 of a gateway restarted at once under the same GATEWAY_ID: its users still go offline once', async () => {
  await killCase({ room: ROOMS.killRestart, restartAtOnce: true });
});

// ---- (3) typing ------------------------------------------------------------------------------------

step(3, 'typing: reaches the other replica, throttled, expires with one active:false, clears silently on send; forbidden outside the room', async () => {
  const R = ROOMS.typing;
  const A = 'typing-alice';
  const alice = await connect(A, 0);
  const bob = await connect('typing-bob', 1); // the other replica
  const carol = await connect('typing-carol', 0); // alice's replica
  for (const c of [alice, bob, carol]) await join(c, R);
  const watchers = [bob, carol];
  const typing = (active, extra = {}) => alice.sendRaw({ ...extra, typing: { room: R, active } });
  const count = (c, from) => {
    const ev = typingOf(c, R, A).slice(from);
    return { on: ev.filter((e) => e.active).length, off: ev.filter((e) => !e.active).length, ev };
  };
  const mark = () => watchers.map((w) => typingOf(w, R, A).length);

  // (a) 10 frames within ~1 s: 1 or 2 active:true, then one active:false on expiry.
  let base = mark();
  const tFirst = performance.now();
  let tLast = tFirst;
  for (let k = 0; k < 10; k++) {
    typing(true, k === 0 ? { ref: 9001 } : {}); // a ref on typing gets no reply
    tLast = performance.now();
    if (k < 9) await sleep(100);
  }
  await Promise.all(watchers.map((w, i) => w.until(() => count(w, base[i]).on >= 1, EVENT_TIMEOUT_MS, 'typing active:true')));
  const firstOn = watchers.map((w, i) => count(w, base[i]).ev.find((e) => e.active));
  console.log(`e2e(3): typing active:true after ${round(firstOn[0].at - tFirst)} ms at bob@gw1 (other replica), ` +
    `${round(firstOn[1].at - tFirst)} ms at carol@gw0 (same replica)`);
  await Promise.all(watchers.map((w, i) => w.until(() => count(w, base[i]).off >= 1, TYPING_MS + SLACK_MS, 'typing active:false on expiry')));
  const expiry = watchers.map((w, i) => count(w, base[i]).ev.find((e) => !e.active));
  for (const [i, w] of watchers.entries()) {
    const { on } = count(w, base[i]);
    assert.ok(on >= 1 && on <= 2, `${w.name}: 10 typing frames in 1 s give 1 or 2 active:true events (got ${on})`);
    const afterLast = round(expiry[i].at - tLast);
    assert.ok(afterLast >= TYPING_MS - EARLY_TOLERANCE_MS,
      `${w.name}: active:false ${afterLast} ms after the last refresh, before TYPING_EXPIRE_MS ${TYPING_MS} (a throttled refresh must still extend the expiry)`);
  }
  console.log(`e2e(3): 10 frames in ${round(tLast - tFirst)} ms -> ${count(bob, base[0]).on} active:true at bob, ${count(carol, base[1]).on} at carol; ` +
    `active:false ${round(expiry[0].at - tLast)} ms after the last frame (expiry ${TYPING_MS} ms)`);
  await sleep(TYPING_MS + 1000);
  for (const [i, w] of watchers.entries()) {
    const { on, off, ev } = count(w, base[i]);
    assert.equal(off, 1, `${w.name}: exactly one active:false on expiry: ${JSON.stringify(ev.map((e) => e.raw))}`);
    assert.ok(!ev.at(-1).active && on <= 2, `${w.name}: ends with active:false`);
  }
  assert.ok(!alice.inbox.some((f) => f.ref === 9001), `typing with a ref gets no reply: ${JSON.stringify(alice.inbox.filter((f) => f.ref === 9001))}`);

  // (b) sustained typing for 3 s: at most one event a second, never active:false while refreshed; then
  // an explicit active:false goes out at once and only once.
  base = mark();
  const tStart = performance.now();
  let tEnd = tStart;
  while (performance.now() - tStart < 3000) {
    typing(true);
    tEnd = performance.now();
    await sleep(250);
  }
  await sleep(300);
  const spanS = (tEnd - tStart) / 1000;
  for (const [i, w] of watchers.entries()) {
    const { on, off } = count(w, base[i]);
    assert.equal(off, 0, `${w.name}: no active:false while typing keeps being refreshed (expiry ${TYPING_MS} ms, refresh 250 ms)`);
    assert.ok(on >= 1 && on <= Math.floor(spanS) + 2, `${w.name}: at most one active:true a second over ${spanS.toFixed(1)} s (got ${on})`);
  }
  console.log(`e2e(3): typing refreshed every 250 ms for ${spanS.toFixed(1)} s -> ${count(bob, base[0]).on} active:true at bob@gw1, ` +
    `${count(carol, base[1]).on} at carol@gw0, no active:false`);
  const tStop = performance.now();
  typing(false);
  await Promise.all(watchers.map((w, i) => w.until(() => count(w, base[i]).off >= 1, EVENT_TIMEOUT_MS, 'active:false after an explicit stop')));
  const stopAt = watchers.map((w, i) => count(w, base[i]).ev.find((e) => !e.active).at);
  typing(false); // stopping again changes nothing
  await sleep(TYPING_MS + 1500); // nor does the expiry that would have come
  for (const [i, w] of watchers.entries()) {
    assert.equal(count(w, base[i]).off, 1, `${w.name}: one active:false for an explicit stop (sent twice), none on expiry: ${JSON.stringify(count(w, base[i]).ev.map((e) => e.raw))}`);
  }
  console.log(`e2e(3): explicit active:false at bob@gw1 after ${round(stopAt[0] - tStop)} ms, carol@gw0 after ${round(stopAt[1] - tStop)} ms (expiry would be ${TYPING_MS} ms)`);

  // (c) a message from the typer clears the typing state without an event; the expiry then says nothing.
  base = mark();
  typing(true);
  await Promise.all(watchers.map((w, i) => w.until(() => count(w, base[i]).on >= 1, EVENT_TIMEOUT_MS, 'active:true before sending')));
  const clientId = crypto.randomUUID();
  const ack = await alice.call({ send: { room: R, clientId, text: 'done typing' } }, 'ack');
  await Promise.all(watchers.map((w) => w.waitFor((f) => f.message?.clientId === clientId, EVENT_TIMEOUT_MS, 'the message')));
  await sleep(TYPING_MS + 1500);
  for (const [i, w] of watchers.entries()) {
    const { on, off, ev } = count(w, base[i]);
    assert.equal(on, 1, `${w.name}: one active:true before the message`);
    assert.equal(off, 0, `${w.name}: no active:false after the message cleared typing: ${JSON.stringify(ev.map((e) => e.raw))}`);
  }
  console.log(`e2e(3): message seq ${ack.seq} cleared typing: no active:false at bob or carol within ${TYPING_MS + 1500} ms`);

  // Observation only (not in the contract): typing again right after the message.
  base = mark();
  const tAgain = performance.now();
  typing(true);
  let seenAgain = null;
  try {
    await bob.until(() => count(bob, base[0]).on >= 1, 3000, 'typing again after a message');
    seenAgain = round(count(bob, base[0]).ev.find((e) => e.active).at - tAgain);
  } catch {
    /* throttled */
  }
  console.log(`e2e(3): typing again right after the message: ${seenAgain === null ? 'NOT shown to bob within 3 s (throttle not reset by the clear)' : `active:true at bob after ${seenAgain} ms`}`);
  typing(false);

  // (d) typing where this connection has not joined: forbidden, ref echoed if any; unknown room too.
  const other = ROOMS.typingOther;
  const r1 = await alice.request({ ref: 77, typing: { room: other, active: true } });
  assert.equal(r1.error?.code, 'forbidden', `typing to a room not joined: ${JSON.stringify(r1)}`);
  const before = alice.inbox.length;
  alice.sendRaw({ typing: { room: other, active: true } });
  const e2 = await alice.waitFor((f, i) => f.error && alice.inbox.indexOf(f) >= before, EVENT_TIMEOUT_MS, 'error for typing without a ref');
  assert.equal(e2.error.code, 'forbidden', `typing without a ref to a room not joined: ${JSON.stringify(e2)}`);
  assert.equal(e2.ref, undefined, 'no ref on the error of a frame without one');
  const r3 = await alice.request({ typing: { room: 'no-such-room-here', active: true } });
  assert.ok(['forbidden', 'not_found'].includes(r3.error?.code), `typing to an unknown room: ${JSON.stringify(r3)}`);
  await sleep(1000);
  for (const w of watchers) {
    assert.ok(!w.inbox.some((f) => f.typing && f.typing.room !== R), `${w.name}: no typing event for the rooms alice is not in`);
  }
  console.log(`e2e(3): typing outside a joined room -> ${r1.error.code} (ref 77 echoed), unknown room -> ${r3.error.code}`);
  await Promise.all([alice, bob, carol].map((c) => c.close()));
});

// ---- (4) query frame, joined.online, resumed.online -------------------------------------------------

step(4, 'presence query frame, joined.online and resumed.online answer from Redis on both replicas', async () => {
  const R = ROOMS.query;
  const [A, B, C, D, E] = ['q-alice', 'q-bob', 'q-carol', 'q-dave', 'q-eve'];
  const alice = await connect(A, 0);
  const ja = await join(alice, R);
  sameSet(ja.online, [A], `first joiner's joined.online: ${JSON.stringify(ja)}`);
  const bob = await connect(B, 1);
  const jb = await join(bob, R);
  sameSet(jb.online, [A, B], `second joiner's joined.online: ${JSON.stringify(jb)}`);

  // carol comes and goes (so she has a lastSeen); the unknown user never came.
  const carol = await connect(C, 0);
  await join(carol, R);
  await nthPresence(alice, R, C, 1);
  const wallClose = Date.now();
  await carol.close();
  await nthPresence(alice, R, C, 2);
  const wallOff = Date.now();

  const never = `q-never-${crypto.randomBytes(3).toString('hex')}`;
  for (const [who, c] of [['alice@gw0', alice], ['bob@gw1', bob]]) {
    const ref = 8;
    const reply = await c.request({ ref, presence: { room: R, users: [B, C, never] } });
    assert.equal(reply.ref, ref, `${who}: ref echoed`);
    const st = reply.presenceStatus;
    assert.ok(st, `${who}: presenceStatus reply: ${JSON.stringify(reply)}`);
    assert.equal(st.room, R, `${who}: presenceStatus.room`);
    sameSet(st.online, [A, B], `${who}: presenceStatus.online of ${R}: ${JSON.stringify(st)}`);
    assert.equal((st.users ?? []).length, 3, `${who}: one entry per user asked: ${JSON.stringify(st)}`);
    assert.equal(statusOf(st, B).online, true, `${who}: bob online`);
    const c2 = statusOf(st, C);
    assert.equal(c2.online, false, `${who}: carol offline`);
    assertLastSeen(c2.lastSeen, wallClose, wallOff, `${who}: carol's lastSeen`);
    const n = statusOf(st, never);
    assert.equal(n.online, false, `${who}: a user never seen is offline`);
    assert.ok(!n.lastSeen, `${who}: a user never seen has no lastSeen: ${JSON.stringify(n.raw)}`);
    console.log(`e2e(4): ${who} presence query -> ${JSON.stringify(st)}`);
  }

  // users only (no room) and room only.
  const usersOnly = await queryPresence(bob, { users: [A, C] });
  assert.ok(!usersOnly.room, `users-only query has no room: ${JSON.stringify(usersOnly)}`);
  assert.equal(statusOf(usersOnly, A).online, true, 'alice online (users only)');
  assert.equal(statusOf(usersOnly, C).online, false, 'carol offline (users only)');
  const roomOnly = await queryPresence(alice, { room: R });
  sameSet(roomOnly.online, [A, B], `room-only query: ${JSON.stringify(roomOnly)}`);
  assert.equal((roomOnly.users ?? []).length, 0, `room-only query lists no users: ${JSON.stringify(roomOnly)}`);

  // More than 100 users is a bad request (ref echoed); exactly 100 is fine.
  const many = Array.from({ length: 101 }, (_, k) => `q-many-${k}`);
  const tooMany = await alice.request({ ref: 9, presence: { users: many } });
  assert.equal(tooMany.ref, 9, 'ref echoed on the error');
  assert.equal(tooMany.error?.code, 'bad_request', `101 users: ${JSON.stringify(tooMany).slice(0, 300)}`);
  const hundred = await queryPresence(alice, { users: many.slice(0, 100) });
  assert.equal((hundred.users ?? []).length, 100, '100 users answered');

  // A later joiner, on either replica, sees who is online now (carol is gone).
  const dave = await connect(D, 1);
  const jd = await join(dave, R);
  sameSet(jd.online, [A, B, D], `joined.online after carol went offline: ${JSON.stringify(jd)}`);

  // resume on a fresh connection (the reconnect path) answers resumed.online and counts as a join.
  const eve = await connect(E, 0);
  const re = await eve.call({ resume: { room: R, afterSeq: '0' } }, 'resumed');
  sameSet(re.online, [A, B, D, E], `resumed.online: ${JSON.stringify(re)}`);
  assert.equal((await nthPresence(alice, R, E, 1)).online, true, 'resume publishes online for a user new in the room');
  console.log(`e2e(4): joined.online ${JSON.stringify(jd.online)}; resumed.online ${JSON.stringify(re.online)}`);

  // bob leaves: after the grace he is gone from the answers.
  await bob.close();
  await nthPresence(alice, R, B, 2);
  const after = await queryPresence(dave, { room: R, users: [B] });
  sameSet(after.online, [A, D, E], `online after bob went offline: ${JSON.stringify(after)}`);
  assert.equal(statusOf(after, B).online, false, 'bob offline');
  await Promise.all([alice, dave, eve].map((c) => c.close()));
});

// ---- (5) Redis operations per connect / disconnect ------------------------------------------------

function commandStats(port) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'INFO', 'commandstats'], { timeout: 10_000 }, (err, stdout) => {
      if (err) return reject(err);
      const calls = {};
      for (const line of stdout.split(/\r?\n/)) {
        const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
        if (m) calls[m[1]] = Number(m[2]);
      }
      resolve(calls);
    });
  });
}

/** Per-command call deltas between two snapshots, without the INFO calls of the measurement. */
function statsDelta(a, b) {
  const d = {};
  for (const [k, v] of Object.entries(b)) {
    if (k === 'info') continue;
    const n = v - (a[k] ?? 0);
    if (n > 0) d[k] = n;
  }
  return d;
}
const total = (d) => Object.values(d).reduce((s, n) => s + n, 0);
const show = (d) => `${total(d)} (${Object.entries(d).sort((x, y) => y[1] - x[1]).map(([k, n]) => `${k}:${n}`).join(' ') || 'none'})`;

// A second stack for (5) and (6), started on first use: its gateways heartbeat presence every TTL/3 =
// 200 s (so heartbeats do not land in (5)'s windows) and ping WebSocket clients every HB_S seconds.
const HB_S = Number(process.env.E2E_HEARTBEAT_SECONDS || 2);
let side = null;
async function sideStack() {
  if (!side) {
    side = await startStack({
      gateways: 2,
      env: {
        presence: { PRESENCE_GRACE_MS: String(GRACE_MS), PRESENCE_TTL_SECONDS: '600', TYPING_EXPIRE_MS: String(TYPING_MS) },
        gateway: { PRESENCE_TTL_SECONDS: '600', HEARTBEAT_SECONDS: String(HB_S) },
        messages: { SEED_PUBLIC_ROOMS: SEED_ROOMS },
      },
    });
  }
  return side;
}

after(async () => {
  if (!side) return;
  if (failed || side.unexpectedExits.length > 0) side.printLogTails();
  await side.teardown();
}, { timeout: 5 * 60_000 });

step(5, 'Redis operations per connect+join and per close (INFO commandstats)', async () => {
  const ops = await sideStack();
  const port = ops.serversEnv.REDIS_PORT;
  const R = ROOMS.ops;
  // Watchers on both replicas, so both are subscribed to the room before the measured joins.
  const w0 = await connect('ops-watch0', 0, { on: ops });
  const w1 = await connect('ops-watch1', 1, { on: ops });
  await join(w0, R);
  await join(w1, R);
  await sleep(1000);

  // Idle: what runs without any client doing anything (timers, sweeps, subscriber keep-alives).
  const IDLE_MS = 5000;
  let s0 = await commandStats(port);
  await sleep(IDLE_MS);
  let s1 = await commandStats(port);
  const idle = statsDelta(s0, s1);
  console.log(`e2e(5): idle for ${IDLE_MS} ms: ${show(idle)} Redis calls`);

  // Windows: connect (+300 ms), join until the online event (+300 ms), close (+300 ms, well inside the
  // grace), and the grace running out until the offline event (+300 ms). "net" subtracts the idle rate
  // of each command times the window's length, which removes periodic work (timers, sweeps).
  const idleRate = Object.fromEntries(Object.entries(idle).map(([k, n]) => [k, n / IDLE_MS]));
  const net = (d, ms) => {
    const out = {};
    for (const [k, n] of Object.entries(d)) {
      const v = Math.round(n - (idleRate[k] ?? 0) * ms);
      if (v > 0) out[k] = v;
    }
    return out;
  };
  const rows = [];
  const seen = new Map(); // user -> presence events of theirs w0 should hold so far
  for (let k = 0; k < 3; k++) {
    const user = k < 2 ? `ops-user-${k}` : 'ops-user-0'; // third round: a returning user
    const n = seen.get(user) ?? 0;
    seen.set(user, n + 2);
    const snaps = [];
    const times = [];
    const snap = async () => {
      snaps.push(await commandStats(port));
      times.push(performance.now());
    };
    await snap();
    const c = await connect(user, 1, { on: ops });
    await sleep(300);
    await snap();
    await join(c, R);
    await nthPresence(w0, R, user, n + 1);
    await sleep(300);
    await snap();
    await c.close();
    await sleep(300);
    await snap();
    await nthPresence(w0, R, user, n + 2);
    await sleep(300);
    await snap();
    const phases = ['connect', 'join', 'close', 'expiry'];
    const row = { user };
    for (const [i, ph] of phases.entries()) {
      const ms = times[i + 1] - times[i];
      const raw = statsDelta(snaps[i], snaps[i + 1]);
      row[ph] = { raw, net: net(raw, ms), ms: round(ms) };
    }
    rows.push(row);
    console.log(`e2e(5): round ${k + 1} (${user}${k === 2 ? ', returning' : ''}), Redis calls raw -> net of idle: ` +
      phases.map((ph) => `${ph} [${row[ph].ms} ms] ${total(row[ph].raw)} -> ${show(row[ph].net)}`).join('; '));
  }
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const sum = (r, phs, f) => phs.reduce((acc, ph) => acc + f(r[ph].net), 0);
  console.log(`e2e(5): Redis calls net of idle (commandstats counts the commands inside Lua scripts too), median of 3: ` +
    `connect+join ${med(rows.map((r) => sum(r, ['connect', 'join'], total)))} ` +
    `(script calls ${med(rows.map((r) => sum(r, ['connect', 'join'], scripts)))}, publish ${med(rows.map((r) => sum(r, ['connect', 'join'], (d) => d.publish ?? 0)))}); ` +
    `close+grace expiry ${med(rows.map((r) => sum(r, ['close', 'expiry'], total)))} ` +
    `(script calls ${med(rows.map((r) => sum(r, ['close', 'expiry'], scripts)))}, publish ${med(rows.map((r) => sum(r, ['close', 'expiry'], (d) => d.publish ?? 0)))}); ` +
    `idle background ${((total(idle) * 1000) / IDLE_MS).toFixed(1)} calls/s (${show(idle)} in ${IDLE_MS} ms)`);
  await Promise.all([w0, w1].map((c) => c.close()));
});

// ---- (6) a client that stops answering pings ------------------------------------------------------

step(6, 'a connection that stops answering WebSocket pings is closed after 2 x HEARTBEAT_SECONDS and its user goes offline once', async () => {
  const hs = await sideStack();
  const R = ROOMS.heartbeat;
  const watcher = await connect('hb-watch', 0, { on: hs });
  await join(watcher, R);
  const BOB = 'hb-bob';
  const bob = await connect(BOB, 1, { on: hs });
  await join(bob, R);
  assert.equal((await nthPresence(watcher, R, BOB, 1)).online, true, `${BOB} online`);
  // A live client that keeps answering pings stays connected well past the idle timeout.
  await sleep(HB_S * 3000);
  assert.ok(bob.isOpen, `${BOB} answering pings is still connected after ${HB_S * 3} s`);
  assertPresenceSeq(watcher, R, BOB, [true], 'while answering pings');
  // Stop reading: pings go unanswered (the TCP connection stays up, as with a frozen or unplugged device).
  const t0 = performance.now();
  bob.ws.pause();
  const off = await nthPresence(watcher, R, BOB, 2, HB_S * 2000 + GRACE_MS + SLACK_MS);
  const took = round(off.at - t0);
  assert.equal(off.online, false, `${BOB} offline after going silent`);
  assert.ok(took >= GRACE_MS - EARLY_TOLERANCE_MS, `offline ${took} ms after going silent, before the grace`);
  bob.ws.resume();
  await sleep(QUIET_MS);
  assertPresenceSeq(watcher, R, BOB, [true, false], 'after the silent connection was dropped');
  console.log(`e2e(6): a client that stopped answering pings (HEARTBEAT_SECONDS=${HB_S}): offline at the watcher after ${took} ms ` +
    `(2 x ${HB_S} s + grace ${GRACE_MS} ms = ${HB_S * 2000 + GRACE_MS} ms); client saw close ${JSON.stringify(bob.closeInfo ?? 'not yet')}`);
  await watcher.close();
});

function scripts(d) {
  return Object.entries(d).filter(([k]) => /^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(k)).reduce((s, [, n]) => s + n, 0);
}
