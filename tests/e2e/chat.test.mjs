// End-to-end: real chat-messages, chat-presence and two chat-gateway replicas on a throwaway PostgreSQL
// and Redis. Run: CHAT_BIN_DIR=build/release/bin node --test tests/e2e/
// Knobs: E2E_SENDERS (4), E2E_PER_SENDER (50), E2E_TIMEOUT_MS (30000 per reply), E2E_KEEP=1 keeps logs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack, httpGet } from './lib/stack.mjs';
import { ChatClient, mintToken, upgradeStatus, sleep, DEFAULT_TIMEOUT_MS } from './lib/client.mjs';
import { assertConsecutive } from './lib/checks.mjs';

const ROOM = 'general';
const SENDERS = Number(process.env.E2E_SENDERS || 4);
const PER_SENDER = Number(process.env.E2E_PER_SENDER || 50);
const TOTAL = SENDERS * PER_SENDER;
const WINDOW = 8; // requests in flight per sender
const DELIVERY_TIMEOUT_MS = 4 * DEFAULT_TIMEOUT_MS;
const TEST_TIMEOUT_MS = 20 * 60_000;

let stack;
let failed = false;
const clients = [];
const fromA = { base: null, acks: null }; // what (a) stored, for (b)

function step(name, fn) {
  test(name, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      failed = true;
      throw err;
    }
  });
}

before(async () => {
  stack = await startStack({ gateways: 2 });
}, { timeout: 10 * 60_000 });

after(async () => {
  for (const c of clients) c.terminate();
  if (!stack) return;
  if (failed || stack.unexpectedExits.length > 0) {
    console.error(`e2e: failures or unexpected exits (${stack.unexpectedExits.join('; ') || 'none'}); log tails follow`);
    stack.printLogTails();
  }
  await stack.teardown();
}, { timeout: 5 * 60_000 });

async function connect(user, gw, opts = {}) {
  const c = await ChatClient.connect(stack.gateways[gw].wsUrl, stack.token(user), { name: `${user}@gw${gw}`, ...opts });
  clients.push(c);
  assert.equal(c.welcome.user, user, `${c.name}: welcome.user`);
  assert.ok(c.welcome.connectionId, `${c.name}: welcome.connectionId`);
  return c;
}

const joinRoom = (c, room) => c.call({ join: { room } }, 'joined');

/** Sends one message, retrying on rate_limited with the same clientId; resolves with the ack. */
async function sendReliable(c, room, clientId, text, stats) {
  for (let attempt = 0; attempt < 500; attempt++) {
    const reply = await c.request({ send: { room, clientId, text } });
    if (reply.ack) return reply.ack;
    if (reply.error?.code === 'rate_limited') {
      stats.rateLimited = (stats.rateLimited || 0) + 1;
      await sleep(Math.max(Number(reply.error.retryAfterMs || 0), 50));
      continue;
    }
    throw new Error(`${c.name}: send ${clientId} -> ${JSON.stringify(reply)}`);
  }
  throw new Error(`${c.name}: send ${clientId} still rate limited after 500 tries`);
}

