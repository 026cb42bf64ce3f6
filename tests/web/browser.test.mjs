// The web page in real headless Chromium (Debian's `chromium`, driven by playwright-core) against the
// real binaries: PostgreSQL, Redis, chat-messages, chat-presence and two chat-gateway replicas
// (tests/e2e/lib/stack.mjs). Two users on two replicas exchange messages and see typing and presence;
// the gateway of one is killed with SIGKILL: its indicator turns red, it reconnects to the other
// replica, a message written while offline is delivered once and the history holds no duplicate; a
// message queued offline survives a page reload; scroll-back pages older history. DMs, admin commands
// and read receipts are checked when the gateway serves them (skipped with a note otherwise).
// Screenshots go to build/test-artifacts/web/.
//
//   CHAT_BIN_DIR=build/release/bin node --test --test-concurrency=1 tests/web/browser.test.mjs
//   (CHROMIUM=/path/to/chromium to use another build; WEB_KEEP_ARTIFACTS is implied: files stay)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';
import { startStack, freePort, httpGet, REPO_ROOT } from '../e2e/lib/stack.mjs';
import { ChatClient as RawClient } from '../e2e/lib/client.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'build', 'test-artifacts', 'web');
const WEB_ROOT = path.join(REPO_ROOT, 'services', 'gateway', 'web');
process.env.CHAT_BIN_DIR ??= path.join(REPO_ROOT, 'build', 'release', 'bin');
const STEP_MS = 120_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stack;
let browser;
const pages = {}; // name -> {page, context, errors}
const support = { dm: false, dmPush: false, admin: false, read: false };

async function openPage(name, url, viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
  page.on('console', (m) => {
    // The client logs exceptions of the page's event handlers; failed connections are expected here.
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection to/.test(m.text())) errors.push(`${name}: ${m.text()}`);
  });
  page.setDefaultTimeout(20_000);
  await page.goto(url);
  pages[name] = { page, context, errors };
  return page;
}

async function signIn(page, user, { admin = false } = {}) {
  await page.getByLabel('Your name').fill(user);
  if (admin) await page.getByLabel('as an admin').check();
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#conn[data-state="connected"]').waitFor();
  await page.locator('#rooms button', { hasText: '#general' }).waitFor();
  await page.waitForFunction(() => window.chat.client.rooms.get('general')?.joined);
}

/** A test that, when it fails, saves a screenshot of every open page (fail-<page>.png) and logs its state. */
function step(name, opts, fn) {
  test(name, opts, async (t) => {
    try {
      return await fn(t);
    } catch (err) {
      for (const [who, p] of Object.entries(pages)) {
        if (p.page.isClosed()) continue;
        await p.page.screenshot({ path: path.join(ARTIFACTS, `fail-${who}.png`), fullPage: true }).catch(() => {});
        const state = await p.page.evaluate(() => ({ url: location.href, conn: document.getElementById('conn').dataset.state, error: document.getElementById('error').textContent })).catch((e) => e.message);
        console.error(`web: after the failure of "${name}", ${who}: ${JSON.stringify(state)}; errors: ${JSON.stringify(p.errors)}`);
      }
      throw err;
    }
  });
}

const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

/** The messages shown in the room on screen: [{seq, from, text, state}]. */
const shown = (page) => page.evaluate(() => [...document.querySelectorAll('#logs ol:not([hidden]) li[data-seq]')]
  .map((li) => ({ seq: Number(li.dataset.seq), from: li.querySelector('.from')?.textContent, text: li.querySelector('.text')?.textContent, state: li.dataset.state ?? null })));

const line = (page, text) => page.locator('#logs ol:not([hidden]) li', { has: page.locator('.text', { hasText: text }) });

async function typeAndSend(page, text) {
  await page.locator('#text').fill(text);
  await page.locator('#text').press('Enter');
}

/** Submits the form and reports, in the same turn, the connection state and the new line's mark. */
const submitNow = (page, text) => page.evaluate((t) => {
  document.getElementById('text').value = t;
  document.getElementById('send').requestSubmit();
  const li = [...document.querySelectorAll('#logs ol:not([hidden]) li.mine')].find((x) => x.querySelector('.text')?.textContent === t);
  return { state: window.chat.client.state, mark: li?.dataset.state ?? null };
}, text);

/** Every seq once, ascending, and each text of `unique` exactly once. */
function assertNoDuplicates(msgs, unique, who) {
  const seqs = msgs.map((m) => m.seq);
  assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), `${who}: seqs unique and ascending: ${seqs}`);
  for (const t of unique) assert.equal(msgs.filter((m) => m.text === t).length, 1, `${who}: "${t}" shown once`);
}

