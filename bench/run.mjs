#!/usr/bin/env node
// The benchmark harness of issue #8: our chat stack against the two peers of bench/peers (a Node `ws`
// broadcast server and Socket.IO 4 + Redis adapter + Postgres), driven by the C++ load generator
// (bench/loadgen, built as build/release/bin/chat-loadgen), one system at a time on the same machine.
//
//   node bench/run.mjs [--quick] [--only 1,3] [--systems ours,ws,sio] [--out bench/results/FILE.md]
//
// Scenarios (bench/README.md explains them and how to read the tables):
//   1 latency         1000 connections in 10 rooms of 100, 1000 msg/s: delivery latency percentiles
//   2 max throughput  the same, the rate doubled step by step until p99 > 50 ms, >1 % lost or errors
//   3 idle            19,000 idle authenticated connections: connect time, server RSS per connection
//   4 persistence     many senders, rate stepped up: acked (= committed) messages/s, ack p99, batch sizes
//   5 cross-replica   two replicas with Redis between them; senders on A, latency to receivers on B
//
// Prints one table per scenario (a row per system plus ours÷peer ratio rows) and writes them with the
// machine's description, the goals of issue #8 (met / not met) and the raw loadgen JSON reports to
// bench/results/<date>-<host>.md. Not part of the test command: figures, never assertions.
//
// Every process it starts (our stack, the peers, their PostgreSQL + Redis, the load generator) is
// stopped on exit, also on Ctrl-C or a failure.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStack } from '../tests/e2e/lib/stack.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH, '..');
const BIN = path.join(REPO, 'build', 'release', 'bin');
// CHAT_LOADGEN overrides the load generator binary (e.g. a private build); the servers always come from BIN.
const LOADGEN = path.resolve(process.env.CHAT_LOADGEN || path.join(BIN, 'chat-loadgen'));
const PEERS = path.join(BENCH, 'peers');
const SERVERS_SH = path.join(REPO, 'tests', 'support', 'servers.sh');
const CLK_TCK = 100; // Linux USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on every mainstream kernel

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(...a);

// ---- options --------------------------------------------------------------------------------------

const USAGE = `usage: node bench/run.mjs [options]
  --quick                 small sizes (200 connections, 2 s steps, 2000 idle): checks the plumbing
  --only 1,3              scenarios to run (default 1,2,3,4,5)
  --systems ours,ws,sio   systems to run (default all: ours, ours-1t, ours-delay, ws, sio); ours-1t is
                          ours with GATEWAY_THREADS=1 (scenarios 1 to 4), ours-delay is ours with
                          WS_WRITE_DELAY_MS=20 (scenarios 1 and 2)
  --out FILE              markdown results (default bench/results/<YYYY-MM-DD>-<hostname>[-quick].md)
  --gateway-threads N     GATEWAY_THREADS of ours and ours-delay (default 0, the product's default:
                          one io thread per core)
  --room-presence-events  ours: presence frames to the room on every join (off by default here, as the
                          peers have none)
  --loadgen-threads N     io threads of the load generator (default 1)
  --connect-concurrency N connects in flight (default 500)
  --senders-per-room N    senders in each room of 100 in scenarios 1, 2 and 5 (default 10)
  --verbose               pass the load generator's progress through`;

function parseArgs(argv) {
  const o = {
    quick: false,
    only: [1, 2, 3, 4, 5],
    systems: ['ours', 'ours-1t', 'ours-delay', 'ws', 'sio'],
    out: null,
    gatewayThreads: 0,
    roomPresenceEvents: false,
    loadgenThreads: 1,
    connectConcurrency: 500,
    sendersPerRoom: 10,
    verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    let [name, value] = argv[i].split(/=(.*)/s, 2);
    const next = () => value ?? argv[++i] ?? (log(`${name} needs a value\n${USAGE}`), process.exit(2));
    const int = () => {
      const n = Number(next());
      if (!Number.isInteger(n) || n < 0) (log(`${name}: not a count\n${USAGE}`), process.exit(2));
      return n;
    };
    switch (name) {
      case '--quick': o.quick = true; break;
      case '--verbose': o.verbose = true; break;
      case '--only': o.only = next().split(',').map(Number); break;
      case '--systems': o.systems = next().split(','); break;
      case '--out': o.out = next(); break;
      case '--gateway-threads': o.gatewayThreads = int(); break;
      case '--room-presence-events': o.roomPresenceEvents = true; break;
      case '--loadgen-threads': o.loadgenThreads = Math.max(1, int()); break;
      case '--connect-concurrency': o.connectConcurrency = Math.max(1, int()); break;
      case '--senders-per-room': o.sendersPerRoom = Math.max(1, int()); break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: log(`unknown argument ${argv[i]}\n${USAGE}`); process.exit(2);
    }
  }
  if (o.only.some((s) => !SCENARIOS[s])) (log(`--only: scenarios are 1..5\n${USAGE}`), process.exit(2));
  if (o.systems.some((s) => !SYSTEMS[s])) (log(`--systems: ${Object.keys(SYSTEMS).join(', ')}\n${USAGE}`), process.exit(2));
  return o;
}

// The sizes of a full run and of --quick. The full sizes are issue #8's; quick only checks that every
// scenario runs for every system and the report comes out.
function sizes(quick) {
  const full = !quick;
  return {
    conns: full ? 1000 : 200, // scenarios 1, 2, 5: 10 rooms of conns/10
    rooms: 10,
    s1: { rate: 1000, warmup: full ? 2 : 1, duration: full ? 10 : 3 },
    // Doubling from 1000 msg/s, then `refine` bisection steps between the last good and the first bad
    // rate: doubling alone leaves ±50 % of slack, too coarse for a 2x goal.
    s2: { start: 1000, maxSteps: full ? 10 : 6, refine: full ? 2 : 1, warmup: 1, duration: full ? 5 : 2 },
    s3: { conns: full ? 19000 : 2000, idle: full ? 5 : 1 },
    // One connection per room: every message is delivered once (to its sender), so the figure is the
    // persistence path (send -> commit -> ack), not fan-out, which scenario 2 measures.
    s4: { conns: full ? 1000 : 200, start: full ? 5000 : 2000, maxSteps: full ? 8 : 4, warmup: 1, duration: full ? 5 : 2 },
    s5: { rate: 1000, warmup: full ? 2 : 1, duration: full ? 10 : 3 },
    settleMs: full ? 3000 : 1000, // after an overloaded step: let the server's queues drain
  };
}

// ---- cleanup: every child is killed on exit ---------------------------------------------------------

const liveChildren = new Set(); // ChildProcess objects (peers, load generator) still running
const exitHooks = []; // synchronous, run once on process exit
function track(child) {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}
process.once('exit', () => {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const h of exitHooks.splice(0)) {
    try {
      h();
    } catch {
      /* best effort */
    }
  }
});
// stack.mjs also hooks these signals (it tears its stacks down and exits); the 'exit' hook above then
// stops the rest. These handlers cover the time no stack exists.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    log(`\nbench: ${sig}, stopping everything`);
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  });
}

// ---- preflight ------------------------------------------------------------------------------------

function preflight(opts) {
  const missing = [LOADGEN, ...['chat-gateway', 'chat-messages', 'chat-presence'].map((b) => path.join(BIN, b))].filter(
    (b) => !fs.existsSync(b),
  );
  if (missing.length > 0) {
    log(`bench: ${missing.join(', ')} not found\nbuild them first:  bash scripts/build.sh release`);
    process.exit(1);
  }
  for (const w of staleBinaries()) log(`bench: WARNING: ${w}; rebuild with  bash scripts/build.sh release`);
  if (!fs.existsSync(path.join(PEERS, 'node_modules'))) {
    log('bench: installing the peers\' npm packages (npm ci --prefix bench/peers)');
    const r = spawnSync('npm', ['ci', '--prefix', PEERS], { stdio: 'inherit' });
    if (r.status !== 0) (log('bench: npm ci failed'), process.exit(1));
  }
  // The idle scenario's server and load generator each hold one descriptor per connection plus a few
  // dozen of their own (gRPC, Redis, PostgreSQL, logs).
  raiseFileLimit(sizes(opts.quick).s3.conns + 500);
}

/** Newest modification time (ms) of any file under the given repo folders. */
function newestSource(dirs) {
  let newest = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cc|cpp|h|hpp|proto)$/.test(e.name)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const d of dirs) if (fs.existsSync(path.join(REPO, d))) walk(path.join(REPO, d));
  return newest;
}

/**
 * Binaries older than their sources: the figures would not be those of the checked-out code (and a
 * half-rebuilt binary can even crash: objects compiled against different versions of a header).
 */
