// A small client for the chat gateway's protocol v1 (JSON over WebSocket). No dependencies.
// Tracks the last seq per room, drops duplicates by seq, reconnects with backoff 1, 2, 4, 8, 16 s
// (jittered), then gives up with state "failed" until retry().

const BACKOFF_S = [1, 2, 4, 8, 16];

export class ChatClient extends EventTarget {
  constructor({ url, token }) {
    super();
    this.url = url;
    this.token = token;
    this.state = 'disconnected';
    this.ref = 0;
    this.pending = new Map(); // ref -> {resolve, reject}
    this.lastSeq = new Map(); // room -> last seq shown
    this.rooms = new Set();
    this.tries = 0;
    this.ws = null;
  }

  connect() {
    this.#setState(this.tries === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(`${this.url}?token=${encodeURIComponent(this.token)}`);
    this.ws = ws;
    ws.onopen = () => { this.tries = 0; };
    ws.onmessage = (ev) => this.#onFrame(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      for (const p of this.pending.values()) p.reject(new Error('connection closed'));
      this.pending.clear();
      if (ev.code === 4001 || ev.code === 4003) return this.#setState('failed', { code: ev.code });
      this.#scheduleReconnect();
    };
  }

  retry() { this.tries = 0; this.connect(); }

  request(body) {
    const ref = ++this.ref;
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return reject(new Error('not connected'));
      this.pending.set(ref, { resolve, reject });
      this.ws.send(JSON.stringify({ ref, ...body }));
    });
  }

  async join(room) {
    const r = await this.request({ join: { room } });
    this.rooms.add(room);
    return r.joined;
  }

  send(room, text, clientId = crypto.randomUUID()) {
    return this.request({ send: { room, clientId, text } }).then((r) => r.ack);
  }

  history(room, beforeSeq = 0, limit = 50) {
    return this.request({ history: { room, beforeSeq: String(beforeSeq), limit } }).then((r) => r.history);
  }

  // True when the message is new for this client (not a duplicate by seq).
  accept(msg) {
    const seq = Number(msg.seq);
    const last = this.lastSeq.get(msg.room) ?? 0;
    if (seq <= last) return false;
    this.lastSeq.set(msg.room, seq);
    return true;
  }

  #onFrame(f) {
    if (f.ref !== undefined && this.pending.has(f.ref)) {
      const p = this.pending.get(f.ref);
      this.pending.delete(f.ref);
      if (f.error) p.reject(Object.assign(new Error(f.error.message), f.error));
      else p.resolve(f);
      return;
    }
    if (f.welcome) {
      this.#setState('connected', f.welcome);
      for (const room of this.rooms) this.join(room).catch(() => {});
    } else if (f.message) {
      if (this.accept(f.message)) this.dispatchEvent(new CustomEvent('message', { detail: f.message }));
    } else if (f.error) {
      this.dispatchEvent(new CustomEvent('error', { detail: f.error }));
    }
  }

  #scheduleReconnect() {
    if (this.tries >= BACKOFF_S.length) return this.#setState('failed');
    const base = BACKOFF_S[this.tries++] * 1000;
    const delay = base / 2 + Math.random() * base / 2;
    this.#setState('reconnecting', { retryInMs: delay });
    setTimeout(() => this.connect(), delay);
  }

  #setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, ...detail } }));
  }
}