async function dbCount(text) {
  const [[n]] = await stack.psql(`SELECT count(*) FROM messages WHERE body = '${text.replace(/'/g, "''")}'`);
  return Number(n);
}

async function raw(user, gw = 1, opts = {}) {
  const c = await RawClient.connect(stack.gateways[gw].wsUrl, stack.token(user, opts), { name: user });
  return c;
}

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (scripts/deps.sh)`);
  stack = await startStack({
    gateways: 2,
    env: {
      gateway: { DEV_LOGIN: '1', WEB_ROOT },
      messages: { SEED_PUBLIC_ROOMS: 'general,random,probe' },
      presence: { PRESENCE_GRACE_MS: '2000' },
    },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  console.log(`web: ${CHROMIUM} ${browser.version()}; screenshots in ${ARTIFACTS}`);

  // What this gateway serves of the protocol's later parts (the page is coded against all of it).
  const probe = await raw('probe-user');
  await probe.call({ join: { room: 'probe' } }, 'joined');
  const unsupported = (reply) => /not supported/.test(reply?.error?.message ?? '');
  const peer = await raw('probe-peer', 0);
  const dm = await probe.request({ openDm: { user: 'probe-peer' } });
  support.dm = !unsupported(dm);
  // Does the peer learn of the new DM (a joined frame without ref on its live connections)?
  support.dmPush = support.dm && !!(await peer.waitFor((f) => f.joined?.room === dm.joined?.room && f.ref === undefined, 3000).catch(() => null));
  await peer.close();
  support.read = !unsupported(await probe.request({ read: { room: 'probe', seq: '1' } }, 1500).catch(() => ({})));
  const admin = await raw('probe-admin', 1, { admin: true });
  await admin.call({ join: { room: 'probe' } }, 'joined');
  const cmd = await admin.request({ send: { room: 'probe', clientId: 'probe-cmd', text: '/stats' } });
  support.admin = !(cmd.ack && (await dbCount('/stats')) > 0);
  await probe.close();
  await admin.close();
  console.log(`web: the gateway serves openDm: ${support.dm} (tells the peer: ${support.dmPush}), read receipts: ${support.read}, admin commands: ${support.admin}`);
}, { timeout: 10 * 60_000 });

after(async () => {
  await browser?.close().catch(() => {});
  if (stack && stack.unexpectedExits.length > 0) stack.printLogTails();
  await stack?.teardown();
}, { timeout: 5 * 60_000 });

test('sizes of what the gateway serves', async () => {
  let total = 0;
  for (const p of ['/', '/app.js', '/chat-client.js', '/style.css']) {
    const r = await httpGet(stack.gateways[0].httpPort, p);
    assert.equal(r.status, 200, p);
    total += Buffer.byteLength(r.body);
    if (p === '/chat-client.js') {
      assert.match(r.headers['content-type'], /javascript/);
      const gz = zlib.gzipSync(Buffer.from(r.body), { level: 9 }).length;
      console.log(`web: chat-client.js ${Buffer.byteLength(r.body)} B, gzipped ${gz} B`);
      assert.ok(gz < 10 * 1024);
    }
  }
  console.log(`web: whole page (index.html, app.js, chat-client.js, style.css) ${total} B`);
  assert.ok(total < 50 * 1024);
});

step('two users on two replicas: messages with pending/sent marks, presence, typing', { timeout: STEP_MS }, async () => {
  const [g0, g1] = stack.gateways;
  const a = await openPage('alice', `${g0.httpUrl}/?gateways=${g0.wsUrl},${g1.wsUrl}`, { width: 1100, height: 760 });
  await signIn(a, 'alice');
  assert.equal(await a.locator('#conn').getAttribute('data-url'), g0.wsUrl);
  assert.equal(await a.locator('#conn').getAttribute('class'), 'conn green');
  // Bob at phone width, on the other replica.
  const b = await openPage('bob', `${g1.httpUrl}/?gateways=${g1.wsUrl},${g0.wsUrl}`, { width: 390, height: 780 });
  await signIn(b, 'bob');

  // Presence: each sees the other online (alice by a presence event, bob by joined.online).
  await a.locator('#people li.on', { hasText: 'bob' }).waitFor();
  await b.locator('#people li.on', { hasText: 'alice' }).waitFor();

  const first = await submitNow(a, 'hello from alice');
  assert.equal(first.mark, 'pending', 'shown as pending at once');
  await line(a, 'hello from alice').and(a.locator('[data-state="sent"], [data-state="read"]')).waitFor();
  await line(b, 'hello from alice').waitFor();
  await typeAndSend(b, 'hi alice, bob here');
  await line(a, 'hi alice, bob here').waitFor();

  // Typing: bob types (without sending), alice sees it; bob's message hides it at once.
  await b.locator('#text').pressSequentially('typing something', { delay: 40 });
  await a.locator('#typing', { hasText: 'bob is typing' }).waitFor({ timeout: 5000 });
  await shot(a, '01-alice-sees-typing');
  await b.locator('#text').press('Enter');
  await line(a, 'typing something').waitFor();
  await a.locator('#typing:empty').waitFor({ timeout: 1000 });

  if (support.read) {
    await line(a, 'hello from alice').and(a.locator('[data-state="read"]')).waitFor({ timeout: 10_000 });
  } else {
    console.log('web: read receipts not served by this gateway yet: not checked');
  }
  await shot(a, '02-alice-chat');
  await shot(b, '02-bob-chat-phone');
  const msgs = await shown(a);
  assert.deepEqual(msgs.map((m) => m.text), ['hello from alice', 'hi alice, bob here', 'typing something']);
  const strip = (list) => list.map(({ seq, from, text }) => ({ seq, from, text }));
  assert.deepEqual(strip(await shown(b)), strip(msgs));
});

step('the gateway of one page is killed: red, reconnects to the other replica, offline message delivered once', { timeout: STEP_MS }, async () => {
  const [g0, g1] = stack.gateways;
  const a = pages.alice.page;
  const b = pages.bob.page;
  const text = 'written while the gateway was down';
  // The moment the page goes offline it records its indicator and submits the form (the same path as
  // typing + Enter), so the reconnect (about 1 s later) cannot win a race against the test.
  await a.evaluate((t) => {
    const off = window.chat.client.on('state', (s) => {
      if (s.state !== 'reconnecting' || !s.retryInMs) return;
      off();
      const conn = document.getElementById('conn');
      window.offline = { className: conn.className, text: conn.textContent.replace(/\s+/g, ' ').trim() };
      document.getElementById('text').value = t;
      document.getElementById('send').requestSubmit();
      const li = [...document.querySelectorAll('#logs ol:not([hidden]) li.mine')].find((x) => x.querySelector('.text')?.textContent === t);
      Object.assign(window.offline, { state: window.chat.client.state, mark: li?.dataset.state ?? null });
    });
  }, text);
  await stack.killProc('gateway-0');
  const r = await (await a.waitForFunction(() => window.offline)).jsonValue();
  console.log(`web: alice offline: ${JSON.stringify(r)}`);
  assert.equal(r.className, 'conn red');
  assert.match(r.text, /offline retrying in \d s/);
  assert.equal(r.state, 'reconnecting');
  assert.equal(r.mark, 'pending', 'the message written offline shows as pending');
  await shot(a, '03-alice-offline-red'); // usually still red: the first retry waits about 1 s
  await a.locator('#conn.green[data-state="connected"]').waitFor({ timeout: 15_000 });
  assert.equal(await a.locator('#conn').getAttribute('data-url'), g1.wsUrl, 'reconnected to the other replica');
  await line(a, text).and(a.locator('[data-state="sent"], [data-state="read"]')).waitFor();
  await line(b, text).waitFor();
  await typeAndSend(b, 'welcome back');
  await line(a, 'welcome back').waitFor();
  await shot(a, '04-alice-reconnected');
  const unique = ['hello from alice', 'hi alice, bob here', 'typing something', text, 'welcome back'];
  assertNoDuplicates(await shown(a), unique, 'alice');
  assertNoDuplicates(await shown(b), unique, 'bob');
  assert.equal(await dbCount(text), 1);
});

step('after the restart the reloaded history holds every message once', { timeout: STEP_MS }, async () => {
  await stack.startProc('gateway-0');
  const a = pages.alice.page;
  await a.reload();
  await a.locator('#conn[data-state="connected"]').waitFor();
  await line(a, 'welcome back').waitFor();
  const msgs = await shown(a);
  assertNoDuplicates(msgs, ['hello from alice', 'written while the gateway was down', 'welcome back'], 'alice after reload');
  assert.deepEqual(msgs.map((m) => m.seq), msgs.map((_, i) => i + 1), 'seq 1..n, no gap');
  await shot(a, '05-alice-history-after-reload');
});

step('a message queued offline survives a page reload and is delivered once', { timeout: STEP_MS }, async () => {
  const [g0] = stack.gateways;
  const a = pages.alice.page;
  const b = pages.bob.page;
  const dead = `ws://127.0.0.1:${await freePort()}/ws`; // nothing listens there
  await a.goto(`${g0.httpUrl}/?gateways=${dead}`);
  await a.locator('#conn[data-state="reconnecting"]').waitFor();
  const text = 'queued, then the page was reloaded';
  assert.equal((await submitNow(a, text)).mark, 'pending');
  assert.match(await a.evaluate(() => localStorage.getItem('chat.outbox.alice')), /queued, then the page/);
  await a.reload();
  await line(a, text).and(a.locator('[data-state="pending"]')).waitFor();
  await shot(a, '06-alice-queued-after-reload');
  assert.equal(await dbCount(text), 0);
  await a.goto(`${g0.httpUrl}/?gateways=${g0.wsUrl}`);
  await line(a, text).and(a.locator('[data-state="sent"], [data-state="read"]')).waitFor();
  await line(b, text).waitFor();
  await sleep(500);
  assert.equal(await a.evaluate(() => localStorage.getItem('chat.outbox.alice')), null);
  assert.equal(await dbCount(text), 1);
  assertNoDuplicates(await shown(a), [text], 'alice');
  assertNoDuplicates(await shown(b), [text], 'bob');
});

