// A small SSE client for the tests of the gateway's fallback (`GET /api/events`): Node has no
// EventSource, and the tests want to see every field (id, event) and the raw response anyway.
//
//   const s = await SseStream.open(gateway, token, { rooms: [['general', null, 1]], lastEventId });
//   await s.waitFor((e) => e.frame?.joined);      // e = {event, id, data, frame}
//   s.close();
import http from 'node:http';
import https from 'node:https';
import { DEFAULT_TIMEOUT_MS } from './client.mjs';

export class SseStream {
  /**
   * Opens the stream. `rooms` is a list of [room, afterSeq|null, ref|null]. Resolves once the response
   * head arrived; rejects with err.status/err.body when the gateway answered with an error instead.
   */
  static open(gateway, token, { rooms = [], lastEventId, useHeader = false, headers = {}, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    const q = new URLSearchParams();
    if (token && !useHeader) q.append('token', token);
    for (const [room, after, ref] of rooms) {
      q.append('room', room);
      q.append('after', after ?? '');
      q.append('ref', ref ?? '');
    }
    const h = { Accept: 'text/event-stream', ...headers };
    if (token && useHeader) h.Authorization = `Bearer ${token}`;
    if (lastEventId) h['Last-Event-ID'] = lastEventId;
    const ca = gateway.ca;
    return new Promise((resolve, reject) => {
      const req = (ca ? https : http).get(
        { host: '127.0.0.1', port: gateway.httpPort, path: `/api/events?${q}`, headers: h, timeout: timeoutMs, ...(ca ? { ca } : {}) },
        (res) => {
          if (res.statusCode !== 200) {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (body += d));
            res.on('end', () => {
              const err = new Error(`GET /api/events: HTTP ${res.statusCode} ${body}`);
              err.status = res.statusCode;
              err.body = body;
              reject(err);
            });
            return;
          }
          req.setTimeout(0);
          resolve(new SseStream(req, res));
        },
      );
      req.on('timeout', () => req.destroy(new Error('GET /api/events: timeout')));
      req.on('error', reject);
    });
  }

  constructor(req, res) {
    this.req = req;
    this.res = res;
    this.headers = res.headers;
    this.events = []; // {event, id, data, frame}
    this.comments = 0;
    this.ended = false;
    this.waiters = new Set();
    this.buf = '';
    res.setEncoding('utf8');
    res.on('data', (d) => this._feed(d));
    const end = () => {
      this.ended = true;
      this._check();
    };
    res.on('end', end);
    res.on('close', end);
    res.on('error', end);
  }

  _feed(chunk) {
    this.buf += chunk;
    let at;
    while ((at = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, at);
      this.buf = this.buf.slice(at + 2);
      const e = { event: 'message', id: undefined, data: undefined };
      let fields = 0;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments++;
          continue;
        }
        const colon = line.indexOf(':');
        const key = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (key === 'data') e.data = e.data === undefined ? value : `${e.data}\n${value}`;
        else if (key === 'id') e.id = value;
        else if (key === 'event') e.event = value;
        else continue;
        fields++;
      }
      if (!fields || e.data === undefined) continue;
      try {
        e.frame = JSON.parse(e.data);
      } catch {
        e.frame = null;
      }
      this.events.push(e);
    }
    this._check();
  }

  _check() {
    for (const w of this.waiters) {
      const hit = this.events.find(w.predicate);
      if (hit || this.ended) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        if (hit) w.resolve(hit);
        else w.reject(new Error(`SSE stream ended before ${w.what}`));
      }
    }
  }

  /** The first event (already seen or coming) that matches. */
  waitFor(predicate, what = 'event', timeoutMs = DEFAULT_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const w = { predicate, what, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`no SSE ${what} within ${timeoutMs} ms; got ${this.events.map((e) => e.data).join(' | ')}`));
      }, timeoutMs);
      this.waiters.add(w);
      this._check();
    });
  }

  /** The frames of the `message` events of a room, in arrival order. */
  messages(room) {
    return this.events.filter((e) => e.frame?.message?.room === room).map((e) => e.frame.message);
  }

  close() {
    this.req.destroy();
  }
}

/** A REST call to the gateway's fallback API; resolves {status, headers, json}. */
export function rest(gateway, token, method, room, { body, query = '', headers = {}, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const ca = gateway.ca;
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = (ca ? https : http).request(
      {
        host: '127.0.0.1', port: gateway.httpPort, method, headers: h, timeout: timeoutMs,
        path: `/api/rooms/${encodeURIComponent(room)}/messages${query ? `?${query}` : ''}`, ...(ca ? { ca } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode, headers: res.headers, json, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${room}: timeout`)));
    req.on('error', reject);
    req.end(body === undefined || typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
  });
}
