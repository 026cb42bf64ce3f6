// A quick measurement of the whole path (WebSocket -> gateway -> gRPC stream -> group commit ->
// PostgreSQL -> Redis -> gateway -> WebSocket) on one gateway: acked messages per second, ack latency
// and delivery latency. It starts its own stack (tests/e2e/lib/stack.mjs) from CHAT_BIN_DIR.
//
//   CHAT_BIN_DIR=build/release/bin node bench/path_throughput.mjs [senders=20] [window=16] [seconds=10]
//
// Not a test: prints figures. The full harness with peers and ratios is the performance issue's work.
import crypto from 'node:crypto';
import { startStack } from '../tests/e2e/lib/stack.mjs';
import { ChatClient } from '../tests/e2e/lib/client.mjs';

const [senders = 20, window = 16, seconds = 10] = process.argv.slice(2).map(Number);
const stack = await startStack({
  gateways: 1,
  env: { gateway: { SEND_RATE_PER_SECOND: '1000000', SEND_BURST: '1000000', LOG_LEVEL: 'warn' } },
});
const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
try {
  const gw = stack.gateways[0];
  const watcher = await ChatClient.connect(gw.wsUrl, stack.token('watcher'));
  await watcher.call({ join: { room: 'general' } }, 'joined');
  const sentAt = new Map();
  const deliveryMs = [];
  watcher.ws.on('message', (d) => {
    const f = JSON.parse(d);
    const t0 = f.message && sentAt.get(f.message.clientId);
    if (t0) deliveryMs.push(performance.now() - t0);
  });
  const clients = [];
  for (let i = 0; i < senders; i++) {
    const c = await ChatClient.connect(gw.wsUrl, stack.token(`bench${i}`));
    await c.call({ join: { room: 'general' } }, 'joined');
    clients.push(c);
  }
  const ackMs = [];
  let acked = 0;
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(clients.map(async (c) => {
    const lane = async () => {
      while (performance.now() < deadline) {
        const clientId = crypto.randomUUID();
        const t0 = performance.now();
        sentAt.set(clientId, t0);
        const r = await c.request({ send: { room: 'general', clientId, text: 'x'.repeat(64) } });
        if (r.ack) {
          acked++;
          ackMs.push(performance.now() - t0);
        } else {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: window }, lane));
  }));
  const elapsed = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 500));
  ackMs.sort((a, b) => a - b);
  deliveryMs.sort((a, b) => a - b);
  const metrics = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
  console.log(JSON.stringify({
    senders, window, seconds: Number(elapsed.toFixed(2)),
    acked, errors, acked_per_second: Math.round(acked / elapsed),
    ack_ms: { p50: pct(ackMs, 50)?.toFixed(2), p99: pct(ackMs, 99)?.toFixed(2) },
    delivery_ms: { p50: pct(deliveryMs, 50)?.toFixed(2), p99: pct(deliveryMs, 99)?.toFixed(2), n: deliveryMs.length },
  }, null, 1));
  const messagesMetrics = await (await fetch(`http://127.0.0.1:${stack.ports.messagesMetrics}/metrics`).catch(() => null))?.text?.();
  if (messagesMetrics) {
    const line = (name) => messagesMetrics.split('\n').find((l) => l.startsWith(name));
    console.log(line('chat_commit_batch_size_count'), '|', line('chat_commit_batch_size_sum'));
  }
  void metrics;
  for (const c of [watcher, ...clients]) c.terminate();
} finally {
  await stack.teardown();
}
