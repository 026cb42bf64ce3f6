// A WebSocket client for the chat protocol v1 (see DESIGN.md), for end-to-end tests.
//
//   const token = mintToken(secret, { sub: 'alice' });
//   const c = await ChatClient.connect(`ws://127.0.0.1:${port}/ws`, token);   // resolves after `welcome`
//   const reply = await c.request({ join: { room: 'general' } });            // auto ref; reply frame
//   await c.waitFor((f) => f.message?.seq === '3', 10_000);                   // pushed frames (no ref)
//
// request() resolves with the whole reply frame, including error replies ({ref, error: {...}}); call()
// resolves with the body and throws on an error reply. Frames without a pending ref land in `inbox`.
import crypto from 'node:crypto';
import http from 'node:http';
import WebSocket from 'ws';

export const DEFAULT_TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS || 30_000);

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** HS256 JWT with claims sub, exp (default now + 1 h) and optional admin. */
export function mintToken(secret, { sub, exp, admin, ttlSeconds = 3600, extra = {} } = {}) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = { sub, exp: exp ?? Math.floor(Date.now() / 1000) + ttlSeconds, ...extra };
  if (admin) claims.admin = true;
  const payload = b64url(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${sig}`;
}

/**
 * Sends `GET path` with WebSocket upgrade headers and resolves with the HTTP status: 101 when the
 * server upgraded (the socket is closed right away), else the status of its plain HTTP answer.
 */
export function upgradeStatus(port, path, headers = {}, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
        ...headers,
      },
      timeout: timeoutMs,
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export class ChatClient {
  /**
   * Opens a connection and waits for the server's `welcome`. Rejects with err.statusCode set when the
   * server answered the upgrade with plain HTTP (e.g. 401).
   */
  static connect(url, token, { name, timeoutMs = DEFAULT_TIMEOUT_MS, useHeader = false, ca, deflate = true } = {}) {
    const target = useHeader || !token ? url : `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
    const headers = useHeader && token ? { Authorization: `Bearer ${token}` } : {};
    // `ca`: the PEM certificate to trust for a wss:// URL.
    // `deflate`: offer permessage-deflate (ws offers it by default, as browsers do).
    const ws = new WebSocket(target, { headers, maxPayload: 64 * 1024 * 1024, handshakeTimeout: timeoutMs, perMessageDeflate: deflate, ...(ca ? { ca } : {}) });
    const client = new ChatClient(ws, name ?? url);
    ws.once('upgrade', (res) => (client.upgradeHeaders = res.headers)); // the 101's headers
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`${client.name}: no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        const err = new Error(`${client.name}: upgrade refused with HTTP ${res.statusCode}`);
        err.statusCode = res.statusCode;
        res.resume();
        ws.terminate();
        reject(err);
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      client.welcomed = new Promise((res) => (client._onWelcome = res));
      client.welcomed.then(() => {
        clearTimeout(timer);
        resolve(client);
      });
      ws.once('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`${client.name}: closed (${code}) before welcome`));
      });
    });
  }

  constructor(ws, name) {
    this.ws = ws;
    this.name = name;
    this.nextRef = 1;
    this.pending = new Map(); // ref -> {resolve, reject, timer}
    this.inbox = []; // every frame that did not answer a pending request, in arrival order
    this.waiters = new Set(); // {predicate, resolve, reject, timer}
    this.welcome = null;
    this.closeInfo = null; // {code, reason} once closed
    this.badFrames = []; // text that was not JSON
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        const err = new Error(`${this.name}: connection closed (${code} ${reason})`);
        for (const p of this.pending.values()) {
          clearTimeout(p.timer);
          p.reject(err);
        }
        this.pending.clear();
        for (const w of this.waiters) {
          clearTimeout(w.timer);
          w.reject(err);
        }
        this.waiters.clear();
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => {}); // surfaced through 'close'
    ws.on('message', (data, isBinary) => this._onFrame(data, isBinary));
  }

  _onFrame(data, isBinary) {
    let frame;
    try {
      frame = JSON.parse(isBinary ? Buffer.from(data).toString('utf8') : data.toString());
    } catch {
      this.badFrames.push(data.toString());
      return;
    }
    if (!this.welcome && frame.welcome) {
      this.welcome = frame.welcome;
      this._onWelcome?.(frame.welcome);
      return;
    }
    if (frame.ref !== undefined && this.pending.has(Number(frame.ref))) {
      const p = this.pending.get(Number(frame.ref));
      this.pending.delete(Number(frame.ref));
      clearTimeout(p.timer);
      p.resolve(frame);
      return;
    }
    this.inbox.push(frame);
    for (const w of this.waiters) {
      if (w.predicate(frame)) {
        this.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(frame);
      }
    }
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Sends a frame (object gets a fresh ref unless it has one) and resolves with the reply frame. */
  request(frame, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const ref = frame.ref ?? this.nextRef++;
    const out = { ...frame, ref };
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new Error(`${this.name}: not open (request ${JSON.stringify(out).slice(0, 200)})`));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new Error(`${this.name}: no reply to ref ${ref} within ${timeoutMs} ms: ${JSON.stringify(out).slice(0, 200)}`));
      }, timeoutMs);
      this.pending.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify(out));
    });
  }

  /** Like request() but returns the reply's body object for `key` and throws on an error reply. */
  async call(frame, key, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const reply = await this.request(frame, timeoutMs);
    if (reply.error) {
      const err = new Error(`${this.name}: ${JSON.stringify(frame).slice(0, 200)} -> error ${JSON.stringify(reply.error)}`);
      err.code = reply.error.code;
      err.reply = reply;
      throw err;
    }
    if (key && reply[key] === undefined) {
      throw new Error(`${this.name}: expected "${key}" in reply, got ${JSON.stringify(reply).slice(0, 300)}`);
    }
    return key ? reply[key] : reply;
  }

  /** Sends raw text (or an object as JSON) without a ref of our own; replies land in the inbox. */
  sendRaw(data) {
    this.ws.send(typeof data === 'string' || Buffer.isBuffer(data) ? data : JSON.stringify(data));
  }

  /** Resolves with the first inbox frame (already received or future) that matches. */
  waitFor(predicate, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'frame') {
    const hit = this.inbox.find(predicate);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      if (this.closeInfo) {
        reject(new Error(`${this.name}: closed (${this.closeInfo.code}) while waiting for ${what}`));
        return;
      }
      const w = { predicate, resolve, reject, timer: null };
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Pushed chat messages of one room, in arrival order. */
  messages(room) {
    return this.inbox.filter((f) => f.message && f.message.room === room).map((f) => f.message);
  }

  /** Polls until fn() is truthy (checked on every frame and every 50 ms). */
  async until(fn, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'condition') {
    const deadline = Date.now() + timeoutMs;
    while (!fn()) {
      if (Date.now() > deadline) throw new Error(`${this.name}: ${what} not met within ${timeoutMs} ms`);
      if (this.closeInfo) throw new Error(`${this.name}: closed (${this.closeInfo.code}) while waiting for ${what}`);
      await sleep(50);
    }
  }

  close(code = 1000) {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve(this.closeInfo);
    try {
      this.ws.close(code);
    } catch {
      this.ws.terminate();
    }
    const t = setTimeout(() => this.ws.terminate(), 3000);
    return this.closed.finally(() => clearTimeout(t));
  }

  terminate() {
    this.ws.terminate();
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
