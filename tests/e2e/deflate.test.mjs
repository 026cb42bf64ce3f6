// permessage-deflate (issue 8): off by default; a replica with WS_DEFLATE=1 accepts it without context
// takeover on either side, inflates what clients compress, compresses frames from WS_DEFLATE_MIN_BYTES
// up (once per message and io thread, shared by every receiver), and sends plain frames to clients that
// did not offer it. The limits hold on the inflated size.
//
// Run: CHAT_BIN_DIR=build/release/bin node --test tests/e2e/deflate.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, addGateway } from './lib/stack.mjs';
import { ChatClient } from './lib/client.mjs';

let stack, plain, deflating;

before(async () => {
  stack = await startStack({ gateways: 1 });
  plain = stack.gateways[0];
  deflating = await addGateway(stack, { WS_DEFLATE: '1', WS_DEFLATE_WINDOW_BITS: '10' });
}, { timeout: 5 * 60_000 });

after(async () => {
  await stack?.teardown();
});

test('negotiated without context takeover, compressed both ways, plain for clients that did not offer it', { timeout: 60_000 }, async () => {
  const alice = await ChatClient.connect(deflating.wsUrl, stack.token('alice'));
  const carol = await ChatClient.connect(deflating.wsUrl, stack.token('carol'), { deflate: false });
  const bob = await ChatClient.connect(plain.wsUrl, stack.token('bob'));
  assert.equal(alice.ws.extensions, 'permessage-deflate');
  assert.equal(alice.upgradeHeaders['sec-websocket-extensions'],
    'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  assert.equal(carol.ws.extensions, '', 'a client that did not offer it');
  assert.equal(carol.upgradeHeaders['sec-websocket-extensions'], undefined);
  assert.equal(bob.ws.extensions, '', 'the default replica declines (WS_DEFLATE off)');
  assert.equal(bob.upgradeHeaders['sec-websocket-extensions'], undefined);
  for (const c of [alice, carol, bob]) await c.call({ join: { room: 'general' } }, 'joined');

  const before = await stack.metricSums(deflating.name);
  // 3,000 characters: ws compresses what it sends from 1 KB up, the gateway from 256 bytes.
  const long = 'the quick brown fox jumps over the lazy dog; '.repeat(66).slice(0, 3000);
  const ack = await alice.call({ send: { room: 'general', clientId: 'deflate-1', text: long } }, 'ack');
  for (const c of [alice, carol, bob]) {
    const m = await c.waitFor((f) => f.message?.clientId === 'deflate-1', undefined, 'the long message');
    assert.equal(m.message.text, long, `${c.name} got the text whole`);
    assert.equal(m.message.seq, ack.seq);
  }
  const back = await carol.call({ send: { room: 'general', clientId: 'deflate-2', text: long.toUpperCase() } }, 'ack');
  const m2 = await alice.waitFor((f) => f.message?.clientId === 'deflate-2', undefined, 'carol\'s message');
  assert.equal(m2.message.text, long.toUpperCase());
  assert.equal(m2.message.seq, back.seq);
  // Short frames stay plain; everything still parses.
  assert.ok((await alice.request({ ping: {} })).pong);

  const after_ = await stack.metricSums(deflating.name);
  assert.ok((after_.get('chat_ws_messages_inflated_total') ?? 0) - (before.get('chat_ws_messages_inflated_total') ?? 0) >= 1,
    'alice\'s send arrived compressed');
  assert.ok((after_.get('chat_ws_frames_deflated_total') ?? 0) - (before.get('chat_ws_frames_deflated_total') ?? 0) >= 2,
    'the long messages went out compressed to alice');
  for (const c of [alice, carol, bob]) assert.deepEqual(c.badFrames, []);
  await Promise.all([alice, carol, bob].map((c) => c.close()));
});

test('the frame limit holds on the inflated size: a small compressed message that inflates past it is closed with 1009', { timeout: 60_000 }, async () => {
  const mallory = await ChatClient.connect(deflating.wsUrl, stack.token('mallory'));
  const bystander = await ChatClient.connect(deflating.wsUrl, stack.token('dave'));
  await bystander.call({ join: { room: 'general' } }, 'joined');
  // 1 MB of one letter is about a kilobyte compressed; the gateway's frame limit is 64 KiB.
  mallory.ws.send(`{"ref":1,"send":{"room":"general","clientId":"bomb","text":"${'a'.repeat(1 << 20)}"}}`);
  const { code } = await mallory.closed;
  assert.equal(code, 1009);
  assert.ok((await bystander.request({ ping: {} })).pong, 'the bystander is unaffected');
  await bystander.close();
});
