// TLS on the gateway's HTTP port (issue 5): a replica started with TLS_CERT_FILE/TLS_KEY_FILE serves
// https and wss only: the page, health, metrics, the WebSocket protocol and the SSE/REST fallback, and
// chats with a plain replica through Redis like any other. The certificate is made for the test with
// the openssl command (EC P-256, self-signed for 127.0.0.1), and the clients trust exactly it.
//
// Run: CHAT_BIN_DIR=build/release/bin node --test tests/e2e/tls.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { startStack, addGateway, httpGet } from './lib/stack.mjs';
import { ChatClient } from './lib/client.mjs';
import { SseStream, rest } from './lib/sse.mjs';

let stack, plain, secure;

before(async () => {
  stack = await startStack({ gateways: 1 });
  plain = stack.gateways[0];
  const cert = path.join(stack.dir, 'gateway.crt');
  const key = path.join(stack.dir, 'gateway.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', key, '-out', cert], { stdio: 'pipe' });
  fs.chmodSync(key, 0o644); // the gateway may run as another user in CI containers
  secure = await addGateway(stack, { TLS_CERT_FILE: cert, TLS_KEY_FILE: key });
}, { timeout: 5 * 60_000 });

after(async () => {
  await stack?.teardown();
});

test('https serves health, the page and metrics; plain HTTP on the TLS port gets nothing', { timeout: 60_000 }, async () => {
  assert.equal((await httpGet(secure.httpPort, '/healthz', { ca: secure.ca })).status, 200);
  const page = await httpGet(secure.httpPort, '/', { ca: secure.ca });
  assert.equal(page.status, 200);
  assert.match(page.body, /<html/i);
  // A client that does not trust the certificate refuses it.
  await assert.rejects(new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: secure.httpPort, path: '/healthz' }, resolve).on('error', reject);
  }), /self.signed|certificate/i);
  // Plain HTTP to the TLS port: no HTTP answer (the handshake fails and the connection closes).
  const answer = await new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: secure.httpPort, path: '/healthz', timeout: 10_000 }, (res) => resolve(`HTTP ${res.statusCode}`));
    req.on('error', (e) => resolve(`error ${e.code}`));
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
  assert.match(answer, /^error /, `plain HTTP on the TLS port: ${answer}`);
  const metrics = await stack.metricsText(secure.name);
  assert.match(metrics, /chat_tls_handshake_failures_total [1-9]/);
});

test('wss and ws clients on a TLS and a plain replica chat through Redis; SSE and REST work over https', { timeout: 60_000 }, async () => {
  const alice = await ChatClient.connect(secure.wsUrl, stack.token('alice'), { ca: secure.ca });
  const bob = await ChatClient.connect(plain.wsUrl, stack.token('bob'));
  await alice.call({ join: { room: 'general' } }, 'joined');
  await bob.call({ join: { room: 'general' } }, 'joined');
  const sse = await SseStream.open(secure, stack.token('carol'), { rooms: [['general', null, 1]] });
  await sse.waitFor((e) => e.frame?.joined, 'joined over https');

  await alice.call({ send: { room: 'general', clientId: crypto.randomUUID(), text: 'over wss' } }, 'ack');
  await bob.waitFor((f) => f.message?.text === 'over wss', undefined, 'wss -> ws');
  await bob.call({ send: { room: 'general', clientId: crypto.randomUUID(), text: 'over ws' } }, 'ack');
  await alice.waitFor((f) => f.message?.text === 'over ws', undefined, 'ws -> wss');
  const r = await rest(secure, stack.token('carol'), 'POST', 'general', { body: { clientId: crypto.randomUUID(), text: 'over https' } });
  assert.equal(r.status, 200, r.text);
  await alice.waitFor((f) => f.message?.text === 'over https', undefined, 'https REST -> wss');
  await sse.waitFor((e) => e.frame?.message?.text === 'over ws', 'ws -> SSE over https');

  // Upgrades keep the same rules over TLS: no token, no socket.
  await assert.rejects(ChatClient.connect(secure.wsUrl, null, { ca: secure.ca }), (e) => e.statusCode === 401);
  sse.close();
  alice.close();
  bob.close();
});