function staleBinaries() {
  const inputs = {
    [LOADGEN]: ['bench/loadgen'],
    [path.join(BIN, 'chat-gateway')]: ['services/gateway', 'services/common', 'proto'],
    [path.join(BIN, 'chat-messages')]: ['services/messages', 'services/common', 'proto'],
    [path.join(BIN, 'chat-presence')]: ['services/presence', 'services/common', 'proto'],
  };
  const out = [];
  for (const [bin, dirs] of Object.entries(inputs)) {
    if (fs.statSync(bin).mtimeMs < newestSource(dirs)) out.push(`${path.relative(REPO, bin)} is older than its sources (${dirs.join(', ')})`);
  }
  return out;
}

/** Soft and hard RLIMIT_NOFILE of process `pid`. */
function fileLimit(pid = process.pid) {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
  const n = (s) => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: n(m[1]), hard: n(m[2]) };
}

// Every server we start (gateway, Node peers) inherits this process's open-file limit, and a server
// holding 19,000 sockets needs more than the usual 1024 or 20000. Node cannot call setrlimit on
// itself, so prlimit(1) raises it from outside before any child is spawned; raising the hard limit
// needs root (CAP_SYS_RESOURCE), otherwise the user runs `ulimit -n 65536` first.
function raiseFileLimit(need) {
  const want = Math.max(need, 65536);
  let { soft, hard } = fileLimit();
  if (soft >= want) return;
  const target = hard >= want ? `${want}:` : `${want}:${want}`;
  spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}`], { stdio: 'ignore' });
  ({ soft, hard } = fileLimit());
  if (soft < need) {
    log(`bench: the open-file limit is ${soft}, the idle scenario needs ${need}; run  ulimit -n 65536  first`);
    process.exit(1);
  }
  if (soft < want) log(`bench: open-file limit ${soft} (wanted ${want})`);
}

/**
 * CPU busy % (of one core) of the whole machine over `ms`, before anything starts: the figures are
 * only comparable on an otherwise quiet machine (no build, no other benchmark).
 */
async function idleCpu(ms = 2000) {
  const a = machineCpu();
  await sleep(ms);
  const b = machineCpu();
  return { busy: (100 * (b.busy - a.busy)) / (ms / 1000), steal: (100 * (b.steal - a.steal)) / (ms / 1000) };
}

// ---- PostgreSQL + Redis for the peers ---------------------------------------------------------------

/** Starts the peers' own PostgreSQL + Redis (tests/support/servers.sh) in a temp dir; returns its env. */
function startPeerInfra() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-bench-'));
  fs.chmodSync(dir, 0o755);
  const serversDir = path.join(dir, 'servers');
  exitHooks.push(() => {
    spawnSync('bash', [SERVERS_SH, 'stop', serversDir], { stdio: 'ignore', timeout: 60_000 });
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const r = spawnSync('bash', [SERVERS_SH, 'start', serversDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error('tests/support/servers.sh start failed (see above)');
  const env = { dir };
  for (const line of fs.readFileSync(path.join(serversDir, 'env'), 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

/** Runs SQL as the superuser on the peers' PostgreSQL (the way infra.sh's pg_ensure_chat_db does). */
function peerPsql(infra, sql) {
  execFileSync(path.join(infra.PG_BIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1',
    '-p', infra.PG_PORT, '-U', 'postgres', '-d', 'postgres', '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A fresh database `sio` for the Socket.IO peer, dropped and created again for every start: its
 * `messages` table (a different schema) never meets ours, and each run starts with an empty table.
 */
function freshSioDatabase(infra) {
  peerPsql(infra, 'DROP DATABASE IF EXISTS sio');
  peerPsql(infra, 'CREATE DATABASE sio OWNER chat');
  return `postgresql://chat@127.0.0.1:${infra.PG_PORT}/sio`;
}

// ---- systems: one place to start and stop each ------------------------------------------------------

const SYSTEMS = {
  ours: { label: 'ours', what: 'chat-gateway + messages + presence, PostgreSQL, Redis', protocol: 'chat', persists: true },
  // The same gateway held to one io thread: each peer is one Node event loop, so this row compares
  // a core's worth of event loop with a core's worth; `ours` is what a user gets by default.
  'ours-1t': { label: 'ours, GATEWAY_THREADS=1', what: 'ours with one gateway io thread', protocol: 'chat', persists: true },
  // The same with an opt-in setting: room messages wait up to 20 ms so that several share a socket write.
  'ours-delay': { label: 'ours, WS_WRITE_DELAY_MS=20', what: 'ours with room messages held up to 20 ms per connection (opt-in)', protocol: 'chat', persists: true },
  ws: { label: 'ws peer', what: 'Node ws broadcast server, in memory', protocol: 'chat', persists: false },
  sio: { label: 'Socket.IO peer', what: 'Socket.IO 4 + Redis adapter + PostgreSQL insert', protocol: 'socketio', persists: true },
};

/** A Node peer server: spawned with --port 0; resolves once it printed "listening <port>". */
function startPeerProcess(script, env, logPath) {
  const logFd = fs.openSync(logPath, 'a');
  const child = track(spawn(process.execPath, [path.join(PEERS, script), '--port', '0'], {
    cwd: PEERS,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', logFd],
  }));
  fs.closeSync(logFd);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    let out = '';
    let listening = false;
    const timer = setTimeout(() => reject(new Error(`${script}: no "listening" line in 30 s (log ${logPath})`)), 30_000);
    child.stdout.on('data', (d) => {
      fs.appendFileSync(logPath, d);
      if (listening) return;
      out += d;
      const m = /^listening (\d+)$/m.exec(out);
      if (m) {
        listening = true;
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), exited, logPath, script });
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (code ${code}, signal ${signal}) before listening; log ${logPath}:\n${tailOf(logPath)}`));
    });
  });
}

/** Stops a peer (SIGTERM, SIGKILL after 8 s); resolves with notes: a crash, what it wrote to stderr. */
async function stopPeerProcess(p) {
  const notes = [];
  if (p.child.exitCode !== null || p.child.signalCode !== null) {
    notes.push(`CRASH: ${p.script} exited during the run: ${tailOf(p.logPath, 5)}`);
  } else {
    p.child.kill('SIGTERM');
    const r = await Promise.race([p.exited, sleep(8000).then(() => null)]);
    if (r === null) {
      p.child.kill('SIGKILL');
      await p.exited;
      notes.push(`${p.script} needed SIGKILL`);
    }
  }
  // Anything but the "listening" line is an error the peer printed (Redis, PostgreSQL, exceptions).
  const counts = new Map();
  for (const line of tailOf(p.logPath, 100000).split('\n')) {
    if (line === '' || /^listening \d+$/.test(line)) continue;
    const key = line.slice(0, 120);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  for (const [line, count] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 5)) notes.push(`${p.script} log: ${count}× ${line}`);
  return notes;
}

function tailOf(file, lines = 20) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Starts system `key` with `replicas` servers for a load generator using `rooms` rooms (r0, r1, ...).
 * Resolves with a handle:
 *   urls        the WebSocket URLs, replica order
 *   secret      the JWT secret the load generator signs with
 *   rssPids     the processes whose RSS is "the server" (our gateways; the Node processes)
 *   cpuPids     {name: pid} of the processes whose CPU time is reported (ours: gateways + messages
 *               + presence; a peer: its Node processes)
 *   messagesMetrics()  ours only: Map metric -> value summed over labels, of chat-messages' /metrics
 *   stop()      stops everything it started; resolves with notes (crashes, warnings seen in logs)
 */
async function startSystem(key, { replicas = 1, rooms, opts, infra }) {
  if (key === 'ours' || key === 'ours-1t' || key === 'ours-delay') {
    const stack = await startStack({
      gateways: replicas,
      binDir: BIN,
      logLevel: 'warn',
      env: {
        // Raised for benchmarking: the defaults (10 msg/s per connection, 20 connections per user,
        // 100,000 connections) protect a production gateway and would throttle the load generator.
        gateway: {
          SEND_RATE_PER_SECOND: '1000000',
          SEND_BURST: '1000000',
          MAX_CONNECTIONS: '200000',
          MAX_CONNECTIONS_PER_USER: '1000000',
          GATEWAY_THREADS: key === 'ours-1t' ? '1' : String(opts.gatewayThreads),
          ...(key === 'ours-delay' ? { WS_WRITE_DELAY_MS: '20' } : {}),
        },
        // Joining needs an existing room (the peers create rooms on the fly): seed the load
        // generator's rooms r0..r<rooms-1> as public rooms, which anyone may join.
        messages: { SEED_PUBLIC_ROOMS: Array.from({ length: rooms }, (_, i) => `r${i}`).join(',') },
        // Neither peer tells a room who came online. Ours does by default, one `presence` frame to
        // every member per join: filling rooms of 100 costs ~5,000 frames a room. Off here, like
        // the peers (members still get the online list in `joined`); --room-presence-events turns it on.
        presence: { ROOM_PRESENCE_EVENTS: opts.roomPresenceEvents ? '1' : '0' },
      },
    });
    const gwNames = stack.gateways.map((g) => g.name);
    return {
      urls: stack.gateways.map((g) => g.wsUrl),
      secret: stack.secret,
      rssPids: gwNames.map((n) => stack.pid(n)),
      cpuPids: Object.fromEntries([...gwNames, 'messages', 'presence'].map((n) => [n, stack.pid(n)])),
      messagesMetrics: () => stack.metricSums('messages'),
      stop: async () => {
        const notes = [...stack.unexpectedExits.map((e) => `CRASH: ${e}`)];
        for (const name of stack.procs.keys()) notes.push(...logProblems(path.join(stack.dir, `${name}.log`), name));
        await stack.teardown();
        return notes;
      },
    };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `chat-bench-${key}-`));
  exitHooks.push(() => fs.rmSync(dir, { recursive: true, force: true })); // the peers' logs, on Ctrl-C too
  const procs = [];
  const stopAll = async () => {
    const notes = [];
    for (const p of procs) notes.push(...(await stopPeerProcess(p)));
    fs.rmSync(dir, { recursive: true, force: true });
    return notes;
  };
  try {
    let env = {};
    let script = 'ws_server.mjs';
    if (key === 'sio') {
      script = 'socketio_server.mjs';
      env = { DATABASE_URL: freshSioDatabase(infra), REDIS_ADDR: infra.REDIS_ADDR };
    }
    for (let i = 0; i < replicas; i++) procs.push(await startPeerProcess(script, env, path.join(dir, `${key}-${i}.log`)));
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    urls: procs.map((p) => (key === 'sio' ? `ws://127.0.0.1:${p.port}/socket.io/?EIO=4&transport=websocket` : `ws://127.0.0.1:${p.port}/ws`)),
    // The peers do not verify tokens; any secret gives the load generator a JWT with a `sub`.
    secret: 'bench-peers-do-not-verify-this',
    rssPids: procs.map((p) => p.child.pid),
    cpuPids: Object.fromEntries(procs.map((p, i) => [`${key}-${i}`, p.child.pid])),
    messagesMetrics: null,
    stop: stopAll,
  };
}

