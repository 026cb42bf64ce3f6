// The SSE + REST fallback end to end (issue 6): a client that cannot hold a WebSocket follows rooms
// over `GET /api/events` and sends and pages history over `POST|GET /api/rooms/{room}/messages`, on real
// binaries: two gateway replicas, messages, presence, PostgreSQL and Redis. It gets the same frames,
// the same guarantees (an ack after commit, idempotent clientId, resume by seq with Last-Event-ID, no
// gap or duplicate) and the same refusals (auth, membership, size, rate) as a WebSocket client.
//
// Run: CHAT_BIN_DIR=build/release/bin node --test tests/e2e/fallback.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startStack } from './lib/stack.mjs';
import { ChatClient, sleep } from './lib/client.mjs';
import { SseStream, rest } from './lib/sse.mjs';
import { assertConsecutive } from './lib/checks.mjs';

let stack, G0, G1;
const uid = () => crypto.randomUUID();

before(async () => {
  stack = await startStack({ gateways: 2, env: { gateway: { HEARTBEAT_SECONDS: '2' } } });
  [G0, G1] = stack.gateways;
  await stack.psql("INSERT INTO rooms (id, kind) VALUES ('vault', 'private'); " +
    "INSERT INTO room_members (room, user_id) VALUES ('vault', 'alice')");
}, { timeout: 5 * 60_000 });

after(async () => {
  await stack?.teardown();
});

test('SSE follows a room and REST sends into it, across replicas, with the WebSocket guarantees', { timeout: 120_000 }, async () => {
  const alice = await ChatClient.connect(G0.wsUrl, stack.token('alice'));
  await alice.call({ join: { room: 'general' } }, 'joined');

  const carolToken = stack.token('carol');
  const sse = await SseStream.open(G1, carolToken, { rooms: [['general', null, 7]] });
  assert.match(sse.headers['content-type'], /^text\/event-stream/);
  assert.equal(sse.headers['cache-control'], 'no-cache, no-store');
  const welcome = await sse.waitFor((e) => e.frame?.welcome, 'welcome');
  assert.equal(welcome.frame.welcome.user, 'carol');
  const joined = await sse.waitFor((e) => e.frame?.joined, 'joined');
  assert.equal(joined.frame.ref, 7, 'the ref of the query comes back on joined');
  assert.equal(joined.id, `general=${joined.frame.joined.lastSeq}`, 'joined carries the position');

  // A WebSocket send arrives over SSE, with the position as the event id.
  const a1 = await alice.call({ send: { room: 'general', clientId: uid(), text: 'hi carol' } }, 'ack');
  const m1 = await sse.waitFor((e) => e.frame?.message?.text === 'hi carol', 'alice message');
  assert.equal(m1.id, `general=${a1.seq}`);

  // A REST send is acked after commit and reaches both, once.
  const clientId = uid();
  const r1 = await rest(G1, carolToken, 'POST', 'general', { body: { clientId, text: 'hello from rest' } });
  assert.equal(r1.status, 200, r1.text);
  assert.equal(Number(r1.json.ack.seq), Number(a1.seq) + 1);
  assert.equal(r1.json.ack.duplicate, false);
  await alice.waitFor((f) => f.message?.text === 'hello from rest', undefined, 'rest message at alice');
  await sse.waitFor((e) => e.frame?.message?.text === 'hello from rest', 'own message over sse');
  // The same clientId again: the first message back, nothing new stored or delivered.
  const r2 = await rest(G0, carolToken, 'POST', 'general', { body: { clientId, text: 'hello from rest' } });
  assert.equal(r2.status, 200);
  assert.equal(r2.json.ack.seq, r1.json.ack.seq);
  assert.equal(r2.json.ack.duplicate, true);

  // History over REST, newest page, in order.
  const h = await rest(G0, carolToken, 'GET', 'general', { query: 'limit=10' });
  assert.equal(h.status, 200, h.text);
  assert.deepEqual(h.json.history.messages.map((m) => m.text), ['hi carol', 'hello from rest']);
  const older = await rest(G0, carolToken, 'GET', 'general', { query: `beforeSeq=${r1.json.ack.seq}&limit=10` });
  assert.deepEqual(older.json.history.messages.map((m) => m.text), ['hi carol']);

  // Drop the stream, miss three messages, come back with Last-Event-ID: replayed in order, then live.
  const lastId = sse.events.filter((e) => e.id).at(-1).id;
  sse.close();
  const missed = [];
  for (let i = 0; i < 3; i++) missed.push(await alice.call({ send: { room: 'general', clientId: uid(), text: `missed ${i}` } }, 'ack'));
  const back = await SseStream.open(G0, carolToken, { rooms: [['general', null, 8]], lastEventId: lastId });
  const resumed = await back.waitFor((e) => e.frame?.resumed, 'resumed');
  assert.equal(resumed.frame.ref, 8);
  assert.equal(resumed.frame.resumed.replayed, 3);
  await alice.call({ send: { room: 'general', clientId: uid(), text: 'live again' } }, 'ack');
  await back.waitFor((e) => e.frame?.message?.text === 'live again', 'live after resume');
  const got = back.messages('general');
  assert.deepEqual(got.map((m) => m.text), ['missed 0', 'missed 1', 'missed 2', 'live again']);
  assertConsecutive(got, Number(missed[0].seq), 'carol after resume');

  // Presence sees the SSE user online like any connection.
  const p = await alice.call({ presence: { room: 'general' } }, 'presenceStatus').catch(() => null);
  if (p) assert.ok(JSON.stringify(p).includes('carol'), `carol online: ${JSON.stringify(p)}`);
  back.close();
  alice.close();
});

