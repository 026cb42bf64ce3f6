// Benchmark peer: a Node `ws` broadcast server, the architecture of the seed tutorials. One process,
// rooms and seq counters in memory, no persistence, no auth check. It speaks the subset of our client
// protocol (DESIGN.md, "Client protocol v1") that the load generator uses, so the same generator drives
// it and our gateway:
//
//   {"ref":N,"join":{"room":"r"}}                         -> {"ref":N,"joined":{"room":"r","lastSeq":"<n>"}}
//   {"ref":N,"send":{"room":"r","clientId":"c","text":"t"}} -> {"ref":N,"ack":{"room","seq","id","ts"}} to the
//        sender, then {"message":{"room","seq","id","clientId","from","text","ts"}} to every member of r
//   {"ref":N,"ping":{}}                                    -> {"ref":N,"pong":{}}
//   anything else                                          -> {"ref":N,"error":{"code":"bad_request",...}}
//
// Unlike the gateway it sends no `welcome` on connect. `from` is the token's `sub` (not verified) or
// `u<connection number>`.
//
//   node ws_server.mjs --port 9001      (or PORT=9001; port 0 = any free port; prints "listening <port>")
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, WebSocket } from 'ws';
import { HOST, exitOnSignal, portFromArgs, serveHealthz, subFromToken } from './common.mjs';

/** room name -> { seq: last assigned seq, members: Set<WebSocket> } */
const rooms = new Map();
let connections = 0;

function roomOf(name) {
  let room = rooms.get(name);
  if (!room) rooms.set(name, (room = { seq: 0, members: new Set() }));
  return room;
}

/** Parses a text frame into an object, or returns null (binary, not JSON, not an object). */
function parse(data, isBinary) {
  if (isBinary) return null;
  try {
    const frame = JSON.parse(data.toString('utf8'));
    return frame !== null && typeof frame === 'object' && !Array.isArray(frame) ? frame : null;
  } catch {
    return null;
  }
}

const nonEmpty = (v) => typeof v === 'string' && v !== '';
const badRequest = (message) => ({ error: { code: 'bad_request', message } });

/** Handles one client frame of `conn`; `reply(body)` answers it (adding the frame's ref). */
function handle(conn, frame, reply) {
  // Exactly one of the known bodies; other fields are ignored, two bodies is an error (as on the gateway).
  const bodies = ['join', 'send', 'ping'].filter((k) => k in frame);
  if (bodies.length !== 1) return reply(badRequest('a frame needs exactly one body: join, send or ping'));
  if (bodies[0] === 'ping') return reply({ pong: {} });
  if (bodies[0] === 'join') {
    const { room: name } = frame.join ?? {};
    if (!nonEmpty(name)) return reply(badRequest('join.room must be a non-empty string'));
    const room = roomOf(name);
    room.members.add(conn.ws);
    conn.rooms.add(name);
    return reply({ joined: { room: name, lastSeq: String(room.seq) } });
  }
  const { room: name, clientId, text } = frame.send ?? {};
  if (!nonEmpty(name) || !nonEmpty(clientId) || typeof text !== 'string') {
    return reply(badRequest('send needs room, clientId and text strings'));
  }
  const room = roomOf(name);
  const seq = String(++room.seq);
  const id = randomUUID();
  const ts = new Date().toISOString();
  // Ack first, then the broadcast: the order the gateway uses (the sender's own message comes back
  // through the room like everyone else's).
  reply({ ack: { room: name, seq, id, ts } });
  // Serialize and UTF-8 encode once, then queue the same bytes on every member: that is what a
  // well-written Node broadcast server does. (A string passed to ws.send is re-encoded per socket;
  // a Buffer with binary: false still goes out as a text frame.)
  const bytes = Buffer.from(JSON.stringify({ message: { room: name, seq, id, clientId, from: conn.user, text, ts } }));
  for (const member of room.members) {
    if (member.readyState === WebSocket.OPEN) member.send(bytes, { binary: false });
  }
}

function onConnection(ws, url) {
  const n = ++connections;
  const conn = { ws, user: subFromToken(url.searchParams.get('token')) ?? `u${n}`, rooms: new Set() };
  ws.on('message', (data, isBinary) => {
    const frame = parse(data, isBinary);
    const ref = typeof frame?.ref === 'number' ? frame.ref : undefined;
    const reply = (body) => ws.send(JSON.stringify(ref === undefined ? body : { ref, ...body }));
    if (!frame) reply(badRequest('expected a JSON object in a text frame'));
    else handle(conn, frame, reply);
  });
  ws.on('close', () => {
    for (const name of conn.rooms) rooms.get(name)?.members.delete(ws);
  });
  ws.on('error', () => {}); // a 'close' follows; nothing to add
  // The gateway greets every connection first; so does this peer, so clients wait for the same frame.
  ws.send(JSON.stringify({ welcome: { user: conn.user, connectionId: `c${n}`, heartbeatSeconds: 15 } }));
}

const server = http.createServer((req, res) => {
  if (!serveHealthz(req, res)) res.writeHead(404).end();
});
// perMessageDeflate off: compression costs CPU per frame and the gateway does not compress either.
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, url));
});

server.listen(portFromArgs(), HOST, () => console.log(`listening ${server.address().port}`));

exitOnSignal(async () => {
  server.close();
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  // Give clients a moment to answer the close frame, then cut the rest.
  for (let waited = 0; wss.clients.size > 0 && waited < 1000; waited += 20) {
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const ws of wss.clients) ws.terminate();
});