/** warn/error lines of one of our services' JSON logs, summarized: count and a few distinct messages. */
function logProblems(file, name) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const byMsg = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      continue;
    }
    const level = rec.level ?? rec.lvl ?? rec.severity;
    if (level !== 'warn' && level !== 'error') continue;
    const msg = `${level}: ${rec.msg ?? rec.message ?? line.slice(0, 160)}`;
    byMsg.set(msg, (byMsg.get(msg) ?? 0) + 1);
  }
  return [...byMsg].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([m, n]) => `${name} log: ${n}× ${m}`);
}

/** Starts a system, runs fn(handle), always stops it. Resolves with {result, notes} or {error, notes}. */
async function withSystem(key, startOpts, fn) {
  log(`\n== ${SYSTEMS[key].label}: starting${startOpts.replicas > 1 ? ` ${startOpts.replicas} replicas` : ''}`);
  let sys;
  try {
    sys = await startSystem(key, startOpts);
  } catch (e) {
    log(`   failed to start: ${e.message}`);
    return { error: `start failed: ${e.message.split('\n')[0]}`, notes: [] };
  }
  let out;
  try {
    out = { result: await fn(sys) };
  } catch (e) {
    log(`   failed: ${e.stack ?? e.message}`);
    out = { error: e.message.split('\n')[0] };
  }
  out.notes = await sys.stop();
  for (const n of out.notes) log(`   note: ${n}`);
  return out;
}

// ---- the load generator -----------------------------------------------------------------------------

// A measurement during which the hypervisor stole more than STEAL_MAX % of one core is made again, up
// to STEAL_REPEATS more times (runLoadgen). BENCH_STEAL_MAX changes the threshold (-1 repeats every
// measurement: a check of this path).
const STEAL_MAX = Number(process.env.BENCH_STEAL_MAX ?? 10);
const STEAL_REPEATS = 2;
const STEAL_SETTLE_MS = 2000;

/**
 * Busy and total CPU seconds of the whole machine so far (all cores; /proc/stat's first line). Busy
 * includes steal: time the hypervisor gave this VM's virtual CPUs to someone else, reported on its own
 * too, because a VM's slow hours may be that rather than anything running here.
 */
function machineCpu() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  // minus idle, iowait; f[7] is steal
  return { busy: (total - f[3] - f[4]) / CLK_TCK, steal: f[7] / CLK_TCK, total: total / CLK_TCK };
}

/** CPU seconds (user + system) of process pid so far, or null when it is gone. */
function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15: utime, stime
  } catch {
    return null;
  }
}

/**
 * Runs chat-loadgen against `sys` with load `p` and resolves with its JSON report, plus `cpu`: the
 * server's and the load generator's CPU use (percent of one core) over the measurement window,
 * sampled from /proc every 250 ms (the window starts at the loadgen's "sending" line + warmup), per
 * server process, and the whole machine's (percent of one core, so up to 100 × cores): what the
 * machine did besides server + loadgen is PostgreSQL, Redis and, on a busy machine, noise; of it, the
 * part the hypervisor stole.
 */
async function runLoadgen(sys, p, opts, hooks = {}) {
  // A shared VM's hypervisor sometimes takes half a core away for minutes (2026-12-03: 21-52 % of a
  // core through all of one peer's steps, ~0 through ours): such a measurement says little about the
  // system under test, so it is repeated, and the attempt with the least steal is kept.
  let best = null;
  let attempt = 0;
  for (;; attempt++) {
    // `hooks` read the servers' own counters around each attempt (scenario 4's commit figures).
    const before = hooks.before ? await hooks.before() : null;
    const r = await runLoadgenOnce(sys, p, opts);
    if (hooks.after) await hooks.after(r, before);
    if (best === null || (r.cpu?.steal ?? 0) < (best.cpu?.steal ?? 0)) best = r;
    if (!(r.cpu?.steal > STEAL_MAX) || attempt === STEAL_REPEATS) break;
    log(`   (${fmtCpu(r.cpu.steal)} % of a core stolen by the hypervisor: measured again)`);
    await sleep(STEAL_SETTLE_MS);
  }
  best.steal_repeats = attempt;
  return best;
}

