// A chat client with the behaviour DESIGN.md asks of real clients, for fault tests:
//
//  - a list of gateway URLs: when its gateway is gone (connection refused, dropped, 1001 shutdown) it
//    reconnects to the next one; after other closes (1013 slow consumer, ...) to the same one first;
//  - reconnect with jittered backoff (short in tests: 100, 200, 400, 800 ms by default);
//  - after every (re)connect: `resume {room, afterSeq}` for each room with the last seq it has shown
//    (or, with resumeMode 'fallback', or 'auto' against a gateway without resume: join + history);
//  - shows each room's messages exactly once and in seq order: drops what it has shown already (counted
//    as duplicatesDropped), holds messages that arrive ahead of a gap and fills the gap with history
//    (counted as gapsSeen: the server promises none, so tests assert 0);
//  - an outbox: every send gets a clientId once and is retransmitted with the SAME clientId until it is
//    acked: after a reconnect, on `unavailable` (with backoff), on `rate_limited` (after retryAfterMs)
//    and when no reply came within requestTimeoutMs.
//
//   const c = new ResilientClient({ urls: [gw0.wsUrl, gw1.wsUrl], token, name: 'alice' });
//   await c.start();                       // resolves after the first welcome
//   await c.join('general');               // first join: shows messages after joined.lastSeq
//   const { clientId, acked } = c.send('general', 'hi');   // acked: promise of the ack
//   c.shownSeqs('general')                 // what it has shown, in order
//   c.stats                                // counters, see below
//   await c.close();
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Codes after which the gateway is taken to be gone: move on to the next URL. */
const GONE_CODES = new Set([1001, 1005, 1006, 1011, 1012]);
/** Codes after which reconnecting makes no sense. */
const FATAL_CODES = new Set([4001, 4003]);

class ConnectionDown extends Error {}

export class ResilientClient extends EventEmitter {
  /**
   * @param {object} o
   * @param {string[]} o.urls            gateway WebSocket URLs (ws://host:port/ws)
   * @param {string|function} o.token    a JWT, or a function returning one (called per connect)
   * @param {string} [o.name]
   * @param {number[]} [o.backoffMs]     reconnect delays; the last one repeats; each jittered to 50-100 %
   * @param {number} [o.maxTries]        failed connects in a row before giving up (state 'failed')
   * @param {number} [o.requestTimeoutMs] no reply within this: a send is retransmitted, a resume retried
   * @param {number} [o.window]          sends in flight at once
   * @param {'resume'|'fallback'|'auto'} [o.resumeMode]  'auto': resume, join+history when unsupported
   * @param {number} [o.startIndex]      index in urls of the first gateway to try
   * @param {number} [o.historyPage]     page size for gap fill and fallback (DESIGN's default page)
   */
  constructor({
    urls,
    token,
    name = 'client',
    backoffMs = [100, 200, 400, 800],
    maxTries = Infinity,
    requestTimeoutMs = 20_000,
    window = 8,
    resumeMode = 'auto',
    startIndex = 0,
    historyPage = 50,
    log = null,
  }) {
    super();
    if (!urls?.length) throw new Error('ResilientClient: urls is empty');
    this.urls = urls;
    this.token = token;
    this.name = name;
    this.backoffMs = backoffMs;
    this.maxTries = maxTries;
    this.requestTimeoutMs = requestTimeoutMs;
    this.window = window;
    this.resumeMode = resumeMode;
    this.resumeSupported = resumeMode === 'fallback' ? false : null; // null: not known yet
    this.urlIndex = startIndex % urls.length;
    this.historyPage = historyPage;
    this.log = log ?? (() => {});

    this.state = 'idle'; // idle, connecting, connected, reconnecting, failed, closed
    this.conn = null;
    this.connSeq = 0;
    this.tries = 0;
    this.downSince = null; // when the last established connection dropped
    this.reconnectTimer = null;
    this.pumpTimer = null;
    this.stopped = false;
    this.welcome = null;

    this.rooms = new Map(); // room -> RoomState
    this.outbox = new Map(); // clientId -> entry, in submission order
    this.open = new Set(); // entries not acked (nor failed) yet, in submission order
    this.errors = []; // things that went wrong that a test may want to see

    this.stats = {
      sent: 0, // distinct messages submitted
      transmissions: 0, // send frames written, resends included
      resends: 0,
      acked: 0,
      duplicateAcks: 0, // acks with duplicate: true (a resend of something already stored)
      delivered: 0, // messages shown
      duplicatesDropped: 0, // messages received again after being shown (legal: at-least-once)
      gapsSeen: 0, // live message ahead of a gap (server promises none)
      resumeGaps: 0, // resume replay that did not start right after afterSeq, without truncated
      historyFilled: 0, // messages shown from history (gap fill, fallback, truncated resume)
      replayed: 0, // sum of resumed.replayed
      truncatedResumes: 0,
      fallbackSyncs: 0, // join+history instead of resume
      resumes: 0,
      reconnects: 0, // welcomes after a drop
      connectFailures: 0,
      resumeTimesMs: [], // from the drop to every room resumed on the new connection
      resumeRttMs: [], // one resume request to its answer
      resumeLog: [], // {room, afterSeq, lastSeq, replayed, truncated, firstReplayed, lastReplayed, rttMs}
      unavailable: 0,
      rateLimited: 0,
      forbidden: 0,
      timeouts: 0,
      otherErrors: 0,
      closeCodes: [], // close codes of established connections, in order
      gateways: [], // URL index of each established connection
    };
    this._firstWelcome = null;
  }