test('the fallback refuses what a WebSocket refuses, and stores nothing it refused', { timeout: 120_000 }, async () => {
  const dave = stack.token('dave');
  const before = Number((await stack.psql("SELECT count(*) FROM messages WHERE sender = 'dave'"))[0][0]);
  const cases = [
    ['no token', () => rest(G0, null, 'POST', 'general', { body: { clientId: uid(), text: 'x' } }), 401, 'unauthorized'],
    ['expired token', () => rest(G0, stack.token('dave', { exp: Math.floor(Date.now() / 1000) - 3600 }), 'POST', 'general', { body: { clientId: uid(), text: 'x' } }), 401, 'unauthorized'],
    ['forged token', () => rest(G0, dave.slice(0, -4) + 'AAAA', 'POST', 'general', { body: { clientId: uid(), text: 'x' } }), 401, 'unauthorized'],
    ['malformed JSON', () => rest(G0, dave, 'POST', 'general', { body: '{"clientId":' }), 400, 'bad_request'],
    ['wrong types', () => rest(G0, dave, 'POST', 'general', { body: { clientId: 5, text: ['x'] } }), 400, 'bad_request'],
    ['no clientId', () => rest(G0, dave, 'POST', 'general', { body: { text: 'x' } }), 400, 'bad_request'],
    ['oversized text', () => rest(G0, dave, 'POST', 'general', { body: { clientId: uid(), text: 'x'.repeat(4097) } }), 413, 'too_large'],
    ['oversized body', () => rest(G0, dave, 'POST', 'general', { body: { clientId: uid(), text: 'x'.repeat(70_000) } }), 413, 'too_large'],
    ['invalid UTF-8', () => rest(G0, dave, 'POST', 'general', { body: Buffer.from('{"clientId":"c1","text":"\xff"}', 'latin1') }), 400, 'bad_request'],
    ['bad room name', () => rest(G0, dave, 'POST', 'no room!', { body: { clientId: uid(), text: 'x' } }), 400, 'bad_request'],
    ['non-member send to a private room', () => rest(G0, dave, 'POST', 'vault', { body: { clientId: uid(), text: 'x' } }), 403, 'forbidden'],
    ['non-member history of a private room', () => rest(G0, dave, 'GET', 'vault'), 403, 'forbidden'],
    ['non-admin slash command', () => rest(G0, dave, 'POST', 'general', { body: { clientId: uid(), text: '/kick alice' } }), 403, 'forbidden'],
  ];
  for (const [name, call, status, code] of cases) {
    const r = await call();
    assert.equal(r.status, status, `${name}: ${r.text}`);
    assert.equal(r.json?.error?.code, code, `${name}: ${r.text}`);
    console.log(`PASS ${name}: HTTP ${r.status} ${code}`);
  }
  // SSE refusals come before the stream opens.
  await assert.rejects(SseStream.open(G0, null, { rooms: [['general']] }), (e) => e.status === 401);
  await assert.rejects(SseStream.open(G0, dave, { rooms: [['bad room!']] }), (e) => e.status === 400);
  await assert.rejects(SseStream.open(G0, dave, { rooms: [['general', 'x']] }), (e) => e.status === 400);
  await assert.rejects(SseStream.open(G0, dave, { headers: { Origin: 'https://evil.example.com' } }), (e) => e.status === 403);
  // A private room over SSE: the stream opens, the room is refused with forbidden and its ref.
  const s = await SseStream.open(G0, dave, { rooms: [['vault', null, 3]] });
  const err = await s.waitFor((e) => e.frame?.error, 'forbidden');
  assert.equal(err.frame.ref, 3);
  assert.equal(err.frame.error.code, 'forbidden');
  s.close();

  // A flood: past the burst, 429 with Retry-After and rate_limited; what was refused is not stored.
  const answers = await Promise.all(Array.from({ length: 40 }, (_, i) =>
    rest(G1, dave, 'POST', 'general', { body: { clientId: `flood-${i}`, text: `flood ${i}` } })));
  const ok = answers.filter((r) => r.status === 200).length;
  const limited = answers.filter((r) => r.status === 429);
  assert.ok(limited.length > 0, 'some requests were rate limited');
  assert.ok(limited.every((r) => r.json.error.code === 'rate_limited' && Number(r.headers['retry-after']) >= 1));
  assert.ok(limited.every((r) => r.json.error.retryAfterMs > 0));
  const after = Number((await stack.psql("SELECT count(*) FROM messages WHERE sender = 'dave'"))[0][0]);
  assert.equal(after - before, ok, 'exactly the acked sends are stored');
  console.log(`flood: ${ok} acked, ${limited.length} refused with 429`);
});

test('an admin kick closes an SSE stream with 4003 on another replica; heartbeats keep it open', { timeout: 120_000 }, async () => {
  const erin = await SseStream.open(G1, stack.token('erin'), { rooms: [['general']] });
  await erin.waitFor((e) => e.frame?.joined, 'joined');
  await sleep(2500); // HEARTBEAT_SECONDS=2: a keepalive comment by now
  assert.ok(erin.comments >= 2, `keepalive comments seen: ${erin.comments}`);
  const root = await ChatClient.connect(G0.wsUrl, stack.token('root', { admin: true }));
  await root.call({ join: { room: 'general' } }, 'joined');
  await root.call({ send: { room: 'general', clientId: uid(), text: '/kick erin' } }, 'notice');
  const closing = await erin.waitFor((e) => e.event === 'close', 'close event');
  assert.equal(closing.frame.code, 4003);
  await erin.waitFor(() => erin.ended, 'end of response').catch(() => {});
  assert.ok(erin.ended, 'the gateway ended the response');
  root.close();
  const text = await stack.metricsText('gateway-1');
  assert.match(text, /chat_disconnects_total\{reason="kicked"\} [1-9]/);
  assert.match(text, /chat_sse_streams 0/);
});