/** One run of chat-loadgen, as runLoadgen describes. */
async function runLoadgenOnce(sys, p, opts) {
  const args = [];
  for (const u of sys.urls) args.push('--url', u);
  const n = (v) => String(v);
  args.push(
    '--protocol', SYSTEMS[p.system].protocol,
    '--jwt-secret', sys.secret,
    '--connections', n(p.connections),
    '--rooms', n(p.rooms),
    '--senders-per-room', n(p.rate > 0 ? p.sendersPerRoom : 0),
    '--rate', n(p.rate),
    '--idle-seconds', n(p.idle ?? 0),
    '--warmup', n(p.warmup ?? 0),
    '--duration', n(p.duration ?? 0),
    '--drain', n(p.drain ?? (p.rate > 0 ? 1 : 0)),
    '--threads', n(opts.loadgenThreads),
    '--connect-concurrency', n(opts.connectConcurrency),
    '--join-concurrency', n(opts.connectConcurrency),
    '--server-pid', sys.rssPids.join(','),
  );
  if (p.sendersOn !== undefined) args.push('--senders-on', n(p.sendersOn));
  const child = track(spawn(LOADGEN, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const budgetMs = 60_000 + 1000 * ((p.idle ?? 0) + (p.warmup ?? 0) + (p.duration ?? 0) + 2 + p.connections / 200);
  const killer = setTimeout(() => child.kill('SIGKILL'), budgetMs);
  let stdout = '';
  let stderr = '';
  let sendingAt = null;
  const samples = [];
  const sample = () => {
    const procs = Object.fromEntries(Object.entries(sys.cpuPids).map(([name, pid]) => [name, cpuSeconds(pid)]));
    const m = machineCpu();
    samples.push({ t: performance.now(), procs, lg: cpuSeconds(child.pid), machine: m.busy, steal: m.steal });
  };
  const sampler = setInterval(sample, 250);
  sample();
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => {
    const text = String(d);
    if (sendingAt === null && /^sending /m.test(text)) sendingAt = performance.now();
    if (opts.verbose) process.stderr.write(text.replace(/^/gm, '      | '));
    stderr = (stderr + text).slice(-20000);
  });
  const [code, signal] = await new Promise((resolve) => child.once('exit', (c, s) => resolve([c, s])));
  clearInterval(sampler);
  clearTimeout(killer);
  const last = stdout.trim().split('\n').pop();
  let report;
  try {
    report = JSON.parse(last);
  } catch {
    throw new Error(`chat-loadgen exited (code ${code}, signal ${signal}) without a report:\n${stderr.slice(-3000)}`);
  }
  // A histogram with nothing in it reports zeros: make those "no figure", not "0 ms".
  for (const h of [report.latency_ms, report.ack_latency_ms, ...(report.latency_ms_by_url ?? [])]) {
    if (h.count === 0) for (const k of ['p50', 'p90', 'p99', 'p999', 'max', 'mean']) h[k] = null;
  }
  report.args = ['chat-loadgen', ...args].join(' ');
  report.cpu = windowCpu(samples, sendingAt, p);
  return report;
}

/** CPU % of one core over [sending + warmup, + duration], from the samples: server, per process, loadgen, machine. */
function windowCpu(samples, sendingAt, p) {
  if (sendingAt === null || !(p.duration > 0)) return null;
  const from = sendingAt + 20 + 1000 * (p.warmup ?? 0);
  const to = from + 1000 * p.duration;
  const a = samples.find((s) => s.t >= from);
  const b = [...samples].reverse().find((s) => s.t <= to && s.lg !== null);
  if (!a || !b || b.t - a.t < 200) return null;
  const pct = (x, y) => (x !== null && y !== null ? (100 * (y - x)) / ((b.t - a.t) / 1000) : null);
  const byProcess = Object.fromEntries(Object.keys(a.procs).map((n) => [n, pct(a.procs[n], b.procs[n])]));
  const values = Object.values(byProcess);
  return {
    server: values.every((v) => v !== null) ? values.reduce((x, y) => x + y, 0) : null,
    byProcess,
    loadgen: pct(a.lg, b.lg),
    machine: pct(a.machine, b.machine),
    steal: pct(a.steal, b.steal),
  };
}

// ---- what a report says -------------------------------------------------------------------------------

const sumValues = (o) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);

/** Everything that went wrong in one run, as a count: failed connects/joins, send errors, disconnects. */
function errorCount(r) {
  return r.connect.failed + r.join.failed + r.join.pending + r.send_errors + sumValues(r.disconnects);
}

function errorText(r) {
  const parts = [];
  const add = (what, m) => {
    for (const [k, v] of Object.entries(m ?? {})) parts.push(`${what} ${k}: ${v}`);
  };
  add('connect', r.connect.errors);
  add('join', r.join.errors);
  if (r.join.pending) parts.push(`join unanswered: ${r.join.pending}`);
  add('send', r.errors);
  add('disconnect', r.disconnects);
  return parts.join('; ');
}

const lostPct = (r) => (r.expected_deliveries > 0 ? (100 * r.lost) / r.expected_deliveries : 0);

/** Why a stepped run should stop at this report, or null if the step stayed within bounds. */
function overloadReason(r, { latencyKey, p99Max, lossKey }) {
  const p99 = r[latencyKey].p99;
  if (errorCount(r) > 0) return `errors (${errorText(r)})`;
  if (r.send_skipped > 0) return `${r.send_skipped} sends skipped (a connection's queue was full)`;
  if (r.sent_per_s < 0.95 * r.rate_target) return `sent only ${fmtInt(r.sent_per_s)}/s`;
  if (lossKey === 'deliveries' && lostPct(r) > 1) return `lost ${lostPct(r).toFixed(1)} % of deliveries`;
  if (lossKey === 'acks' && r.unanswered > 0.01 * r.sent) return `${r.unanswered} sends unanswered`;
  if (!(p99 <= p99Max)) return `p99 ${fmtMs(p99)} ms > ${p99Max} ms`;
  return null;
}

/**
 * Doubles the rate from `start` until a step overloads (or maxSteps), then bisects `refine` times
 * between the last good and the first bad rate. When `start` itself overloads, halves it (down to
 * start / 8) so the system still gets a figure. run(rate) resolves with a report; returns the steps.
 */
async function stepRates({ start, maxSteps, refine, settleMs }, run, judge) {
  const steps = [];
  let good = null;
  let bad = null;
  const step = async (rate) => {
    const s = await run(rate);
    s.reason = judge(s.report);
    steps.push(s);
    log(`   rate ${fmtInt(rate)}: ${s.summary}${s.reason ? `  -> over: ${s.reason}` : ''}`);
    if (s.reason) await sleep(settleMs);
    return !s.reason;
  };
  for (let i = 0, rate = start; i < maxSteps; i++, rate *= 2) {
    if (!(await step(rate))) {
      bad = rate;
      break;
    }
    good = rate;
  }
  for (let rate = start / 2; good === null && rate >= start / 8; rate /= 2) {
    if (await step(rate)) good = rate;
    else bad = rate;
  }
  for (let i = 0; i < refine && good !== null && bad !== null && bad - good > good * 0.1; i++) {
    const rate = Math.round((good + bad) / 2);
    if (await step(rate)) good = rate;
    else bad = rate;
  }
  return steps;
}

/** Scenario 4: the commits chat-messages made during one load generator run, from its metrics before and after. */
async function commitFigures(sys, r, before) {
  if (!before) return;
  const after = await sys.messagesMetrics();
  const d = (m) => (after.get(m) ?? 0) - (before.get(m) ?? 0);
  r.commit = {
    batches: d('chat_commit_batch_size_count'),
    messages: d('chat_commit_batch_size_sum'),
    committed: d('chat_messages_committed_total'),
    failures: d('chat_commit_failures_total'),
    seconds: d('chat_commit_duration_seconds_sum'), // store + publish, per batch
  };
  r.commit.mean_batch = r.commit.batches > 0 ? r.commit.messages / r.commit.batches : null;
  r.commit.mean_ms = r.commit.batches > 0 ? (1000 * r.commit.seconds) / r.commit.batches : null;
}

/** Scenario 4's line for one step. */
function s4Summary(r) {
  const batch = r.commit?.mean_batch != null
    ? `, ${r.commit.mean_batch.toFixed(1)} msgs/commit, ${r.commit.mean_ms.toFixed(2)} ms/commit`
    : '';
  const cpu = r.cpu ? `, CPU % server ${fmtCpu(r.cpu.server)}${cpuBreakdown(r.cpu)} loadgen ${fmtCpu(r.cpu.loadgen)} machine ${fmtMachine(r.cpu)}` : '';
  const err = errorCount(r) ? `, ${errorCount(r)} errors: ${errorText(r)}` : '';
  return `acked ${fmtInt(r.acks_per_s)}/s, ack p50 ${fmtMs(r.ack_latency_ms.p50)} p99 ${fmtMs(r.ack_latency_ms.p99)} ms${batch}${err}${cpu}${repeatNote(r)}`;
}

// ---- scenarios --------------------------------------------------------------------------------------