step('joining a room from the form; scroll-back pages older history', { timeout: STEP_MS }, async () => {
  // 60 messages in "random" from three writers (20 each: one send burst per connection).
  const writers = await Promise.all(['w1', 'w2', 'w3'].map((u) => raw(u)));
  for (const w of writers) await w.call({ join: { room: 'random' } }, 'joined');
  let n = 0;
  for (const w of writers) {
    for (let i = 0; i < 20; i++) {
      for (;;) {
        const r = await w.request({ send: { room: 'random', clientId: `seed-${w.name}-${i}`, text: `old message ${++n}` } });
        if (!r.error) break;
        assert.equal(r.error.code, 'rate_limited');
        n--;
        await sleep(r.error.retryAfterMs || 200);
      }
    }
  }
  for (const w of writers) await w.close();
  const a = pages.alice.page;
  await a.getByLabel('Join a room').fill('random');
  await a.getByLabel('Join a room').press('Enter');
  await a.locator('#title', { hasText: '#random' }).waitFor();
  await a.locator('#older:not([hidden])').waitFor();
  let msgs = await shown(a);
  assert.equal(msgs.length, 50);
  assert.equal(msgs[0].seq, 11);
  await a.locator('#older').click();
  await a.locator('#older').waitFor({ state: 'hidden' });
  msgs = await shown(a);
  assert.deepEqual(msgs.map((m) => m.seq), Array.from({ length: 60 }, (_, i) => i + 1));
  assertNoDuplicates(msgs, [], 'alice in random');
  await shot(a, '07-alice-scrollback');
  await a.getByRole('button', { name: '#general' }).click();
  await a.locator('#title', { hasText: '#general' }).waitFor();
});