  // ---- public API --------------------------------------------------------------------------------

  /** Connects; resolves after the first welcome (rejects when it gives up first). */
  start() {
    if (this._firstWelcome) return this._firstWelcome.promise;
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this._firstWelcome = { promise, resolve, reject };
    this._connect();
    return promise;
  }

  /** Joins `room` (first time: `join`, shows what comes after joined.lastSeq). Resolves with lastSeq. */
  async join(room, timeoutMs = 4 * this.requestTimeoutMs) {
    if (this.rooms.has(room)) throw new Error(`${this.name}: already in ${room}`);
    const r = {
      room,
      lastShown: null, // seq of the last message shown; null until the first join answered
      base: null, // lastSeq at the first join
      shown: [], // {seq, id, clientId, from, text, at, via}
      buffer: [], // messages received but not shown yet (ahead of a gap, or during a sync)
      joinedConn: null, // the connection this room is joined/resumed on
      syncing: null, // token of the resume/join/gap fill that runs; live messages go to the buffer
      gaps: [],
    };
    this.rooms.set(room, r);
    const deadline = Date.now() + timeoutMs;
    let tries = 0;
    while (r.joinedConn === null || r.joinedConn !== this.conn) {
      if (Date.now() > deadline) throw new Error(`${this.name}: could not join ${room} within ${timeoutMs} ms`);
      if (this.state === 'failed' || this.state === 'closed') throw new Error(`${this.name}: ${this.state} (${this.errors.at(-1) ?? ''})`);
      const conn = this.conn;
      if (conn && conn.welcomed && !conn.down && !r.syncing) {
        if (!(await this._syncRoom(conn, r))) await sleep(this._backoff(tries++));
      } else {
        await sleep(50);
      }
    }
    return r.base;
  }

  /**
   * Queues a message; it is (re)transmitted with the same clientId until acked.
   * Returns {clientId, entry, acked} where acked is a promise of the ack.
   */
  send(room, text, clientId = crypto.randomUUID()) {
    if (!this.rooms.has(room)) throw new Error(`${this.name}: send to ${room} before join`);
    let resolve;
    let reject;
    const acked = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    acked.catch(() => {}); // a test that does not await it must not crash on a failed message
    const entry = {
      clientId,
      room,
      text,
      state: 'queued', // queued, inflight, acked, failed
      submittedAt: Date.now(),
      firstSentAt: null,
      ackedAt: null,
      attempts: 0,
      failures: 0,
      notBefore: 0,
      ack: null,
      conn: null,
      resolve,
      reject,
      acked,
    };
    this.outbox.set(clientId, entry);
    this.open.add(entry);
    this.stats.sent += 1;
    this._pump();
    return { clientId, entry, acked };
  }