// Each scenario: { title(sz), systems, rooms(sz), replicas, run(sys, key, ctx) -> result, table(results) -> {headers, rows} }.
// `results` maps a system key to {result} or {error}.
const SCENARIOS = {
  1: {
    title: (sz) => `Scenario 1: latency (${fmtInt(sz.conns)} connections, ${sz.rooms} rooms of ${sz.conns / sz.rooms}, ${fmtInt(sz.s1.rate)} msg/s)`,
    systems: ['ours', 'ours-1t', 'ours-delay', 'ws', 'sio'],
    rooms: (sz) => sz.rooms,
    async run(sys, key, { sz, opts }) {
      const r = await runLoadgen(sys, {
        system: key, connections: sz.conns, rooms: sz.rooms, sendersPerRoom: opts.sendersPerRoom,
        rate: sz.s1.rate, warmup: sz.s1.warmup, duration: sz.s1.duration,
      }, opts);
      log(`   ${runSummary(r)}`);
      return { report: r, reports: [r] };
    },
    table(res) {
      const headers = ['system', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'deliveries/s', 'acks/s', 'lost %', 'errors', 'server CPU %'];
      const row = (k) => {
        const r = res[k]?.result?.report;
        if (!r) return [SYSTEMS[k].label, ...failCells(res[k], headers.length - 1)];
        const l = r.latency_ms;
        return [SYSTEMS[k].label, fmtMs(l.p50), fmtMs(l.p90), fmtMs(l.p99), fmtMs(l.max), fmtInt(r.deliveries_per_s),
          fmtInt(r.acks_per_s), lostPct(r).toFixed(2), errorCount(r), fmtCpu(r.cpu?.server)];
      };
      const ratio = (peer, mine = 'ours') => {
        const a = res[mine]?.result?.report;
        const b = res[peer]?.result?.report;
        return [`${SYSTEMS[mine].label} ÷ ${SYSTEMS[peer].label}`, rat(a?.latency_ms.p50, b?.latency_ms.p50), rat(a?.latency_ms.p90, b?.latency_ms.p90),
          rat(a?.latency_ms.p99, b?.latency_ms.p99), rat(a?.latency_ms.max, b?.latency_ms.max),
          rat(a?.deliveries_per_s, b?.deliveries_per_s), rat(a?.acks_per_s, b?.acks_per_s), '', '', rat(a?.cpu?.server, b?.cpu?.server)];
      };
      return { headers, rows: rowsWithRatios(res, row, ratio) };
    },
  },

  2: {
    title: () => 'Scenario 2: max throughput (same topology, rate raised until p99 > 50 ms)',
    systems: ['ours', 'ours-1t', 'ours-delay', 'ws', 'sio'],
    // The goal's ratio: ours and the ws peer run again in the reverse order after the others, and each
    // keeps its better pass, so that neither gets only the machine's slow minutes.
    secondPass: ['ws', 'ours'],
    better: (a, b) => ((b.best?.report.deliveries_per_s ?? -1) > (a.best?.report.deliveries_per_s ?? -1) ? b : a),
    passFigure: (r) => (r.best ? `${fmtInt(r.best.report.deliveries_per_s)} deliveries/s` : 'none within bounds'),
    rooms: (sz) => sz.rooms,
    async run(sys, key, { sz, opts }) {
      const steps = await stepRates({ ...sz.s2, settleMs: sz.settleMs }, async (rate) => {
        const r = await runLoadgen(sys, {
          system: key, connections: sz.conns, rooms: sz.rooms, sendersPerRoom: opts.sendersPerRoom,
          rate, warmup: sz.s2.warmup, duration: sz.s2.duration,
        }, opts);
        return { rate, report: r, summary: runSummary(r) };
      }, (r) => overloadReason(r, { latencyKey: 'latency_ms', p99Max: 50, lossKey: 'deliveries' }));
      const ok = steps.filter((s) => !s.reason);
      const best = ok.sort((a, b) => b.report.deliveries_per_s - a.report.deliveries_per_s)[0] ?? null;
      const stop = steps.find((s) => s.reason);
      return { steps, best, stopReason: stop ? `${fmtInt(stop.rate)} msg/s: ${stop.reason}` : 'step limit reached', reports: steps.map((s) => s.report) };
    },
    table(res) {
      const headers = ['system', 'best rate msg/s', 'deliveries/s', 'p50 ms', 'p99 ms', 'server CPU %', 'loadgen CPU %', 'stopped at'];
      const row = (k) => {
        const x = res[k]?.result;
        if (!x) return [SYSTEMS[k].label, ...failCells(res[k], headers.length - 1)];
        const r = x.best?.report;
        if (!r) return [SYSTEMS[k].label, 'none within bounds', '', '', '', '', '', x.stopReason];
        return [SYSTEMS[k].label, fmtInt(x.best.rate), fmtInt(r.deliveries_per_s), fmtMs(r.latency_ms.p50), fmtMs(r.latency_ms.p99),
          fmtCpu(r.cpu?.server), fmtCpu(r.cpu?.loadgen), `${x.stopReason}${passNote(x)}`];
      };
      const ratio = (peer, mine = 'ours') => {
        const a = res[mine]?.result?.best;
        const b = res[peer]?.result?.best;
        return [`${SYSTEMS[mine].label} ÷ ${SYSTEMS[peer].label}`, rat(a?.rate, b?.rate), rat(a?.report.deliveries_per_s, b?.report.deliveries_per_s),
          rat(a?.report.latency_ms.p50, b?.report.latency_ms.p50), rat(a?.report.latency_ms.p99, b?.report.latency_ms.p99), '', '', ''];
      };
      return { headers, rows: rowsWithRatios(res, row, ratio), steps: stepsTable(res, 'latency_ms') };
    },
  },

  3: {
    title: (sz) => `Scenario 3: idle (${fmtInt(sz.s3.conns)} idle authenticated connections in rooms of 100)`,
    systems: ['ours', 'ours-1t', 'ws', 'sio'],
    rooms: (sz) => idleRooms(sz),
    async run(sys, key, { sz, opts }) {
      // Rooms of 100 like the other scenarios: an idle chat connection has joined its room.
      const r = await runLoadgen(sys, {
        system: key, connections: sz.s3.conns, rooms: idleRooms(sz), rate: 0,
        idle: sz.s3.idle, duration: 0, drain: 0,
      }, opts);
      log(`   connected ${r.connect.ok}/${sz.s3.conns} in ${fmtInt(r.connect.total_ms)} ms, ` +
        `RSS ${fmtKib(r.rss_kib.before)} -> ${fmtKib(r.rss_kib.after_idle ?? r.rss_kib.after_connect)}, ` +
        `${r.rss_per_conn_bytes ?? 'n/a'} B/connection${errorCount(r) ? `, errors: ${errorText(r)}` : ''}`);
      return { report: r, reports: [r] };
    },
    table(res) {
      const headers = ['system', 'connected', 'failed', 'connect total ms', 'connect p99 ms', 'join total ms', 'RSS before', 'RSS idle', 'bytes/connection'];
      const row = (k) => {
        const r = res[k]?.result?.report;
        if (!r) return [SYSTEMS[k].label, ...failCells(res[k], headers.length - 1)];
        return [SYSTEMS[k].label, fmtInt(r.connect.ok), r.connect.failed + r.join.failed + r.join.pending, fmtInt(r.connect.total_ms),
          fmtMs(r.connect.p99_ms), fmtInt(r.join.total_ms), fmtKib(r.rss_kib.before),
          fmtKib(r.rss_kib.after_idle ?? r.rss_kib.after_connect), fmtInt(r.rss_per_conn_bytes)];
      };
      const ratio = (peer, mine = 'ours') => {
        const a = res[mine]?.result?.report;
        const b = res[peer]?.result?.report;
        return [`${SYSTEMS[mine].label} ÷ ${SYSTEMS[peer].label}`, '', '', rat(a?.connect.total_ms, b?.connect.total_ms), rat(a?.connect.p99_ms, b?.connect.p99_ms),
          rat(a?.join.total_ms, b?.join.total_ms), '', '', rat(a?.rss_per_conn_bytes, b?.rss_per_conn_bytes)];
      };
      return { headers, rows: rowsWithRatios(res, row, ratio) };
    },
  },

  4: {
    title: (sz) => `Scenario 4: persistence (${fmtInt(sz.s4.conns)} connections, one per room, all sending; acked = committed)`,
    systems: ['ours', 'ours-1t', 'sio'], // the ws peer keeps nothing: n/a
    rooms: (sz) => sz.s4.conns,
    async run(sys, key, { sz, opts }) {
      const steps = await stepRates({ start: sz.s4.start, maxSteps: sz.s4.maxSteps, refine: 1, settleMs: sz.settleMs }, async (rate) => {
        const r = await runLoadgen(sys, {
          system: key, connections: sz.s4.conns, rooms: sz.s4.conns, sendersPerRoom: 1,
          rate, warmup: sz.s4.warmup, duration: sz.s4.duration,
        }, opts, { before: async () => (sys.messagesMetrics ? sys.messagesMetrics() : null), after: (r, before) => commitFigures(sys, r, before) });
        return { rate, report: r, summary: s4Summary(r) };
      }, (r) => overloadReason(r, { latencyKey: 'ack_latency_ms', p99Max: 20, lossKey: 'acks' }));
      const ok = steps.filter((s) => !s.reason);
      const best = ok.sort((a, b) => b.report.acks_per_s - a.report.acks_per_s)[0] ?? null;
      const peak = [...steps].sort((a, b) => b.report.acks_per_s - a.report.acks_per_s)[0];
      const stop = steps.find((s) => s.reason);
      return { steps, best, peak, stopReason: stop ? `${fmtInt(stop.rate)} msg/s: ${stop.reason}` : 'step limit reached', reports: steps.map((s) => s.report) };
    },
    table(res) {
      const headers = ['system', 'best rate msg/s', 'acked/s', 'ack p50 ms', 'ack p99 ms', 'msgs/commit', 'ms/commit', 'peak acked/s (any step)', 'stopped at'];
      const row = (k) => {
        if (k === 'ws') return [SYSTEMS.ws.label, 'n/a (no persistence)', '', '', '', '', '', '', ''];
        const x = res[k]?.result;
        if (!x) return [SYSTEMS[k].label, ...failCells(res[k], headers.length - 1)];
        const r = x.best?.report;
        const batch = r?.commit?.mean_batch != null ? r.commit.mean_batch.toFixed(1) : 'n/a';
        const commitMs = r?.commit?.mean_ms != null ? fmtMs(r.commit.mean_ms) : 'n/a';
        if (!r) return [SYSTEMS[k].label, 'none within bounds', '', '', '', '', '', fmtInt(x.peak?.report.acks_per_s), x.stopReason];
        return [SYSTEMS[k].label, fmtInt(x.best.rate), fmtInt(r.acks_per_s), fmtMs(r.ack_latency_ms.p50), fmtMs(r.ack_latency_ms.p99),
          batch, commitMs, fmtInt(x.peak?.report.acks_per_s), x.stopReason];
      };
      const ratio = (peer, mine = 'ours') => {
        const a = res[mine]?.result;
        const b = res[peer]?.result;
        return [`${SYSTEMS[mine].label} ÷ ${SYSTEMS[peer].label}`, rat(a?.best?.rate, b?.best?.rate), rat(a?.best?.report.acks_per_s, b?.best?.report.acks_per_s),
          rat(a?.best?.report.ack_latency_ms.p50, b?.best?.report.ack_latency_ms.p50), rat(a?.best?.report.ack_latency_ms.p99, b?.best?.report.ack_latency_ms.p99),
          '', '', rat(a?.peak?.report.acks_per_s, b?.peak?.report.acks_per_s), ''];
      };
      const keys = ['ours', 'ours-1t', 'ws', 'sio'].filter((k) => k === 'ws' ? 'ws' in res || 'sio' in res : k in res);
      const rows = keys.map(row);
      for (const mine of ['ours', 'ours-1t']) if (res[mine]?.result && res.sio?.result) rows.push(ratio('sio', mine));
      return { headers, rows, steps: stepsTable(res, 'ack_latency_ms') };
    },
  },

  5: {
    title: (sz) => `Scenario 5: cross-replica (two replicas, Redis between them; ${fmtInt(sz.s5.rate)} msg/s, senders on A, receivers on B)`,
    systems: ['ours', 'sio'], // the ws peer is a single process: no replicas
    replicas: 2,
    rooms: (sz) => sz.rooms,
    async run(sys, key, { sz, opts }) {
      const r = await runLoadgen(sys, {
        system: key, connections: sz.conns, rooms: sz.rooms, sendersPerRoom: opts.sendersPerRoom,
        rate: sz.s5.rate, warmup: sz.s5.warmup, duration: sz.s5.duration, sendersOn: 0,
      }, opts);
      const [a, b] = r.latency_ms_by_url ?? [];
      log(`   ${runSummary(r)}; on B: p50 ${fmtMs(b?.p50)} p99 ${fmtMs(b?.p99)} ms (n=${b?.count}), on A: p50 ${fmtMs(a?.p50)} p99 ${fmtMs(a?.p99)} ms`);
      return { report: r, reports: [r] };
    },
    table(res) {
      const headers = ['system', 'B p50 ms', 'B p90 ms', 'B p99 ms', 'B max ms', 'B deliveries', 'A (same replica) p50 / p99 ms', 'deliveries/s', 'lost %', 'errors'];
      const row = (k) => {
        if (k === 'ws') return [SYSTEMS.ws.label, 'n/a (single process)', '', '', '', '', '', '', '', ''];
        const r = res[k]?.result?.report;
        if (!r) return [SYSTEMS[k].label, ...failCells(res[k], headers.length - 1)];
        const [a, b] = r.latency_ms_by_url;
        return [SYSTEMS[k].label, fmtMs(b.p50), fmtMs(b.p90), fmtMs(b.p99), fmtMs(b.max), fmtInt(b.count), `${fmtMs(a.p50)} / ${fmtMs(a.p99)}`,
          fmtInt(r.deliveries_per_s), lostPct(r).toFixed(2), errorCount(r)];
      };
      const ratio = (peer) => {
        const a = res.ours?.result?.report?.latency_ms_by_url?.[1];
        const b = res[peer]?.result?.report?.latency_ms_by_url?.[1];
        return [`ours ÷ ${SYSTEMS[peer].label}`, rat(a?.p50, b?.p50), rat(a?.p90, b?.p90), rat(a?.p99, b?.p99), rat(a?.max, b?.max), '', '',
          rat(res.ours?.result?.report?.deliveries_per_s, res[peer]?.result?.report?.deliveries_per_s), '', ''];
      };
      const keys = ['ours', 'ws', 'sio'].filter((k) => k === 'ws' ? 'ws' in res || 'sio' in res : k in res);
      const rows = keys.map(row);
      if (res.ours?.result && res.sio?.result) rows.push(ratio('sio'));
      return { headers, rows };
    },
  },
};