step('(a) fan-out across two gateway replicas: every message exactly once, in seq order; idempotent resend', async () => {
  const senders = [];
  for (let i = 0; i < SENDERS; i++) senders.push(await connect(`sender${i}`, i % 2));
  const readers = [await connect('reader0', 0), await connect('reader1', 1)];
  const everyone = [...senders, ...readers];
  for (const c of everyone) assert.equal(Number(c.welcome.heartbeatSeconds), 15, `${c.name}: heartbeatSeconds`);

  const joins = [];
  for (const c of everyone) joins.push(await joinRoom(c, ROOM));
  for (const j of joins) assert.equal(j.room, ROOM);
  const base = Number(joins[0].lastSeq ?? 0);
  for (const j of joins) assert.equal(Number(j.lastSeq ?? 0), base, 'lastSeq before sending');
  console.log(`e2e(a): ${everyone.length} connections joined "${ROOM}" at lastSeq ${base}; online seen by last joiner: ${JSON.stringify(joins.at(-1).online ?? [])}`);

  // Every sender sends PER_SENDER messages, WINDOW in flight at a time, all senders at once.
  const stats = { rateLimited: 0 };
  const acks = [];
  const t0 = Date.now();
  await Promise.all(senders.map(async (c, i) => {
    const todo = Array.from({ length: PER_SENDER }, (_, k) => ({
      clientId: crypto.randomUUID(),
      text: `hello #${k} from sender${i} ${crypto.randomBytes(4).toString('hex')}`,
    }));
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const m = todo[next++];
        const ack = await sendReliable(c, ROOM, m.clientId, m.text, stats);
        acks.push({ ...ack, clientId: m.clientId, text: m.text, from: `sender${i}`, conn: c });
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, worker));
  }));
  const sendMs = Date.now() - t0;

  assert.equal(acks.length, TOTAL, 'acks');
  for (const a of acks) {
    assert.equal(a.room, ROOM);
    assert.ok(a.id, 'ack.id');
    assert.ok(a.ts, 'ack.ts');
    assert.ok(!a.duplicate, `first send of ${a.clientId} must not be a duplicate`);
  }
  const ackBySeq = new Map(acks.map((a) => [Number(a.seq), a]));
  assert.equal(ackBySeq.size, TOTAL, 'every ack has its own seq');
  for (let s = base + 1; s <= base + TOTAL; s++) assert.ok(ackBySeq.has(s), `an ack for seq ${s}`);

  // Every connection, senders included, on both replicas, gets every message once, in seq order.
  await Promise.all(everyone.map((c) => c.until(() => c.messages(ROOM).length >= TOTAL, DELIVERY_TIMEOUT_MS,
    `all ${TOTAL} messages (has ${c.messages(ROOM).length})`)));
  await sleep(500); // anything extra (a duplicate) would show up now
  let delivered = 0;
  for (const c of everyone) {
    const msgs = c.messages(ROOM);
    assert.equal(msgs.length, TOTAL, `${c.name}: message count`);
    assertConsecutive(msgs, base + 1, c.name);
    for (const m of msgs) {
      const a = ackBySeq.get(Number(m.seq));
      assert.equal(m.id, a.id, `${c.name}: id of seq ${m.seq}`);
      assert.equal(m.clientId, a.clientId, `${c.name}: clientId of seq ${m.seq}`);
      assert.equal(m.from, a.from, `${c.name}: from of seq ${m.seq}`);
      assert.equal(m.text, a.text, `${c.name}: text of seq ${m.seq}`);
      assert.equal(m.kind, 'user', `${c.name}: kind of seq ${m.seq}`);
      assert.equal(m.room, ROOM);
    }
    delivered += msgs.length;
  }

  // Resending a stored clientId gives back the first message and stores nothing new.
  const first = acks.find((a) => a.from === 'sender0');
  const dup = await sendReliable(first.conn, ROOM, first.clientId, first.text, stats);
  assert.equal(dup.duplicate, true, 'resend is flagged duplicate');
  assert.equal(String(dup.seq), String(first.seq), 'resend has the first seq');
  assert.equal(dup.id, first.id, 'resend has the first id');
  await sleep(1500);
  for (const c of everyone) assert.equal(c.messages(ROOM).length, TOTAL, `${c.name}: no message pushed for the resend`);
  const checker = await connect('checker', 1);
  const j = await joinRoom(checker, ROOM);
  assert.equal(Number(j.lastSeq), base + TOTAL, 'lastSeq after the resend');

  console.log(`e2e(a): sent=${TOTAL} acked=${acks.length} delivered=${delivered} (${everyone.length} connections x ${TOTAL}) ` +
    `duplicates=1 (same seq ${dup.seq}) rate_limited_retries=${stats.rateLimited} send_time=${sendMs}ms`);
  fromA.base = base;
  fromA.acks = acks.map(({ conn, ...a }) => a);
  await Promise.all([...everyone, checker].map((c) => c.close()));
});

