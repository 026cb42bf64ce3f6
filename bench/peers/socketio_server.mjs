// Benchmark peer: Socket.IO 4 with the Redis adapter and a Postgres insert before each broadcast, the
// architecture of the Socket.IO seed. Several copies on different ports sharing one Redis and one
// Postgres are the scale-out scenario: the Redis adapter carries each broadcast to the other replicas.
//
// Events (wire frames in README.md):
//   join  (room, ack)                 -> socket.join(room); ack({room, lastSeq: 0})
//   send  ({room, clientId, text}, ack) -> INSERT (persist before broadcast), then
//         io.to(room).emit('message', {room, seq, id, clientId, from, text, ts}), then ack({room, seq, id, ts});
//         a repeated (from, clientId) acks the first message with duplicate: true and broadcasts nothing.
// Failures ack {error: {code, message}}.
//
//   REDIS_ADDR=127.0.0.1:6379 DATABASE_URL=postgresql://... [PG_POOL=10] node socketio_server.mjs --port 9002
// Optional SIO_PING_INTERVAL_MS / SIO_PING_TIMEOUT_MS override Engine.IO's 25000 / 20000 (the smoke test
// uses short ones to see a ping). Prints "listening <port>" once Postgres, Redis and the port are ready.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import pg from 'pg';
import { HOST, exitOnSignal, portFromArgs, serveHealthz, subFromToken } from './common.mjs';

const need = (name) => process.env[name] || (console.error(`${name} is not set`), process.exit(2));

// seq is a global bigserial, not per room: the seed app does not keep per-room counters. pg returns
// bigint as a string, which is also how our protocol writes int64.
const kCreateTable = `CREATE TABLE IF NOT EXISTS messages (
  id uuid PRIMARY KEY, room text NOT NULL, seq bigserial, sender text, client_id text, body text,
  created_at timestamptz DEFAULT now(), UNIQUE (sender, client_id))`;
const kInsert = `INSERT INTO messages (id, room, sender, client_id, body) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (sender, client_id) DO NOTHING RETURNING seq, created_at`;
const kSelectExisting = 'SELECT id, room, seq, created_at FROM messages WHERE sender = $1 AND client_id = $2';

const pool = new pg.Pool({ connectionString: need('DATABASE_URL'), max: Number(process.env.PG_POOL || 10) });
pool.on('error', (err) => console.error('postgres idle client error:', err.message));

async function createSchema() {
  try {
    await pool.query(kCreateTable);
  } catch (err) {
    // Replicas starting together race on IF NOT EXISTS: the loser fails on the catalog's unique index
    // (23505) or with duplicate_table (42P07) once the winner committed. Either way the table exists.
    if (err.code !== '23505' && err.code !== '42P07') throw err;
  }
}

const nonEmpty = (v) => typeof v === 'string' && v !== '';
const noAck = () => {};

async function main() {
  await createSchema();

  // node-redis pub/sub: a subscribed connection cannot publish, so the adapter needs two.
  const pub = createClient({ url: `redis://${need('REDIS_ADDR')}` });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (err) => console.error('redis error:', err.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer((req, res) => {
    // Socket.IO takes /socket.io/ requests before this handler sees them.
    if (!serveHealthz(req, res)) res.writeHead(404).end();
  });
  const io = new Server(httpServer, {
    transports: ['websocket', 'polling'],
    perMessageDeflate: false, // as for the other peers: no per-frame compression cost
    httpCompression: false,
    serveClient: false,
    adapter: createAdapter(pub, sub),
    ...(process.env.SIO_PING_INTERVAL_MS && { pingInterval: Number(process.env.SIO_PING_INTERVAL_MS) }),
    ...(process.env.SIO_PING_TIMEOUT_MS && { pingTimeout: Number(process.env.SIO_PING_TIMEOUT_MS) }),
  });

  io.on('connection', (socket) => {
    const from = subFromToken(socket.handshake.auth?.token) ?? subFromToken(socket.handshake.query?.token) ?? socket.id;

    // A listener that throws would take the process down, so a non-function "ack" (extra arguments
    // from a sloppy client) is replaced, not called.
    socket.on('join', (arg, ack) => {
      if (typeof ack !== 'function') ack = noAck;
      const room = typeof arg === 'string' ? arg : arg?.room; // "r1" as documented; {room} tolerated
      if (!nonEmpty(room)) return ack({ error: { code: 'bad_request', message: 'join needs a room' } });
      socket.join(room);
      ack({ room, lastSeq: 0 });
    });

    socket.on('send', async (msg, ack) => {
      if (typeof ack !== 'function') ack = noAck;
      const { room, clientId, text } = msg ?? {};
      if (!nonEmpty(room) || !nonEmpty(clientId) || typeof text !== 'string') {
        return ack({ error: { code: 'bad_request', message: 'send needs room, clientId and text strings' } });
      }
      try {
        const id = randomUUID();
        const inserted = await pool.query(kInsert, [id, room, from, clientId, text]);
        if (inserted.rowCount === 0) {
          // Same (sender, clientId) as an earlier send: give back the first message, broadcast nothing.
          const { rows: [first] } = await pool.query(kSelectExisting, [from, clientId]);
          return ack({ room: first.room, seq: first.seq, id: first.id, ts: first.created_at.toISOString(), duplicate: true });
        }
        const { seq, created_at: createdAt } = inserted.rows[0];
        const ts = createdAt.toISOString();
        // Committed (autocommit) before this line: persist before broadcast.
        io.to(room).emit('message', { room, seq, id, clientId, from, text, ts });
        ack({ room, seq, id, ts });
      } catch (err) {
        ack({ error: { code: 'internal', message: err.message } });
      }
    });
  });

  await new Promise((resolve) => httpServer.listen(portFromArgs(), HOST, resolve));
  console.log(`listening ${httpServer.address().port}`);

  // The Redis adapter may still issue a command while its clients quit; at shutdown that is no error.
  // (@redis/client's ClientClosedError keeps Error's `name`: match its class.)
  let stopping = false;
  process.on('unhandledRejection', (err) => {
    if (stopping && err?.constructor?.name === 'ClientClosedError') return;
    throw err;
  });
  exitOnSignal(async () => {
    stopping = true;
    await new Promise((resolve) => io.close(() => resolve())); // closes sockets, adapter, http server
    await Promise.allSettled([pub.quit(), sub.quit()]);
    await pool.end();
  });
}

main().catch((err) => {
  console.error('socketio_server:', err);
  process.exit(1);
});