const idleRooms = (sz) => Math.max(1, Math.round(sz.s3.conns / 100));

function runSummary(r) {
  const l = r.latency_ms;
  const err = errorCount(r);
  return `deliveries ${fmtInt(r.deliveries_per_s)}/s (lost ${lostPct(r).toFixed(2)} %), p50 ${fmtMs(l.p50)} p90 ${fmtMs(l.p90)} ` +
    `p99 ${fmtMs(l.p99)} max ${fmtMs(l.max)} ms, acks ${fmtInt(r.acks_per_s)}/s${err ? `, ${err} errors: ${errorText(r)}` : ''}` +
    `${r.cpu ? `, CPU % server ${fmtCpu(r.cpu.server)}${cpuBreakdown(r.cpu)} loadgen ${fmtCpu(r.cpu.loadgen)} machine ${fmtMachine(r.cpu)}` : ''}` +
    repeatNote(r);
}

/** Says when a measurement was made again because the hypervisor stole CPU during it (runLoadgen). */
function repeatNote(r) {
  return r.steal_repeats ? ` (of ${r.steal_repeats + 1} attempts, the one with the least steal)` : '';
}

/** " (gateway-0 40 + messages 30 + presence 2)" when the server is several processes. */
function cpuBreakdown(cpu) {
  const parts = Object.entries(cpu.byProcess ?? {});
  return parts.length > 1 ? ` (${parts.map(([n, v]) => `${n} ${fmtCpu(v)}`).join(' + ')})` : '';
}

/** Rows for ours, ws, sio (those that ran) and then the ours ÷ peer ratio rows. */
function rowsWithRatios(res, row, ratio) {
  const keys = ['ours', 'ours-1t', 'ours-delay', 'ws', 'sio'].filter((k) => k in res);
  const rows = keys.map(row);
  for (const mine of ['ours', 'ours-1t', 'ours-delay']) {
    for (const peer of ['ws', 'sio']) if (res[mine]?.result && res[peer]?.result) rows.push(ratio(peer, mine));
  }
  return rows;
}

/**
 * A system's two passes of a scenario (first, second: withSystem's results) as one: the better
 * result, with both passes' steps (each marked with its pass) and reports, and the passes' figures.
 */
function keepBetterPass(first, second, better, figure) {
  for (const [n, x] of [[1, first], [2, second]]) for (const s of x.result?.steps ?? []) s.pass = n;
  const pick = !first.result ? second : !second.result ? first : better(first.result, second.result) === second.result ? second : first;
  const out = { ...pick, notes: [...(first.notes ?? []), ...(second.notes ?? [])] };
  if (pick.result) {
    out.result = {
      ...pick.result,
      steps: [...(first.result?.steps ?? []), ...(second.result?.steps ?? [])],
      reports: [...(first.result?.reports ?? []), ...(second.result?.reports ?? [])],
      pass: pick === first ? 1 : 2,
      passFigures: [first, second].map((x) => (x.result ? figure(x.result) : `failed: ${x.error}`)),
    };
  }
  return out;
}

/** " (pass 2 of 2; pass 1: 200,000, pass 2: 250,220 deliveries/s)" for a result kept from two passes. */
function passNote(x) {
  if (!x.pass) return '';
  return ` (pass ${x.pass} of 2; ${x.passFigures.map((f, i) => `pass ${i + 1}: ${f}`).join(', ')})`;
}