step('direct messages', { timeout: STEP_MS }, async (t) => {
  if (!support.dm) return t.skip('openDm is not served by this gateway yet');
  const a = pages.alice.page;
  const b = pages.bob.page;
  await a.getByLabel('Direct message').fill('bob');
  await a.getByLabel('Direct message').press('Enter');
  await a.locator('#title', { hasText: '@bob' }).waitFor();
  await typeAndSend(a, 'just between us');
  await line(a, 'just between us').and(a.locator('[data-state="sent"], [data-state="read"]')).waitFor();
  await shot(a, '08-alice-dm');
  if (support.dmPush) {
    // Bob learns of the DM from the server (a joined frame without ref) and sees it in his room list.
    await b.getByRole('button', { name: /@alice/ }).click({ timeout: 10_000 });
    await line(b, 'just between us').waitFor();
    await shot(b, '08-bob-dm-phone');
  } else {
    console.log('web: the gateway does not tell the peer of a new DM yet: the receiving side is not checked');
  }
  // Reloaded, the DM keeps its name (the room id is opaque) and its messages.
  await a.reload();
  await a.getByRole('button', { name: '@bob' }).click();
  await line(a, 'just between us').waitFor();
});

step('admin slash commands', { timeout: STEP_MS }, async (t) => {
  if (!support.admin) return t.skip('admin slash commands are not served by this gateway yet');
  const [, g1] = stack.gateways;
  const root = await openPage('root', `${g1.httpUrl}/?gateways=${g1.wsUrl}`, { width: 900, height: 700 });
  await signIn(root, 'root', { admin: true });
  await root.locator('#me', { hasText: '(admin)' }).waitFor();
  await root.locator('#admin-hint:not([hidden])').waitFor();
  await typeAndSend(root, '/broadcast maintenance at noon');
  await pages.alice.page.locator('#logs li.notice', { hasText: 'maintenance at noon' }).waitFor();
  await pages.bob.page.locator('#logs li.notice', { hasText: 'maintenance at noon' }).waitFor();
  assert.equal(await dbCount('/broadcast maintenance at noon'), 0, 'a command is not stored as a message');
  await root.locator('#logs li', { hasText: 'broadcast sent' }).waitFor();
  await shot(pages.alice.page, '09-alice-broadcast');

  await typeAndSend(root, '/stats');
  await root.locator('#logs li', { hasText: /connections: \d+/ }).waitFor();

  // /clear in "random": alice (looking at it) sees its history go.
  const a = pages.alice.page;
  await a.getByRole('button', { name: '#random' }).click();
  await line(a, 'old message 60').waitFor();
  await root.getByLabel('Join a room').fill('random');
  await root.getByLabel('Join a room').press('Enter');
  await line(root, 'old message 60').waitFor();
  await typeAndSend(root, '/clear');
  await a.locator('#logs li.notice', { hasText: 'history of this room was cleared' }).waitFor();
  assert.equal((await shown(a)).length, 0);
  await a.getByRole('button', { name: '#general' }).click();

  // /kick: carol's connection is closed with 4003; her page says so and does not reconnect by itself.
  const carol = await openPage('carol', `${g1.httpUrl}/?gateways=${g1.wsUrl}`, { width: 800, height: 600 });
  await signIn(carol, 'carol');
  await typeAndSend(root, '/kick carol');
  await root.locator('#logs li', { hasText: 'kicked carol' }).waitFor();
  await carol.locator('#conn.red[data-state="failed"]', { hasText: 'removed by an admin' }).waitFor();
  await shot(carol, '09-carol-kicked');
  await sleep(2000);
  assert.equal(await carol.locator('#conn').getAttribute('data-state'), 'failed');
  await root.getByRole('button', { name: '#general' }).click();
});

