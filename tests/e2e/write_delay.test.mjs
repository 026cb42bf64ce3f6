// Held room messages (issue 8): on a replica with WS_WRITE_DELAY_MS set, room messages for a connection
// wait up to that long and go out together in one socket write, in seq order, none lost; replies to the
// client's own requests are not held. On a default replica a room's message is held only while the same
// Redis read has another for that room: every one still arrives, in order. A sender's own copy of its
// message waits for the send's ack and goes out in the same write.
//
// Run: CHAT_BIN_DIR=build/release/bin node --test tests/e2e/write_delay.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, addGateway } from './lib/stack.mjs';
import { ChatClient } from './lib/client.mjs';

let stack, plain, delayed;

before(async () => {
  stack = await startStack({ gateways: 1 });
  plain = stack.gateways[0];
  delayed = await addGateway(stack, { WS_WRITE_DELAY_MS: '200' });
}, { timeout: 5 * 60_000 });

after(async () => {
  await stack?.teardown();
});

test('room messages are held and written together, in order, none lost, on a delayed and on a default replica', { timeout: 60_000 }, async () => {
  const alice = await ChatClient.connect(plain.wsUrl, stack.token('alice'));
  const dave = await ChatClient.connect(plain.wsUrl, stack.token('dave'));
  const erin = await ChatClient.connect(plain.wsUrl, stack.token('erin'));
  const bob = await ChatClient.connect(delayed.wsUrl, stack.token('bob'));
  const carol = await ChatClient.connect(delayed.wsUrl, stack.token('carol'));
  for (const c of [alice, dave, erin, bob, carol]) await c.call({ join: { room: 'general' } }, 'joined');
  // Each join's online event is a room delivery too, held like a message. Carol joined last: once bob has
  // her event, the delayed replica has handled every join's event (one Redis channel, in order, fanned
  // out to bob and carol together), and the counts below see only the 30 messages.
  for (const c of [bob, alice]) {
    await c.waitFor((f) => f.presence?.room === 'general' && f.presence.user === 'carol' && f.presence.online === true,
      undefined, `carol's online event at ${c.name}`);
  }
  const before = await stack.metricSums(delayed.name);
  const plainBefore = await stack.metricSums(plain.name);

  // 30 sends at once (10 from each sender: within the default send burst): they commit in a few
  // batches and reach the delayed replica within a few ms.
  const acks = await Promise.all(Array.from({ length: 30 }, (_, i) =>
    [alice, dave, erin][i % 3].call({ send: { room: 'general', clientId: `wd-${i}`, text: `message ${i}` } }, 'ack')));
  const seqs = acks.map((a) => a.seq);
  for (const c of [bob, carol, alice, dave, erin]) {
    const mine = () => c.messages('general').filter((m) => m.clientId?.startsWith('wd-'));
    await c.until(() => mine().length >= 30, undefined, `${c.name} got all 30`);
    assert.deepEqual(mine().map((m) => Number(m.seq)), seqs.map(Number).sort((a, b) => a - b),
      `${c.name}: every message once, in seq order`);
  }
  // A request of bob's own is answered while nothing is held for him.
  assert.ok((await bob.request({ ping: {} })).pong);

  const after_ = await stack.metricSums(delayed.name);
  const held = (after_.get('chat_ws_frames_held_total') ?? 0) - (before.get('chat_ws_frames_held_total') ?? 0);
  const writes = (after_.get('chat_ws_delayed_writes_total') ?? 0) - (before.get('chat_ws_delayed_writes_total') ?? 0);
  assert.equal(held, 60, 'each of the 30 messages held for bob and for carol');
  assert.ok(writes >= 2 && writes < held, `held frames went out several to a write (${held} frames, ${writes} delayed writes)`);
  const plainAfter = await stack.metricSums(plain.name);
  const delta = (m) => (plainAfter.get(m) ?? 0) - (plainBefore.get(m) ?? 0);
  // Held there only while the same read brought another message for the room: how many depends on how
  // the 30 commits fell into reads; never more than the 90 frames, each still delivered (above).
  const plainHeld = delta('chat_ws_frames_held_total');
  assert.ok(plainHeld <= 90, `the default replica held at most every frame (${plainHeld})`);
  assert.ok(delta('chat_ws_delayed_writes_total') <= plainHeld,
    `no more flushes than held frames on the default replica (${delta('chat_ws_delayed_writes_total')})`);
  for (const c of [alice, dave, erin, bob, carol]) assert.deepEqual(c.badFrames, []);
  await Promise.all([alice, dave, erin, bob, carol].map((c) => c.close()));
});

test('a sender\'s own message waits for its ack and goes out with it; every member still gets every message', { timeout: 60_000 }, async () => {
  const frank = await ChatClient.connect(plain.wsUrl, stack.token('frank'));
  const grace = await ChatClient.connect(plain.wsUrl, stack.token('grace'));
  for (const c of [frank, grace]) await c.call({ join: { room: 'general' } }, 'joined');
  await frank.waitFor((f) => f.presence?.room === 'general' && f.presence.user === 'grace' && f.presence.online === true,
    undefined, 'grace online at frank');
  const before = await stack.metric(plain.name, 'chat_ws_own_messages_held_total');
  const acks = [];
  // One at a time: the send in flight is the only one, so its copy from Redis (published before the
  // reply) normally reaches the gateway first and waits for the ack.
  for (let i = 0; i < 20; i++) {
    acks.push(await frank.call({ send: { room: 'general', clientId: `own-${i}`, text: `own ${i}` } }, 'ack'));
  }
  for (const c of [frank, grace]) {
    const mine = () => c.messages('general').filter((m) => m.clientId?.startsWith('own-'));
    await c.until(() => mine().length >= 20, undefined, `${c.name} got all 20`);
    assert.deepEqual(mine().map((m) => Number(m.seq)), acks.map((a) => Number(a.seq)), `${c.name}: each once, in order`);
  }
  const held = (await stack.metric(plain.name, 'chat_ws_own_messages_held_total')) - before;
  assert.ok(held >= 1 && held <= 20, `frank's own copies held for their acks (${held} of 20)`);
  for (const c of [frank, grace]) assert.deepEqual(c.badFrames, []);
  await Promise.all([frank, grace].map((c) => c.close()));
});