/** Every step of a stepped scenario: one row per system and rate. */
function stepsTable(res, latencyKey) {
  const headers = ['system', 'rate msg/s', 'sent/s', 'acked/s', 'deliveries/s', 'lost %', 'p50 ms', 'p99 ms', 'server CPU %', 'loadgen CPU %', 'machine CPU %', 'verdict'];
  const rows = [];
  for (const k of ['ours', 'ours-1t', 'ours-delay', 'ws', 'sio']) {
    for (const s of res[k]?.result?.steps ?? []) {
      const r = s.report;
      rows.push([`${SYSTEMS[k].label}${s.pass ? `, pass ${s.pass}` : ''}`, fmtInt(s.rate), fmtInt(r.sent_per_s), fmtInt(r.acks_per_s), fmtInt(r.deliveries_per_s), lostPct(r).toFixed(2),
        fmtMs(r[latencyKey].p50), fmtMs(r[latencyKey].p99), fmtCpu(r.cpu?.server), fmtCpu(r.cpu?.loadgen), fmtMachine(r.cpu, r.steal_repeats), s.reason ?? 'ok']);
    }
  }
  return { headers, rows };
}

function failCells(x, n) {
  return [x?.error ? `FAILED: ${x.error}` : 'not run', ...Array(n - 1).fill('')];
}

// ---- formatting ------------------------------------------------------------------------------------

function fmtInt(v) {
  return Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a';
}
function fmtMs(v) {
  if (!Number.isFinite(v)) return 'n/a';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
function fmtCpu(v) {
  return Number.isFinite(v) ? v.toFixed(0) : 'n/a';
}
function fmtSteal(v) {
  return Number.isFinite(v) ? v.toFixed(1) : 'n/a';
}
// Machine CPU with the part the hypervisor stole, e.g. "164 (steal 3)", and how many attempts the
// measurement took when steal made it repeat ("164 (steal 3, best of 2)").
function fmtMachine(cpu, repeats = 0) {
  if (!cpu) return 'n/a';
  if (!Number.isFinite(cpu.steal)) return fmtCpu(cpu.machine);
  return `${fmtCpu(cpu.machine)} (steal ${fmtCpu(cpu.steal)}${repeats ? `, best of ${repeats + 1}` : ''})`;
}
function fmtKib(v) {
  return Number.isFinite(v) ? `${(v / 1024).toFixed(1)} MiB` : 'n/a';
}
/** a ÷ b as "1.23×", or '' when either is missing. */
function rat(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}×` : '';
}

/** a ÷ b for a goal of `times`: more digits when two would round it onto the other side (1.996 is not 2.00). */
function goalRat(a, b, times) {
  if (!(Number.isFinite(a) && Number.isFinite(b) && b !== 0)) return '';
  const r = a / b;
  for (const digits of [2, 3, 4]) {
    const shown = r.toFixed(digits);
    if ((Number(shown) >= times) === (r >= times)) return `${shown}×`;
  }
  return `${r.toFixed(5)}×`;
}

function mdTable({ headers, rows }) {
  const esc = (c) => String(c).replace(/\|/g, '\\|');
  return [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

// ---- goals of issue #8 -------------------------------------------------------------------------------

/** Each goal: {goal, figure, verdict} with verdict 'met', 'NOT met' or 'n/a'. */
function evaluateGoals(all, sz, quick) {
  const goals = [];
  const verdict = (ok) => (ok === null ? 'n/a' : ok ? 'met' : 'NOT met');
  const s2 = all[2];
  if (s2) {
    const a = s2.ours?.result?.best?.report.deliveries_per_s;
    const b = s2.ws?.result?.best?.report.deliveries_per_s;
    const known = Number.isFinite(a) && Number.isFinite(b);
    goals.push({
      goal: 'Scenario 2: at least 2x the Node ws peer\'s deliveries/s, with persistence',
      figure: known ? `${fmtInt(a)} vs ${fmtInt(b)} deliveries/s = ${goalRat(a, b, 2)}` : 'missing a figure',
      verdict: verdict(known ? a >= 2 * b : null),
    });
    for (const [key, what] of [['ours-1t', 'GATEWAY_THREADS=1'], ['ours-delay', 'WS_WRITE_DELAY_MS=20 (opt-in)']]) {
      if (!s2[key]) continue;
      const d = s2[key]?.result?.best?.report.deliveries_per_s;
      goals.push({
        goal: `Scenario 2, the same with ${what}`,
        figure: Number.isFinite(d) && Number.isFinite(b) ? `${fmtInt(d)} vs ${fmtInt(b)} deliveries/s = ${goalRat(d, b, 2)}` : 'missing a figure',
        verdict: verdict(Number.isFinite(d) && Number.isFinite(b) ? d >= 2 * b : null),
      });
    }
  }
  const s1 = all[1]?.ours?.result?.report;
  if (all[1]) {
    goals.push({
      goal: 'Scenario 1: p50 <= 2 ms, p99 <= 10 ms from send to every receiver',
      figure: s1 ? `p50 ${fmtMs(s1.latency_ms.p50)} ms, p99 ${fmtMs(s1.latency_ms.p99)} ms` : 'missing',
      verdict: verdict(s1 ? s1.latency_ms.p50 <= 2 && s1.latency_ms.p99 <= 10 && errorCount(s1) === 0 : null),
    });
  }
  const s3 = all[3]?.ours?.result?.report;
  if (all[3]) {
    const note = quick ? ` (--quick: ${sz.s3.conns} connections, not 19,000)` : '';
    goals.push({
      goal: 'Scenario 3: at most 4 KiB of gateway RSS per idle connection',
      figure: s3 ? `${fmtInt(s3.rss_per_conn_bytes)} B/connection${note}` : 'missing',
      verdict: verdict(s3 && Number.isFinite(s3.rss_per_conn_bytes) ? s3.rss_per_conn_bytes <= 4096 : null),
    });
    goals.push({
      goal: 'Scenario 3: 19,000 connects in under 1 s',
      figure: s3 ? `${fmtInt(s3.connect.ok)} connects in ${fmtInt(s3.connect.total_ms)} ms${note}` : 'missing',
      verdict: verdict(s3 && !quick ? s3.connect.ok >= 19000 && s3.connect.total_ms < 1000 : null),
    });
  }
  if (all[4]) {
    const best = all[4].ours?.result?.best?.report;
    goals.push({
      goal: 'Scenario 4: at least 20,000 persisted messages/s with p99 ack <= 20 ms',
      figure: best ? `${fmtInt(best.acks_per_s)} acked/s at ack p99 ${fmtMs(best.ack_latency_ms.p99)} ms` : 'no step within ack p99 <= 20 ms',
      verdict: verdict(all[4].ours?.result ? !!best && best.acks_per_s >= 20000 && best.ack_latency_ms.p99 <= 20 : null),
    });
  }
  return goals;
}

// ---- the machine -------------------------------------------------------------------------------------

function machine(infra) {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const git = (...a) => {
    try {
      return execFileSync('git', ['-C', REPO, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const dirty = git('status', '--porcelain', '--untracked-files=no');
  const version = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0];
    } catch {
      return 'unknown';
    }
  };
  return {
    host: os.hostname(),
    cpu: `${model}, ${os.cpus().length} logical cores`,
    ram: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: infra ? version(path.join(infra.PG_BIN, 'postgres'), ['--version']) : 'n/a',
    redis: version('redis-server', ['--version']),
    commit: git('rev-parse', '--short', 'HEAD') ?? 'unknown',
    dirty: dirty === null ? 'unknown' : dirty === '' ? 'clean' : `dirty (${dirty.split('\n').length} modified tracked files)`,
    fileLimit: fileLimit().soft,
    loadgen: LOADGEN.startsWith(REPO + path.sep) ? path.relative(REPO, LOADGEN) : LOADGEN,
    stale: staleBinaries(),
  };
}

// ---- the report ------------------------------------------------------------------------------------

function markdown({ m, opts, sz, command, tables, goals, all, started, finished }) {
  const out = [];
  out.push(`# Benchmark results: ${started.toISOString().slice(0, 10)} on ${m.host}${opts.quick ? ' (QUICK: plumbing check, not the benchmark sizes)' : ''}`);
  out.push('');
  out.push(`Command: \`${command}\`  `);
  out.push(`Run: ${started.toISOString()} to ${finished.toISOString()}`);
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push(mdTable({ headers: ['', ''], rows: [
    ['CPU', m.cpu], ['RAM', m.ram], ['kernel', m.kernel], ['Node', m.node], ['PostgreSQL', m.postgres], ['Redis', m.redis],
    ['commit', `${m.commit}, tree ${m.dirty}`], ['open-file limit', m.fileLimit], ['load generator', m.loadgen],
    ['binaries', m.stale.length ? `WARNING: ${m.stale.join('; ')}` : 'newer than their sources'],
    ['CPU busy before the run', `${m.busyAtStart.toFixed(0)} % of one core${m.busyAtStart > 25 ? ' (WARNING: not a quiet machine)' : ''}`],
    ['CPU stolen by the hypervisor', `${fmtSteal(m.stealAtStart)} % of one core before the run, ${fmtSteal(m.stealOverRun)} % over it (in "machine CPU %", per step in the steps tables)`],
  ] }));
  out.push('');
  out.push('## Setup');
  out.push('');
  out.push(`- Systems, one at a time, each started fresh for each scenario: **ours** (${SYSTEMS.ours.what}; GATEWAY_THREADS=${opts.gatewayThreads}${opts.gatewayThreads === 0 ? ` (one io thread per core: ${os.cpus().length} here)` : ''}, ROOM_PRESENCE_EVENTS=${opts.roomPresenceEvents ? 1 : 0}, ` +
    'send rate limit and connection caps raised, LOG_LEVEL=warn), **ws peer** (bench/peers/ws_server.mjs), ' +
    '**Socket.IO peer** (bench/peers/socketio_server.mjs, its own PostgreSQL database and Redis). Both PostgreSQL ' +
    'servers are tests/support/servers.sh throwaways (fsync off) on this machine.');
  out.push('- **ours, GATEWAY_THREADS=1** is the same with one gateway io thread, as each peer has one Node event loop; ' +
    '**ours, WS_WRITE_DELAY_MS=20** is ours with that opt-in setting. The goals are judged on **ours**, the defaults.');
  out.push(`- Load: ${m.loadgen}, ${opts.loadgenThreads} thread(s), ${opts.connectConcurrency} connects in flight, ` +
    `64-byte texts. Scenarios 1, 2, 5: ${sz.conns} connections in ${sz.rooms} rooms, ${opts.sendersPerRoom} senders per room; ` +
    `scenario 3: ${sz.s3.conns} connections; scenario 4: ${sz.s4.conns} connections, one per room, all sending.`);
  out.push('- Ratio rows are ours ÷ peer: above 1 is better for rates, below 1 is better for latency, time and memory.');
  out.push('- Server CPU % is percent of one core over the measurement window: ours = gateway(s) + messages + presence ' +
    '(PostgreSQL and Redis not counted, for either side); a peer = its Node process(es). Machine CPU % is every ' +
    `process on the machine (at most ${os.cpus().length * 100} %), PostgreSQL and Redis included, and the time ` +
    'the hypervisor gave this VM\'s CPUs to others (steal, shown beside it: on a shared VM the slow hours may be that).');
  out.push(`- A measurement with load (scenarios 1, 2, 4, 5) during which more than ${STEAL_MAX} % of a core was stolen is ` +
    `made again, up to ${STEAL_REPEATS} more times, and the attempt with the least steal is kept; the steps tables show ` +
    'its steal. Scenario 3 (connects and idle memory) is measured once.');
  out.push('- Scenario 2 runs **ours** and the **ws peer** twice: after the first pass of every system, the ws peer ' +
    'and then ours again (ours, …, ws peer, Socket.IO peer, ws peer, ours), and each keeps its better pass (the ' +
    '"stopped at" column names it and gives both; the steps table lists both passes). The VM\'s speed drifts ' +
    'over minutes, and one pass each would give whichever ran in the slower minutes the lower figure.');
  out.push('');
  for (const id of Object.keys(tables)) {
    out.push(`## ${SCENARIOS[id].title(sz)}`);
    out.push('');
    out.push(mdTable(tables[id]));
    if (tables[id].steps?.rows.length) {
      out.push('');
      out.push('Steps:');
      out.push('');
      out.push(mdTable(tables[id].steps));
    }
    const notes = Object.entries(all[id]).flatMap(([k, x]) => (x.notes ?? []).map((n) => `${SYSTEMS[k].label}: ${n}`));
    if (notes.length) {
      out.push('');
      out.push('Notes from the servers\' logs:');
      out.push('');
      for (const n of notes) out.push(`- ${n.replace(/\n/g, ' ')}`);
    }
    out.push('');
  }
  out.push('## Goals of issue #8');
  out.push('');
  out.push(mdTable({ headers: ['goal', 'figure (ours)', 'verdict'], rows: goals.map((g) => [g.goal, g.figure, g.verdict]) }));
  if (opts.quick) out.push('\n--quick sizes are not the goals\' sizes: these verdicts only show the plumbing works.');
  out.push('');
  out.push('## Raw reports');
  out.push('');
  out.push('<details><summary>chat-loadgen JSON reports (one per run, with the command line)</summary>');
  out.push('');
  for (const id of Object.keys(all)) {
    for (const [k, x] of Object.entries(all[id])) {
      for (const r of x.result?.reports ?? []) {
        out.push(`Scenario ${id}, ${SYSTEMS[k].label}${r.rate_target ? `, ${fmtInt(r.rate_target)} msg/s` : ''}:`);
        out.push('');
        out.push('```json');
        out.push(JSON.stringify(r));
        out.push('```');
        out.push('');
      }
    }
  }
  out.push('</details>');
  out.push('');
  return out.join('\n');
}