step('(b) after restarting messages, presence and both gateways, history pages return everything in order', async () => {
  assert.ok(fromA.acks, '(a) must have stored its messages first');
  const { base, acks } = fromA;
  const last = base + acks.length;

  const names = [...stack.gateways.map((g) => g.name), 'presence', 'messages'];
  for (const name of names) {
    const res = await stack.stopProc(name);
    assert.ok(!res.forced, `${name} exits within the timeout after SIGTERM`);
    assert.ok(res.code === 0 || res.signal === 'SIGTERM', `${name} exits cleanly after SIGTERM (code ${res.code}, signal ${res.signal})`);
  }
  await stack.startProc('messages');
  await stack.startProc('presence');
  await Promise.all(stack.gateways.map((g) => stack.startProc(g.name)));
  console.log(`e2e(b): stopped and restarted ${names.join(', ')}`);

  const c = await connect('historian', 0);
  const j = await joinRoom(c, ROOM);
  assert.equal(Number(j.lastSeq), last, 'lastSeq survives the restart');

  const pages = [];
  let before = 0;
  for (let n = 0; n < 1000; n++) {
    const h = await c.call({ history: { room: ROOM, beforeSeq: String(before), limit: 50 } }, 'history');
    const msgs = h.messages ?? [];
    assert.equal(h.room, ROOM);
    assert.ok(msgs.length <= 50, `page of at most 50 (got ${msgs.length})`);
    if (msgs.length > 1) assertConsecutive(msgs, Number(msgs[0].seq), `history page before ${before}`);
    if (before > 0 && msgs.length > 0) assert.equal(Number(msgs.at(-1).seq), before - 1, 'page ends right before beforeSeq');
    pages.unshift(msgs);
    if (!h.hasMore || msgs.length === 0) break;
    before = Number(msgs[0].seq);
  }
  const all = pages.flat();
  assert.equal(all.length, last, `history holds ${last} messages`);
  assertConsecutive(all, 1, 'history');
  const bySeq = new Map(all.map((m) => [Number(m.seq), m]));
  for (const a of acks) {
    const m = bySeq.get(Number(a.seq));
    assert.ok(m, `history has seq ${a.seq}`);
    assert.equal(m.id, a.id);
    assert.equal(m.clientId, a.clientId);
    assert.equal(m.from, a.from);
    assert.equal(m.text, a.text);
  }

  // Default page size and the cap, through the other replica.
  const c2 = await connect('historian2', 1);
  await joinRoom(c2, ROOM);
  const dflt = await c2.call({ history: { room: ROOM } }, 'history');
  assert.equal((dflt.messages ?? []).length, Math.min(50, last), 'default page is 50');
  assert.equal(Number(dflt.messages.at(-1).seq), last, 'default page is the newest');
  const capped = await c2.request({ history: { room: ROOM, limit: 1000 } });
  if (capped.history) {
    const n = (capped.history.messages ?? []).length;
    assert.ok(n <= 200, `limit is capped at 200 (got ${n})`);
  } else {
    assert.equal(capped.error?.code, 'bad_request', `limit 1000: a page of at most 200 or bad_request (got ${JSON.stringify(capped)})`);
  }

  // Live fan-out across replicas works again after the restart.
  const x = await connect('restart-x', 0);
  const y = await connect('restart-y', 1);
  await joinRoom(x, 'random');
  await joinRoom(y, 'random');
  const ack = await sendReliable(x, 'random', crypto.randomUUID(), 'after restart', {});
  const got = await y.waitFor((f) => f.message?.room === 'random' && f.message.id === ack.id, DELIVERY_TIMEOUT_MS, 'post-restart message');
  assert.equal(got.message.text, 'after restart');

  console.log(`e2e(b): history pages=${pages.length} messages=${all.length} (ours ${acks.length}, seq 1..${last}); post-restart delivery ok`);
  await Promise.all([c, c2, x, y].map((k) => k.close()));
});