  /** Entries not acked yet. */
  get unacked() {
    return [...this.open];
  }

  /** The messages shown in `room`, in order. */
  shown(room) {
    return this.rooms.get(room)?.shown ?? [];
  }

  shownSeqs(room) {
    return this.shown(room).map((m) => m.seq);
  }

  lastShown(room) {
    return this.rooms.get(room)?.lastShown ?? null;
  }

  /** Drops the connection (like a network loss) and stays offline until goOnline(). */
  goOffline() {
    this.offline = true;
    clearTimeout(this.reconnectTimer);
    this.conn?.ws.terminate();
  }

  /** Reconnects after goOffline() (to the same gateway), resuming every room. */
  goOnline() {
    if (!this.offline) return;
    this.offline = false;
    this._connect();
  }

  /** Stop reading from the socket (TCP backpressure towards the gateway). */
  pauseReading() {
    this.conn?.ws?._socket?.pause();
    this._paused = true;
  }

  resumeReading() {
    this._paused = false;
    this.conn?.ws?._socket?.resume();
  }

  /** Polls until fn() is truthy. */
  async until(fn, timeoutMs, what = 'condition') {
    const deadline = Date.now() + timeoutMs;
    while (!fn()) {
      if (Date.now() > deadline) throw new Error(`${this.name}: ${what} not met within ${timeoutMs} ms`);
      if (this.state === 'failed') throw new Error(`${this.name}: failed (${this.errors.at(-1) ?? 'gave up reconnecting'}) while waiting for ${what}`);
      await sleep(50);
    }
  }