// ---- main ---------------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const sz = sizes(opts.quick);
  const command = ['node', 'bench/run.mjs', ...process.argv.slice(2)].join(' ');
  const started = new Date();
  preflight(opts);
  const atStart = await idleCpu();
  const busyAtStart = atStart.busy;
  if (busyAtStart > 25) {
    log(`bench: WARNING: the machine is busy before the run (${busyAtStart.toFixed(0)} % of a core in use): the figures will be noisy`);
  }

  const needsPeerInfra = opts.systems.includes('sio') && opts.only.some((id) => SCENARIOS[id].systems.includes('sio'));
  if (needsPeerInfra) log('bench: starting PostgreSQL + Redis for the peers');
  const infra = needsPeerInfra ? startPeerInfra() : null;
  const m = machine(infra);
  m.busyAtStart = busyAtStart;
  m.stealAtStart = atStart.steal;
  const runCpu = { at: performance.now(), ...machineCpu() };
  log(`bench: ${m.cpu}, ${m.ram}, ${m.kernel}, Node ${m.node}, commit ${m.commit} (${m.dirty})`);

  const all = {};
  const tables = {};
  for (const id of opts.only) {
    const sc = SCENARIOS[id];
    log(`\n==== ${sc.title(sz)}${opts.quick ? ' [quick sizes]' : ''}`);
    all[id] = {};
    for (const key of sc.systems.filter((k) => opts.systems.includes(k))) {
      all[id][key] = await withSystem(key, { replicas: sc.replicas ?? 1, rooms: sc.rooms(sz), opts, infra },
        (sys) => sc.run(sys, key, { sz, opts }));
    }
    const again = (sc.secondPass ?? []).filter((k) => opts.systems.includes(k) && all[id][k]);
    for (const key of again) {
      log(`\n== second pass: ${SYSTEMS[key].label}`);
      const second = await withSystem(key, { replicas: sc.replicas ?? 1, rooms: sc.rooms(sz), opts, infra },
        (sys) => sc.run(sys, key, { sz, opts }));
      all[id][key] = keepBetterPass(all[id][key], second, sc.better, sc.passFigure);
    }
    tables[id] = sc.table(all[id]);
    console.log(`\n${sc.title(sz)}\n\n${mdTable(tables[id])}\n`);
  }
  const goals = evaluateGoals(all, sz, opts.quick);
  const endCpu = machineCpu();
  m.stealOverRun = (100 * (endCpu.steal - runCpu.steal)) / ((performance.now() - runCpu.at) / 1000);
  console.log(`Goals of issue #8${opts.quick ? ' (quick sizes: not meaningful)' : ''}\n\n${mdTable({
    headers: ['goal', 'figure (ours)', 'verdict'], rows: goals.map((g) => [g.goal, g.figure, g.verdict]) })}\n`);

  const day = started.toISOString().slice(0, 10);
  const outPath = path.resolve(opts.out ?? path.join(BENCH, 'results', `${day}-${os.hostname()}${opts.quick ? '-quick' : ''}.md`));
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  fs.writeFileSync(outPath, markdown({ m, opts, sz, command, tables, goals, all, started, finished: new Date() }));
  console.log(`results written to ${path.relative(process.cwd(), outPath) || outPath}`);
}

main().then(
  () => process.exit(0), // runs the exit hooks: the peers' PostgreSQL + Redis are stopped there
  (e) => {
    log(`bench: ${e.stack ?? e.message}`);
    process.exit(1);
  },
);