step('a browser whose WebSocket is blocked falls back to SSE + REST and chats', { timeout: STEP_MS }, async () => {
  const [, g1] = stack.gateways;
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  // A proxy that refuses upgrades, as the page sees it: every WebSocket fails before it opens.
  await context.addInitScript(() => {
    window.WebSocket = class BlockedWebSocket {
      constructor() {
        this.readyState = 0;
        setTimeout(() => {
          this.readyState = 3;
          this.onerror?.(new Event('error'));
          this.onclose?.({ code: 1006 });
        }, 10);
      }
      send() {}
      close() {}
    };
  });
  const dave = await context.newPage();
  const errors = [];
  dave.on('pageerror', (e) => errors.push(e.message));
  dave.setDefaultTimeout(30_000);
  await dave.goto(`${g1.httpUrl}/`);
  pages.dave = { page: dave, context, errors };
  await signIn(dave, 'dave');
  assert.equal(await dave.evaluate(() => window.chat.client.ws?.sse), true, 'connected over the SSE fallback');
  const a = pages.alice.page;
  await a.getByRole('button', { name: '#general' }).click();
  await typeAndSend(dave, 'hello over sse');
  await line(dave, 'hello over sse').and(dave.locator('[data-state="sent"], [data-state="read"]')).waitFor();
  await line(a, 'hello over sse').waitFor();
  await typeAndSend(a, 'welcome, sse user');
  await line(dave, 'welcome, sse user').waitFor();
  assert.equal(await dbCount('hello over sse'), 1, 'stored once');
  await shot(dave, '10-dave-sse-fallback');
  await context.close();
  delete pages.dave;
  assert.deepEqual(errors, [], 'no uncaught errors on the fallback page');
});

step('presence: bob leaves; alice sees him offline with his last-seen time', { timeout: STEP_MS }, async () => {
  const a = pages.alice.page;
  await a.getByRole('button', { name: '#general' }).click();
  await pages.bob.context.close();
  await a.locator('#people li.off', { hasText: 'bob' }).locator('small', { hasText: 'last seen' }).waitFor({ timeout: 20_000 });
  await shot(a, '10-alice-bob-offline');
  const errors = Object.values(pages).flatMap((p) => p.errors);
  assert.deepEqual(errors, [], 'no uncaught errors in the pages');
});