  /** Closes for good. */
  async close() {
    this.stopped = true;
    this.state = 'closed';
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.pumpTimer);
    const conn = this.conn;
    if (!conn || conn.ws.readyState === WebSocket.CLOSED) return;
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        conn.ws.terminate();
        resolve();
      }, 3000);
      conn.ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      try {
        if (conn.ws.readyState === WebSocket.CONNECTING) conn.ws.terminate();
        else conn.ws.close(1000);
      } catch {
        conn.ws.terminate();
      }
    });
  }

  terminate() {
    this.stopped = true;
    this.state = 'closed';
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.pumpTimer);
    this.conn?.ws.terminate();
  }

  /** One line of counters for test output. */
  summary() {
    const s = this.stats;
    return `${this.name}: sent=${s.sent} acked=${s.acked} tx=${s.transmissions} resends=${s.resends} dupAcks=${s.duplicateAcks} ` +
      `delivered=${s.delivered} dupDropped=${s.duplicatesDropped} gaps=${s.gapsSeen} resumeGaps=${s.resumeGaps} ` +
      `reconnects=${s.reconnects} resumes=${s.resumes} unavailable=${s.unavailable} timeouts=${s.timeouts} ` +
      `closes=[${s.closeCodes.length > 12 ? `${s.closeCodes.slice(0, 6).join(',')},...(${s.closeCodes.length} in all)...,${s.closeCodes.slice(-6).join(',')}` : s.closeCodes.join(',')}]`;
  }

  // ---- connection --------------------------------------------------------------------------------

  _connect() {
    if (this.stopped) return;
    const url = this.urls[this.urlIndex];
    const token = typeof this.token === 'function' ? this.token() : this.token;
    const target = `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
    this.state = this.downSince === null && this.stats.reconnects === 0 && this.connSeq === 0 ? 'connecting' : 'reconnecting';
    const ws = new WebSocket(target, { maxPayload: 64 * 1024 * 1024, handshakeTimeout: this.requestTimeoutMs });
    const conn = {
      id: ++this.connSeq,
      ws,
      urlIndex: this.urlIndex,
      pending: new Map(), // ref -> {resolve, reject, timer}
      sends: new Map(), // ref -> entry (also after a timeout, so a late ack still counts)
      nextRef: 1,
      welcomed: false,
      down: false,
      openedAt: Date.now(),
    };
    this.conn = conn;
    // A gateway that accepts the upgrade but never says welcome counts as down.
    conn.welcomeTimer = setTimeout(() => {
      if (!conn.welcomed) this._onDown(conn, { code: 'no welcome', established: false });
    }, this.requestTimeoutMs);
    ws.on('unexpected-response', (req, res) => {
      res.resume();
      req.destroy();
      this._onDown(conn, { code: `http ${res.statusCode}`, established: false, httpStatus: res.statusCode });
    });
    ws.on('error', (err) => {
      if (!conn.welcomed) this._onDown(conn, { code: err.code || err.message, established: false });
    });
    ws.on('close', (code, reason) => this._onDown(conn, { code, reason: reason.toString(), established: conn.welcomed }));
    ws.on('message', (data, isBinary) => {
      if (conn.down || this.conn !== conn) return;
      let frame;
      try {
        frame = JSON.parse(isBinary ? Buffer.from(data).toString('utf8') : data.toString());
      } catch {
        this.errors.push(`bad frame: ${data.toString().slice(0, 100)}`);
        return;
      }
      this._onFrame(conn, frame);
    });
    if (this._paused) ws.once('open', () => ws._socket?.pause());
  }

  _onDown(conn, { code, reason = '', established, httpStatus }) {
    if (conn.down) return;
    conn.down = true;
    clearTimeout(conn.welcomeTimer);
    try {
      conn.ws.terminate();
    } catch {
      /* already gone */
    }
    const err = new ConnectionDown(`${this.name}: connection ${conn.id} down (${code} ${reason})`);
    for (const p of conn.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    conn.pending.clear();
    if (this.conn !== conn) return;
    for (const e of this.open) {
      if (e.state === 'inflight' && e.conn === conn) {
        e.state = 'queued';
        e.conn = null;
      }
    }
    for (const r of this.rooms.values()) {
      if (r.joinedConn === conn) r.joinedConn = null;
      r.syncing = null; // a sync on the dead connection ends with its requests
      r.buffer = []; // the next resume starts from lastShown anyway
    }
    if (this.stopped || this.state === 'failed') return;
    if (this.offline) {
      if (established && this.downSince === null) this.downSince = Date.now();
      this.state = 'offline';
      return;
    }
    if (established) {
      this.stats.closeCodes.push(code);
      if (this.downSince === null) this.downSince = Date.now();
      this.log(`${this.name}: connection to ${this.urls[conn.urlIndex]} closed (${code} ${reason})`);
      if (FATAL_CODES.has(code)) {
        this.state = 'failed';
        this.errors.push(`closed with ${code}: not reconnecting`);
        return;
      }
      if (GONE_CODES.has(code)) this.urlIndex = (conn.urlIndex + 1) % this.urls.length;
    } else {
      this.stats.connectFailures += 1;
      if (httpStatus === 401) {
        this.state = 'failed';
        this.errors.push('upgrade refused with 401');
        this._firstWelcome?.reject(new Error(`${this.name}: upgrade refused with 401`));
        return;
      }
      this.urlIndex = (conn.urlIndex + 1) % this.urls.length;
    }
    this.tries += 1;
    if (this.tries > this.maxTries) {
      this.state = 'failed';
      this._firstWelcome?.reject(new Error(`${this.name}: gave up after ${this.maxTries} tries`));
      return;
    }
    this.state = 'reconnecting';
    const base = this.backoffMs[Math.min(this.tries - 1, this.backoffMs.length - 1)];
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this._connect(), delay);
  }

  async _onWelcome(conn, welcome) {
    conn.welcomed = true;
    clearTimeout(conn.welcomeTimer);
    this.welcome = welcome;
    this.state = 'connected';
    this.stats.gateways.push(conn.urlIndex);
    const reconnect = this.downSince !== null;
    if (reconnect) this.stats.reconnects += 1;
    this._firstWelcome?.resolve(welcome);
    // Resume every room, then let the outbox go.
    const rooms = [...this.rooms.values()].filter((r) => r.lastShown !== null);
    await Promise.all(rooms.map((r) => this._syncRoomUntilDone(conn, r)));
    if (conn.down || this.conn !== conn) return;
    // Only a connection that got as far as resuming every room resets the backoff: one that is closed
    // right after welcome again and again (e.g. 1013 during the replay) must not reconnect in a tight loop.
    this.tries = 0;
    if (reconnect && this.downSince !== null) {
      this.stats.resumeTimesMs.push(Date.now() - this.downSince);
      this.downSince = null;
    }
    this._pump();
  }

  // ---- requests ----------------------------------------------------------------------------------

  _request(conn, body, timeoutMs = this.requestTimeoutMs) {
    return new Promise((resolve, reject) => {
      if (conn.down || conn.ws.readyState !== WebSocket.OPEN) {
        reject(new ConnectionDown(`${this.name}: not connected`));
        return;
      }
      const ref = conn.nextRef++;
      const timer = setTimeout(() => {
        conn.pending.delete(ref);
        const err = new Error(`${this.name}: no reply to ${JSON.stringify(body).slice(0, 120)} within ${timeoutMs} ms`);
        err.timeout = true;
        reject(err);
      }, timeoutMs);
      conn.pending.set(ref, { resolve, reject, timer });
      conn.ws.send(JSON.stringify({ ref, ...body }));
    });
  }

  _onFrame(conn, frame) {
    if (frame.welcome && !conn.welcomed) {
      this._onWelcome(conn, frame.welcome).catch((err) => this.errors.push(`after welcome: ${err.message}`));
      return;
    }
    if (frame.ref !== undefined) {
      const ref = Number(frame.ref);
      const entry = conn.sends.get(ref);
      if (entry) {
        conn.sends.delete(ref);
        const p = conn.pending.get(ref);
        if (p) {
          clearTimeout(p.timer);
          conn.pending.delete(ref);
        }
        this._onSendReply(conn, entry, frame, ref);
        return;
      }
      const p = conn.pending.get(ref);
      if (p) {
        clearTimeout(p.timer);
        conn.pending.delete(ref);
        p.resolve(frame);
        return;
      }
    }
    if (frame.message) {
      this._onMessage(conn, frame.message, 'live');
      return;
    }
    if (frame.error && frame.ref === undefined) this.errors.push(`error frame: ${JSON.stringify(frame.error)}`);
    // typing, presence, read, late replies: not needed here
  }

  // ---- rooms: showing messages exactly once, in order ---------------------------------------------

  _show(r, m, via) {
    const seq = Number(m.seq);
    r.lastShown = seq;
    const item = { seq, id: m.id, clientId: m.clientId, from: m.from, text: m.text, at: Date.now(), via };
    r.shown.push(item);
    this.stats.delivered += 1;
    if (via === 'history') this.stats.historyFilled += 1;
    this.emit('show', r.room, item);
  }

  /** Shows from the buffer what continues lastShown; returns true when something is still held. */
  _drain(r) {
    r.buffer.sort((a, b) => a.seq - b.seq);
    while (r.buffer.length > 0) {
      const head = r.buffer[0];
      if (head.seq <= r.lastShown) {
        r.buffer.shift();
        if (!head.silent) this.stats.duplicatesDropped += 1;
      } else if (head.seq === r.lastShown + 1) {
        r.buffer.shift();
        this._show(r, head.m, head.via);
      } else {
        return true;
      }
    }
    return false;
  }

  _onMessage(conn, m, via) {
    const r = this.rooms.get(m.room);
    if (!r) return;
    const seq = Number(m.seq);
    if (r.lastShown === null || r.syncing || r.joinedConn !== conn) {
      // Before the first join answered, or during a resume/join/gap fill: sorted out when it ends.
      r.buffer.push({ seq, m, via: r.syncing && r.joinedConn !== conn ? 'replay' : via });
      return;
    }
    if (seq <= r.lastShown) {
      this.stats.duplicatesDropped += 1;
      return;
    }
    if (seq === r.lastShown + 1) {
      this._show(r, m, via);
      return;
    }
    // Ahead of a gap: the server promises this never happens. Hold it and fill the gap from history.
    this.stats.gapsSeen += 1;
    const gap = { room: r.room, expected: r.lastShown + 1, got: seq, at: Date.now(), conn: conn.id };
    r.gaps.push(gap);
    this.errors.push(`gap in ${r.room}: expected seq ${gap.expected}, got ${seq}`);
    r.buffer.push({ seq, m, via });
    this._fillGap(conn, r, seq - 1);
  }

  async _fillGap(conn, r, upto) {
    const tok = Symbol('gap fill');
    r.syncing = tok;
    try {
      await this._catchUp(conn, r, upto);
    } catch (err) {
      if (!(err instanceof ConnectionDown)) this.errors.push(`gap fill in ${r.room}: ${err.message}`);
      // A failed fill on a live connection: resume from what is shown (it re-replays the rest).
      if (r.joinedConn === conn && !conn.down) r.joinedConn = null;
    } finally {
      if (r.syncing === tok) r.syncing = null;
      if (r.joinedConn === conn && !conn.down) this._drain(r);
      else if (!conn.down && this.conn === conn) this._syncRoomUntilDone(conn, r).then(() => this._pump());
    }
  }

  /** Shows everything up to `upto` (and what is buffered), fetching what is missing with history. */
  async _catchUp(conn, r, upto) {
    let stuck = 0;
    for (;;) {
      this._drain(r);
      const from = r.lastShown + 1;
      const to = r.buffer.length > 0 ? r.buffer[0].seq - 1 : upto;
      if (to < from) return;
      const reply = await this._request(conn, { history: { room: r.room, beforeSeq: String(to + 1), limit: this.historyPage } });
      if (reply.error) {
        if (reply.error.code === 'unavailable' || reply.error.code === 'internal') {
          await sleep(this._backoff(stuck++));
          continue;
        }
        throw new Error(`history ${r.room} before ${to + 1}: ${JSON.stringify(reply.error)}`);
      }
      const msgs = (reply.history?.messages ?? []).filter((m) => Number(m.seq) >= from && Number(m.seq) <= to);
      if (msgs.length === 0) {
        // Committed (the server said so) yet not in history: retry a few times, then record the hole.
        if (++stuck > 5) {
          this.errors.push(`history has no seq ${from}..${to} in ${r.room}; skipping them`);
          r.lastShown = to;
          continue;
        }
        await sleep(this._backoff(stuck));
        continue;
      }
      stuck = 0;
      for (const m of msgs) r.buffer.push({ seq: Number(m.seq), m: { room: r.room, ...m }, via: 'history' });
    }
  }

  _backoff(n) {
    const base = this.backoffMs[Math.min(n, this.backoffMs.length - 1)];
    return Math.round(base / 2 + (Math.random() * base) / 2);
  }

  /** _syncRoom until it succeeds or this connection is gone. */
  async _syncRoomUntilDone(conn, r) {
    for (let n = 0; !conn.down && this.conn === conn && r.joinedConn !== conn && this.state !== 'failed'; n++) {
      if (r.syncing) {
        await sleep(50);
        continue;
      }
      const ok = await this._syncRoom(conn, r);
      if (!ok && !conn.down) await sleep(this._backoff(n));
    }
  }

  /**
   * Joins (first time) or resumes `r` on `conn`. Returns true when the room is joined on conn and
   * everything up to the room's lastSeq at that moment is shown.
   */
  async _syncRoom(conn, r) {
    if (r.syncing) return false;
    const tok = Symbol('sync');
    r.syncing = tok;
    r.buffer = [];
    const first = r.lastShown === null;
    const t0 = Date.now();
    try {
      if (first) {
        const reply = await this._request(conn, { join: { room: r.room } });
        if (reply.error) return this._syncError(r, 'join', reply.error);
        const last = Number(reply.joined.lastSeq ?? 0);
        r.base = last;
        r.lastShown = last;
        for (const b of r.buffer) if (b.seq <= last) b.silent = true; // from before our join point
        r.joinedConn = conn;
        return true;
      }
      const useResume = this.resumeSupported !== false;
      if (useResume) {
        const afterSeq = r.lastShown;
        const reply = await this._request(conn, { resume: { room: r.room, afterSeq: String(afterSeq) } });
        if (reply.error) {
          if (reply.error.code === 'bad_request' && /not supported/i.test(reply.error.message ?? '')) {
            if (this.resumeMode === 'auto') {
              this.resumeSupported = false;
              this.log(`${this.name}: gateway has no resume (${reply.error.message}); using join + history`);
              return false; // the caller retries, now with the fallback
            }
            this.state = 'failed';
            this.errors.push(`resume refused: ${JSON.stringify(reply.error)} (resumeMode 'resume'; 'auto' would fall back to join + history)`);
            return false;
          }
          return this._syncError(r, 'resume', reply.error);
        }
        this.resumeSupported = true;
        const res = reply.resumed;
        this.stats.resumes += 1;
        this.stats.resumeRttMs.push(Date.now() - t0);
        const replayed = Number(res.replayed ?? 0);
        this.stats.replayed += replayed;
        if (res.truncated) this.stats.truncatedResumes += 1;
        r.buffer.sort((a, b) => a.seq - b.seq);
        const firstSeq = r.buffer.length > 0 ? r.buffer[0].seq : null;
        const lastSeq = Number(res.lastSeq ?? 0);
        this.stats.resumeLog.push({
          room: r.room,
          afterSeq,
          lastSeq,
          replayed,
          truncated: Boolean(res.truncated),
          received: r.buffer.length,
          firstReplayed: firstSeq,
          lastReplayed: r.buffer.length > 0 ? r.buffer.at(-1).seq : null,
          rttMs: Date.now() - t0,
        });
        if (!res.truncated && lastSeq > afterSeq && firstSeq !== afterSeq + 1) {
          this.stats.resumeGaps += 1;
          this.errors.push(`resume ${r.room} after ${afterSeq}: replay starts at ${firstSeq} (lastSeq ${lastSeq}, replayed ${replayed})`);
        }
        if (r.buffer.length !== replayed) {
          // The protocol: the replayed frames, then `resumed` counting them, then live frames.
          this.stats.replayMismatches = (this.stats.replayMismatches ?? 0) + 1;
          this.errors.push(`resume ${r.room} after ${afterSeq}: ${r.buffer.length} message frames before 'resumed', which says replayed ${replayed}`);
        }
        if (r.buffer.length > 0 && r.buffer.at(-1).seq > lastSeq) {
          // Not a loss: messages committed while the replay was read came along. Noted for the report.
          this.stats.replayPastLastSeq = (this.stats.replayPastLastSeq ?? 0) + 1;
        }
        r.joinedConn = conn;
        await this._catchUp(conn, r, lastSeq);
        return true;
      }
      // Fallback for a gateway without resume: join, then history for what was missed.
      this.stats.fallbackSyncs += 1;
      const reply = await this._request(conn, { join: { room: r.room } });
      if (reply.error) return this._syncError(r, 'join', reply.error);
      this.stats.resumeRttMs.push(Date.now() - t0);
      r.joinedConn = conn;
      await this._catchUp(conn, r, Number(reply.joined.lastSeq ?? 0));
      return true;
    } catch (err) {
      if (!(err instanceof ConnectionDown)) this.errors.push(`sync ${r.room}: ${err.message}`);
      if (r.joinedConn === conn && !conn.down && !err.timeout) return true;
      if (r.joinedConn === conn) r.joinedConn = null;
      return false;
    } finally {
      if (r.syncing === tok) r.syncing = null;
      if (r.joinedConn === conn && !conn.down) {
        this._drain(r);
        this._pump();
      }
    }
  }

  _syncError(r, what, error) {
    if (error.code === 'unavailable') this.stats.unavailable += 1;
    else if (error.code === 'internal') this.stats.otherErrors += 1;
    else this.errors.push(`${what} ${r.room}: ${JSON.stringify(error)}`);
    return false; // the caller retries with backoff
  }

  // ---- outbox ------------------------------------------------------------------------------------

  _pump() {
    clearTimeout(this.pumpTimer);
    this.pumpTimer = null;
    const conn = this.conn;
    if (this.stopped || !conn || !conn.welcomed || conn.down) return;
    let inflight = 0;
    for (const e of this.open) if (e.state === 'inflight' && e.conn === conn) inflight += 1;
    const now = Date.now();
    let wakeAt = Infinity;
    for (const e of this.open) {
      if (inflight >= this.window) break;
      if (e.state !== 'queued') continue;
      const r = this.rooms.get(e.room);
      if (r.joinedConn !== conn) continue;
      if (e.notBefore > now) {
        wakeAt = Math.min(wakeAt, e.notBefore);
        continue;
      }
      this._transmit(conn, e);
      inflight += 1;
    }
    if (wakeAt !== Infinity) this.pumpTimer = setTimeout(() => this._pump(), Math.max(1, wakeAt - now));
  }

  _transmit(conn, e) {
    const ref = conn.nextRef++;
    e.state = 'inflight';
    e.conn = conn;
    e.attempts += 1;
    if (e.firstSentAt === null) e.firstSentAt = Date.now();
    this.stats.transmissions += 1;
    if (e.attempts > 1) this.stats.resends += 1;
    e.ref = ref;
    conn.sends.set(ref, e);
    const timer = setTimeout(() => {
      // No reply: retransmit (same clientId). A late ack for this ref still counts (conn.sends keeps it).
      conn.pending.delete(ref);
      if (e.state === 'inflight' && e.conn === conn && e.ref === ref) {
        this.stats.timeouts += 1;
        e.state = 'queued';
        e.conn = null;
        this._pump();
      }
    }, this.requestTimeoutMs);
    conn.pending.set(ref, { resolve: () => {}, reject: () => {}, timer });
    conn.ws.send(JSON.stringify({ ref, send: { room: e.room, clientId: e.clientId, text: e.text } }));
  }

  _onSendReply(conn, e, frame, ref) {
    if (frame.ack) {
      if (e.state !== 'acked') {
        this.open.delete(e);
        e.state = 'acked';
        e.ack = frame.ack;
        e.ackedAt = Date.now();
        e.conn = null;
        this.stats.acked += 1;
        if (frame.ack.duplicate) this.stats.duplicateAcks += 1;
        e.resolve(frame.ack);
      } else if (String(frame.ack.seq) !== String(e.ack.seq)) {
        this.errors.push(`two acks for ${e.clientId} with different seqs: ${e.ack.seq} and ${frame.ack.seq}`);
      }
      this._pump();
      return;
    }
    if (e.state === 'acked' || e.state === 'failed') return;
    // A stale error (an earlier transmission that had timed out): the entry is queued or in flight again.
    if (e.ref !== ref || e.conn !== conn || e.state !== 'inflight') return;
    const code = frame.error?.code;
    e.state = 'queued';
    e.conn = null;
    if (code === 'unavailable' || code === 'internal') {
      if (code === 'unavailable') this.stats.unavailable += 1;
      else this.stats.otherErrors += 1;
      e.notBefore = Date.now() + this._backoff(e.failures++);
    } else if (code === 'rate_limited') {
      this.stats.rateLimited += 1;
      e.notBefore = Date.now() + Math.max(Number(frame.error.retryAfterMs || 0), 20);
    } else if (code === 'forbidden') {
      // Not joined on this connection (yet): retry once the room is resumed.
      this.stats.forbidden += 1;
      e.notBefore = Date.now() + this._backoff(e.failures++);
    } else {
      this.stats.otherErrors += 1;
      e.state = 'failed';
      this.open.delete(e);
      this.errors.push(`send ${e.clientId}: ${JSON.stringify(frame.error ?? frame)}`);
      e.reject(new Error(`${this.name}: send ${e.clientId} failed: ${JSON.stringify(frame.error ?? frame)}`));
    }
    this._pump();
  }
}