step('(c) bad input gets errors, never a crash, while another user\'s messages keep flowing', async () => {
  const [g0, g1] = stack.gateways;

  // Someone chatting all along: grace on gateway 0 sends, heidi on gateway 1 reads.
  const grace = await connect('grace', 0);
  const heidi = await connect('heidi', 1);
  await joinRoom(grace, 'random');
  const hj = await joinRoom(heidi, 'random');
  const flowFrom = Number(hj.lastSeq ?? 0) + 1;
  const flowAcks = [];
  const flowStats = { rateLimited: 0 };
  let flowing = true;
  const flow = (async () => {
    for (let n = 0; flowing; n++) {
      const text = `flow ${n}`;
      const ack = await sendReliable(grace, 'random', crypto.randomUUID(), text, flowStats);
      flowAcks.push({ ...ack, text });
      await sleep(150);
    }
  })();
  const checks = [];
  const check = (what) => checks.push(what);
  const flowAtLeast = async (n) => {
    const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
    while (flowing && flowAcks.length < n && Date.now() < deadline) await sleep(50);
  };

  try {
    await flowAtLeast(5); // the flow runs before, during and after the bad input
    const flowBefore = flowAcks.length;
    const m = await connect('mallory', 0);

    m.sendRaw('{"ref":1,"join":');
    const e1 = await m.waitFor((f) => f.error, DEFAULT_TIMEOUT_MS, 'error for malformed JSON');
    assert.equal(e1.error.code, 'bad_request', 'malformed JSON');
    assert.ok((await m.request({ ping: {} })).pong, 'still answers ping after malformed JSON');
    check('malformed JSON -> bad_request, ping ok');

    const e2 = await m.request({ ref: 5 });
    assert.equal(e2.ref, 5);
    assert.equal(e2.error?.code, 'bad_request', '{"ref":5}');
    check('no body -> bad_request ref 5');

    const e3 = await m.request({ ref: 1001, join: { room: 'random' }, ping: {} });
    assert.equal(e3.error?.code, 'bad_request', 'two bodies');
    check('two bodies -> bad_request');

    const e4 = await m.request({ join: { room: `no-such-room-${crypto.randomBytes(4).toString('hex')}` } });
    assert.equal(e4.error?.code, 'not_found', 'join unknown room');
    check('unknown room -> not_found');

    const e5 = await m.request({ send: { room: ROOM, clientId: crypto.randomUUID(), text: 'not a member' } });
    assert.equal(e5.error?.code, 'forbidden', 'send to a room not joined');
    check('send to room not joined -> forbidden');

    await joinRoom(m, 'random');
    const e6 = await m.request({ send: { room: 'random', clientId: crypto.randomUUID(), text: 'a'.repeat(4097) } });
    assert.equal(e6.error?.code, 'too_large', '4097-byte text');
    const e7 = await m.request({ send: { room: 'random', clientId: crypto.randomUUID(), text: '\u20ac'.repeat(1366) } });
    assert.equal(e7.error?.code, 'too_large', '1366 x 3-byte chars = 4098 bytes');
    const okAck = await sendReliable(m, 'random', crypto.randomUUID(), 'b'.repeat(4096), {});
    assert.ok(okAck.seq, '4096-byte text is accepted');
    check('text > 4096 bytes -> too_large (4096 ok)');

    const e8 = await m.request({ ping: {}, someFutureField: { x: 1 } });
    assert.ok(e8.pong, `unknown fields are ignored (got ${JSON.stringify(e8)})`);
    const e9 = await m.request({ join: { room: 12345 } });
    assert.ok(e9.error, `wrong type gets an error (got ${JSON.stringify(e9)})`);
    check('unknown field ignored; wrong type -> error');

    // Oversized frame (> 64 KiB): an error or close 1009, and the gateway lives on.
    const big = await connect('oscar', 1);
    big.sendRaw(JSON.stringify({ ref: 1, send: { room: 'random', clientId: crypto.randomUUID(), text: 'x'.repeat(70_000) } }));
    await Promise.race([big.closed, big.waitFor((f) => f.error || f.ref === 1, DEFAULT_TIMEOUT_MS, 'answer to a 70 KB frame').catch(() => {})]);
    const bigErr = big.inbox.find((f) => f.error);
    assert.ok(big.closeInfo?.code === 1009 || bigErr?.error?.code === 'too_large',
      `70 KB frame: close 1009 or too_large (close ${JSON.stringify(big.closeInfo)}, frame ${JSON.stringify(bigErr)})`);
    check(`70 KB frame -> ${big.closeInfo ? `close ${big.closeInfo.code}` : 'too_large'}`);

    // A binary frame is not part of the JSON protocol: bad_request, and the connection stays usable.
    const bin = await connect('peggy', 0);
    bin.ws.send(Buffer.from('{"ref":1,"ping":{}}'), { binary: true });
    const binErr = await bin.waitFor((f) => f.error, DEFAULT_TIMEOUT_MS, 'answer to a binary frame');
    assert.equal(binErr.error.code, 'bad_request', `binary frame (got ${JSON.stringify(binErr)})`);
    assert.ok((await bin.request({ ping: {} })).pong, 'still answers after a binary frame');
    check('binary frame -> bad_request, connection kept');

    // Invalid UTF-8 in a text frame: close 1007 (RFC 6455), and the gateway lives on.
    const utf = await connect('quentin', 1);
    utf.ws.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
    await utf.closed.catch(() => {});
    assert.equal(utf.closeInfo?.code, 1007, `invalid UTF-8: close 1007 (got ${JSON.stringify(utf.closeInfo)})`);
    check('invalid UTF-8 text frame -> close 1007');

    // Tokens.
    assert.equal(await upgradeStatus(g0.httpPort, '/ws'), 401, 'no token');
    const expired = mintToken(stack.secret, { sub: 'mallory', exp: Math.floor(Date.now() / 1000) - 60 });
    assert.equal(await upgradeStatus(g0.httpPort, `/ws?token=${expired}`), 401, 'expired token');
    assert.equal(await upgradeStatus(g1.httpPort, '/ws', { Authorization: `Bearer ${expired}` }), 401, 'expired bearer');
    const forged = mintToken('not-the-secret', { sub: 'mallory' });
    assert.equal(await upgradeStatus(g1.httpPort, `/ws?token=${forged}`), 401, 'wrong signature');
    assert.equal(await upgradeStatus(g1.httpPort, '/ws?token=garbage'), 401, 'garbage token');
    assert.equal(await upgradeStatus(g0.httpPort, '/ws', { Authorization: `Bearer ${stack.token('mallory')}` }), 101, 'valid bearer');
    check('no/expired/forged/garbage token -> 401; bearer ok');

    // Flooding: past the burst, rate_limited with a retry hint; a client that keeps coming back before
    // retryAfterMs is closed with 1008 (policy), and nothing else is stored.
    const flood = await connect('flood', 1);
    await joinRoom(flood, 'random');
    const replies = await Promise.all(Array.from({ length: 40 }, (_, k) =>
      flood.request({ send: { room: 'random', clientId: crypto.randomUUID(), text: `flood ${k}` } }, 10_000)
        .catch((err) => ({ lost: String(err) }))));
    await flood.closed.catch(() => {});
    const limited = replies.filter((r) => r.error?.code === 'rate_limited');
    const floodAcked = replies.filter((r) => r.ack);
    assert.equal(flood.closeInfo?.code, 1008, `flooding closes with 1008 (got ${JSON.stringify(flood.closeInfo)})`);
    assert.ok(limited.length > 0, 'warned with rate_limited before the close');
    // The burst (20) is stored; its acks may be cut off by the close (the client would resume).
    assert.ok(floodAcked.length <= 20, 'nothing past the burst is acked');
    let stored = 0;
    for (let tries = 0; tries < 100; tries++) {  // the burst's commits may still be in flight
      const floodHist = await m.call({ history: { room: 'random', limit: 200 } }, 'history');
      stored = (floodHist.messages || []).filter((x) => x.from === 'flood').length;
      if (stored >= 20) break;
      await sleep(100);
    }
    assert.equal(stored, 20, `only the acked flood messages are stored (found ${stored})`);
    check(`flood of 40 -> ${floodAcked.length} acked, ${limited.length} rate_limited, then close 1008`);

    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const r = await httpGet(g0.httpPort, path);
      assert.equal(r.status, 200, `GET ${path}`);
    }
    // Every process serves the Prometheus metrics operations need, with what this test just did in them.
    const expectSeries = async (port, who, names) => {
      const r = await httpGet(port, '/metrics');
      assert.equal(r.status, 200, `${who} /metrics`);
      for (const name of names) {
        const re = new RegExp(`^${name}(\\{[^}]*\\})? [1-9]`, 'm');
        assert.ok(re.test(r.body), `${who} /metrics has a non-zero ${name}`);
      }
    };
    await expectSeries(g1.httpPort, 'gateway', [
      'chat_connections', 'chat_connects_total', 'chat_disconnects_total', 'chat_frames_in_total',
      'chat_frames_out_by_type_total', 'chat_errors_total', 'chat_send_rate_limited_total',
      'chat_fanout_deliveries_total', 'chat_message_fanout_latency_seconds_count',
      'chat_backend_stream_reconnects_total', 'chat_redis_reconnects_total', 'chat_flood_disconnects_total']);
    await expectSeries(stack.ports.messagesMetrics, 'messages', [
      'chat_commit_batch_size_count', 'chat_commit_duration_seconds_count', 'chat_messages_committed_total',
      'chat_gateway_streams', 'chat_db_pool_size']);
    await expectSeries(stack.ports.presenceMetrics, 'presence', ['chat_gateway_streams', 'chat_presence_events_total']);
    assert.ok((await m.request({ ping: {} })).pong, 'mallory still connected');
    await flowAtLeast(flowBefore + 5);
  } finally {
    flowing = false;
    await flow;
  }

  // Nothing of grace's got lost, reordered or duplicated on heidi's side, across replicas.
  assert.ok(flowAcks.length >= 10, `the flow kept going (${flowAcks.length} messages)`);
  const lastFlowSeq = Math.max(...flowAcks.map((a) => Number(a.seq)));
  await heidi.until(() => heidi.messages('random').some((msg) => Number(msg.seq) >= lastFlowSeq), DELIVERY_TIMEOUT_MS, 'the last flow message');
  const seen = heidi.messages('random');
  assertConsecutive(seen, flowFrom, 'heidi in random');
  const seenBySeq = new Map(seen.map((msg) => [Number(msg.seq), msg]));
  for (const a of flowAcks) {
    const msg = seenBySeq.get(Number(a.seq));
    assert.ok(msg, `heidi got flow seq ${a.seq}`);
    assert.equal(msg.id, a.id);
    assert.equal(msg.text, a.text);
    assert.equal(msg.from, 'grace');
  }
  assert.deepEqual(stack.unexpectedExits, [], 'no process died');
  for (const name of stack.procs.keys()) assert.ok(stack.proc(name).running, `${name} still runs`);

  for (const line of checks) console.log(`e2e(c): ${line}`);
  console.log(`e2e(c): flow sent=${flowAcks.length} acked=${flowAcks.length} delivered_to_heidi=${flowAcks.length} ` +
    `(room total seen ${seen.length}) rate_limited_retries=${flowStats.rateLimited}`);
});
