// Starts the whole chat suite from real binaries for end-to-end tests:
// PostgreSQL + Redis (tests/support/servers.sh), chat-messages, chat-presence and N chat-gateway
// replicas from $CHAT_BIN_DIR, each on free 127.0.0.1 ports, sharing one JWT secret.
//
//   const stack = await startStack({ gateways: 2 });   // waits for every gateway's /readyz
//   stack.gateways[0].wsUrl                            // ws://127.0.0.1:PORT/ws
//   await stack.stopProc('gateway-1'); await stack.startProc('gateway-1');  // SIGTERM; same ports again
//   await stack.killProc('messages');                  // SIGKILL
//   await stack.restartRedis({ downMs: 1000 });        // same port; nothing kept (no persistence)
//   await stack.restartPostgres({ downMs: 2000 });     // pg_ctl stop -m fast, start; same port + data
//   await stack.psql('SELECT count(*) FROM messages')  // rows as arrays of strings
//   stack.rssBytes('gateway-0'); await stack.metrics('gateway-0')
//   await stack.teardown();                            // always: SIGTERM, SIGKILL after a timeout, rm -rf
//
// Every process's stdout+stderr goes to <tmpdir>/<name>.log; printLogTails() shows their ends. A
// process that exits while it should run is recorded in stack.unexpectedExits and its log tail printed.
import { spawn, execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { mintToken } from './client.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
const SERVERS_SH = path.join(REPO_ROOT, 'tests', 'support', 'servers.sh');
const INFRA_SH = path.join(REPO_ROOT, 'scripts', 'lib', 'infra.sh');

// Generous: the binaries may run under AddressSanitizer on 2 cores.
const START_TIMEOUT_MS = Number(process.env.E2E_START_TIMEOUT_MS || 120_000);
const STOP_TIMEOUT_MS = Number(process.env.E2E_STOP_TIMEOUT_MS || 15_000);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- ports ---------------------------------------------------------------------------------------

const handedOut = new Set();

function canListen(port, host) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A random free TCP port below the kernel's ephemeral range, never the same twice in this process. */
export async function freePort() {
  let lo = 20000;
  let hi = 32000;
  try {
    const [elo] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (elo - lo < 2000) {
      lo = 20000;
      hi = 60000;
    } else hi = elo - 1;
  } catch {
    /* keep the defaults */
  }
  for (let i = 0; i < 500; i++) {
    const port = lo + crypto.randomInt(hi - lo);
    if (handedOut.has(port)) continue;
    if ((await canListen(port, '0.0.0.0')) && (await canListen(port, '127.0.0.1'))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found');
}

// ---- probes --------------------------------------------------------------------------------------

/** One HTTP request; `ca` (a PEM string) makes it HTTPS, trusting that certificate. */
export function httpGet(port, urlPath, { timeoutMs = 5000, headers = {}, method = 'GET', body, ca } = {}) {
  return new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port, path: urlPath, method, headers, timeout: timeoutMs, ...(ca ? { ca } : {}) };
    const req = (ca ? https : http).request(opts, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath}: timeout`)));
    req.on('error', reject);
    req.end(body);
  });
}

function tcpReachable(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function tail(file, lines = 40) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch (e) {
    return `(no log: ${e.message})`;
  }
}

// ---- processes -----------------------------------------------------------------------------------

class Proc {
  constructor(stack, { name, bin, env, ready }) {
    this.stack = stack;
    this.name = name;
    this.bin = bin;
    this.env = env;
    this.ready = ready; // async () => boolean
    this.logPath = path.join(stack.dir, `${name}.log`);
    this.child = null;
    this.exited = null; // promise of {code, signal}
    this.expectExit = false;
    this.starts = 0;
  }

  get running() {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  spawn() {
    if (this.running) throw new Error(`${this.name} is already running`);
    const fd = fs.openSync(this.logPath, 'a');
    this.starts += 1;
    fs.writeSync(fd, `\n===== e2e: start #${this.starts} of ${this.name} at ${new Date().toISOString()} =====\n`);
    const child = spawn(this.bin, [], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', fd, fd],
    });
    fs.closeSync(fd);
    this.child = child;
    this.expectExit = false;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (!this.expectExit) {
          const what = `${this.name} (pid ${child.pid}) exited unexpectedly: code ${code} signal ${signal}`;
          this.stack.unexpectedExits.push(what);
          console.error(`\n!!! ${what}\n--- tail of ${this.logPath}\n${tail(this.logPath)}\n---`);
        }
        resolve({ code, signal });
      });
      child.once('error', (err) => {
        this.stack.unexpectedExits.push(`${this.name}: ${err.message}`);
        resolve({ code: -1, signal: null, error: err });
      });
    });
  }

  async waitReady(timeoutMs = START_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`${this.name} exited during start-up\n--- tail of ${this.logPath}\n${tail(this.logPath)}`);
      }
      try {
        if (await this.ready()) return;
      } catch {
        /* not yet */
      }
      await sleep(100);
    }
    throw new Error(`${this.name} not ready within ${timeoutMs} ms\n--- tail of ${this.logPath}\n${tail(this.logPath)}`);
  }

  async start() {
    this.spawn();
    await this.waitReady();
  }

  /** SIGTERM (or `signal`), then SIGKILL after timeoutMs. Resolves with {code, signal}. */
  async stop({ signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS } = {}) {
    if (!this.child) return null;
    if (!this.running) return this.exited;
    this.expectExit = true;
    this.child.kill(signal);
    const timer = new Promise((r) => setTimeout(() => r('timeout'), timeoutMs));
    const first = await Promise.race([this.exited, timer]);
    if (first === 'timeout') {
      console.error(`e2e: ${this.name} did not exit ${timeoutMs} ms after ${signal}; sending SIGKILL`);
      this.child.kill('SIGKILL');
      const res = await this.exited;
      return { ...res, forced: true };
    }
    return first;
  }

  kill() {
    if (!this.running) return this.exited;
    this.expectExit = true;
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

// ---- the stack -----------------------------------------------------------------------------------

const liveStacks = new Set();

function emergencyCleanup() {
  for (const s of liveStacks) s.teardownSync();
}
process.once('exit', emergencyCleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    emergencyCleanup();
    process.exit(128 + (os.constants.signals[sig] ?? 1));
  });
}

export class Stack {
  constructor({ gateways = 2, binDir = process.env.CHAT_BIN_DIR, env = {}, logLevel = process.env.E2E_LOG_LEVEL || 'info' } = {}) {
    if (!binDir) throw new Error('CHAT_BIN_DIR is not set (the folder holding chat-gateway, chat-messages, chat-presence)');
    this.binDir = path.resolve(binDir);
    for (const b of ['chat-gateway', 'chat-messages', 'chat-presence']) {
      if (!fs.existsSync(path.join(this.binDir, b))) throw new Error(`${b} not found in ${this.binDir}`);
    }
    this.nGateways = gateways;
    this.extraEnv = env;
    this.logLevel = logLevel;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-e2e-'));
    fs.chmodSync(this.dir, 0o755);
    this.serversDir = path.join(this.dir, 'servers');
    this.serversUp = false;
    this.secret = crypto.randomBytes(32).toString('hex');
    this.procs = new Map();
    this.gateways = [];
    this.unexpectedExits = [];
    this.tornDown = false;
    liveStacks.add(this);
  }

  async start() {
    try {
      await this._startServers();
      await this._defineProcs();
      await this.proc('messages').start();
      await this.proc('presence').start();
      await Promise.all(this.gateways.map((g) => this.proc(g.name).start()));
      console.log(`e2e: stack up in ${this.dir}: messages :${this.ports.messages}, presence :${this.ports.presence}, ` +
        `gateways ${this.gateways.map((g) => `:${g.httpPort}`).join(' ')}`);
      return this;
    } catch (err) {
      this.printLogTails();
      await this.teardown();
      throw err;
    }
  }

  async _startServers() {
    this.serversUp = true; // from here on teardown runs servers.sh stop (harmless if start failed)
    await new Promise((resolve, reject) => {
      execFile('bash', [SERVERS_SH, 'start', this.serversDir], { timeout: START_TIMEOUT_MS }, (err, stdout, stderr) => {
        fs.writeFileSync(path.join(this.dir, 'servers.log'), `${stdout}${stderr}`);
        if (err) reject(new Error(`servers.sh start failed: ${err.message}\n${stderr}`));
        else resolve();
      });
    });
    this.serversEnv = {};
    for (const line of fs.readFileSync(path.join(this.serversDir, 'env'), 'utf8').split('\n')) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
      if (m) this.serversEnv[m[1]] = m[2];
    }
  }

  async _defineProcs() {
    const common = {
      LOG_LEVEL: this.logLevel,
      REDIS_ADDR: this.serversEnv.REDIS_ADDR,
    };
    const ports = {
      messages: await freePort(),
      messagesMetrics: await freePort(),
      presence: await freePort(),
      presenceMetrics: await freePort(),
    };
    this.ports = ports;
    this._add('messages', 'chat-messages', {
      ...common,
      MESSAGES_GRPC_ADDR: `127.0.0.1:${ports.messages}`,
      MESSAGES_METRICS_ADDR: `127.0.0.1:${ports.messagesMetrics}`,
      DATABASE_URL: this.serversEnv.DATABASE_URL,
      ...this.extraEnv.messages,
    }, () => tcpReachable(ports.messages));
    this._add('presence', 'chat-presence', {
      ...common,
      PRESENCE_GRPC_ADDR: `127.0.0.1:${ports.presence}`,
      PRESENCE_METRICS_ADDR: `127.0.0.1:${ports.presenceMetrics}`,
      ...this.extraEnv.presence,
    }, () => tcpReachable(ports.presence));
    for (let i = 0; i < this.nGateways; i++) {
      const g = { name: `gateway-${i}`, index: i, httpPort: await freePort(), grpcPort: await freePort() };
      g.wsUrl = `ws://127.0.0.1:${g.httpPort}/ws`;
      g.httpUrl = `http://127.0.0.1:${g.httpPort}`;
      this.gateways.push(g);
      this._add(g.name, 'chat-gateway', {
        ...common,
        GATEWAY_HTTP_ADDR: `127.0.0.1:${g.httpPort}`,
        GATEWAY_GRPC_ADDR: `127.0.0.1:${g.grpcPort}`,
        GATEWAY_ID: g.name,
        GATEWAY_THREADS: '2',
        MESSAGES_ADDR: `127.0.0.1:${ports.messages}`,
        PRESENCE_ADDR: `127.0.0.1:${ports.presence}`,
        JWT_SECRET: this.secret,
        DEV_LOGIN: '0',
        WEB_ROOT: path.join(REPO_ROOT, 'services', 'gateway', 'web'),
        ...this.extraEnv.gateway,
      }, async () => (await httpGet(g.httpPort, '/readyz', { timeoutMs: 2000 })).status === 200);
    }
  }

  _add(name, binName, env, ready) {
    this.procs.set(name, new Proc(this, { name, bin: path.join(this.binDir, binName), env, ready }));
  }

  proc(name) {
    const p = this.procs.get(name);
    if (!p) throw new Error(`no process named ${name} (have: ${[...this.procs.keys()].join(', ')})`);
    return p;
  }

  /** Starts (again, on the same ports and database) a stopped process and waits until it is ready. */
  startProc(name) {
    return this.proc(name).start();
  }

  /** SIGTERM (or opts.signal), then SIGKILL after opts.timeoutMs. Resolves with {code, signal, forced}. */
  stopProc(name, opts) {
    return this.proc(name).stop(opts);
  }

  /** kill -9; resolves when it is gone. */
  killProc(name) {
    return this.proc(name).kill();
  }

  /** Stops `name` gracefully and starts it again on the same ports. */
  async restartProc(name) {
    await this.stopProc(name);
    await this.startProc(name);
  }

  // ---- PostgreSQL and Redis (the servers of tests/support/servers.sh) ----------------------------

  /** Runs one function of scripts/lib/infra.sh with args; resolves with its stdout. */
  _infra(fn, ...args) {
    return new Promise((resolve, reject) => {
      execFile('bash', ['-c', 'set -euo pipefail; source "$1"; shift; "$@"', 'infra', INFRA_SH, fn, ...args],
        { timeout: START_TIMEOUT_MS }, (err, stdout, stderr) => {
          if (err) reject(new Error(`infra.sh ${fn} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
          else resolve(stdout);
        });
    });
  }

  get redisDir() {
    return path.join(this.serversDir, 'redis');
  }

  /** Stops Redis (SIGTERM; it keeps nothing on disk). */
  async stopRedis() {
    await this._infra('redis_stop', this.redisDir);
  }

  /** Starts Redis again on its port (throws when the port was taken meanwhile). */
  async startRedis() {
    await this._infra('redis_start', this.redisDir, this.serversEnv.REDIS_PORT);
  }

  async restartRedis({ downMs = 0 } = {}) {
    await this.stopRedis();
    if (downMs > 0) await sleep(downMs);
    await this.startRedis();
  }

  /** Stops PostgreSQL (pg_ctl stop -m fast: open connections are terminated). */
  async stopPostgres() {
    await this._infra('pg_stop', this.serversEnv.PG_DATA);
  }

  /** Starts PostgreSQL again on the same port and data dir; resolves when it accepts connections. */
  async startPostgres() {
    await this._infra('pg_start', this.serversEnv.PG_DATA, this.serversEnv.PG_PORT, 'fast');
  }

  async restartPostgres({ downMs = 0 } = {}) {
    await this.stopPostgres();
    if (downMs > 0) await sleep(downMs);
    await this.startPostgres();
  }

  /** True when Redis / PostgreSQL accept TCP connections on their ports. */
  redisReachable() {
    return tcpReachable(Number(this.serversEnv.REDIS_PORT));
  }

  postgresReachable() {
    return tcpReachable(Number(this.serversEnv.PG_PORT));
  }

  /** Runs SQL as role chat in database chat; resolves with the rows, each an array of strings. */
  psql(sql) {
    const psql = path.join(this.serversEnv.PG_BIN, 'psql');
    const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', this.serversEnv.PG_PORT,
      '-U', 'chat', '-d', 'chat', '-tA', '-F', '\t', '-c', sql];
    return new Promise((resolve, reject) => {
      execFile(psql, args, { timeout: 60_000, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`psql ${sql.slice(0, 200)}: ${err.message}\n${stderr}`));
        else resolve(stdout.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t')));
      });
    });
  }

  // ---- process probes ----------------------------------------------------------------------------

  pid(name) {
    const p = this.proc(name);
    return p.running ? p.child.pid : null;
  }

  /** Resident set size of a running process in bytes (VmRSS of /proc/PID/status). */
  rssBytes(name) {
    const pid = this.pid(name);
    if (pid === null) throw new Error(`${name} is not running`);
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (!m) throw new Error(`no VmRSS for ${name} (pid ${pid})`);
    return Number(m[1]) * 1024;
  }

  /** The Prometheus text of a gateway's /metrics (name 'gateway-N') or of messages/presence. */
  async metricsText(name) {
    let port;
    if (name === 'messages') port = this.ports.messagesMetrics;
    else if (name === 'presence') port = this.ports.presenceMetrics;
    else port = this.gateways.find((g) => g.name === name)?.httpPort;
    if (!port) throw new Error(`no metrics port for ${name}`);
    const r = await httpGet(port, '/metrics', { ca: this.gateways.find((g) => g.name === name)?.ca });
    if (r.status !== 200) throw new Error(`GET /metrics of ${name}: HTTP ${r.status}`);
    return r.body;
  }

  /** Every metric of process `name` summed over its label sets: Map metric name -> number. */
  async metricSums(name) {
    const text = await this.metricsText(name);
    const sums = new Map();
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m) sums.set(m[1], (sums.get(m[1]) ?? 0) + Number(m[3]));
    }
    return sums;
  }

  /** Sum of every sample of metric `metric` (all label sets) on process `name`; 0 when absent. */
  async metric(name, metric) {
    return (await this.metricSums(name)).get(metric) ?? 0;
  }

  /** Waits until every gateway answers /readyz with 200. */
  async waitAllReady(timeoutMs = START_TIMEOUT_MS) {
    await Promise.all(this.gateways.map((g) => this.proc(g.name).waitReady(timeoutMs)));
  }

  /** A valid token for user `sub` signed with this stack's JWT_SECRET; opts as in mintToken. */
  token(sub, opts = {}) {
    return mintToken(this.secret, { sub, ...opts });
  }

  printLogTails(lines = 60) {
    for (const p of this.procs.values()) {
      console.error(`\n--- tail of ${p.logPath}\n${tail(p.logPath, lines)}`);
    }
    const pgLog = path.join(this.serversDir, 'pg', 'postgres.log');
    if (fs.existsSync(pgLog)) console.error(`\n--- tail of ${pgLog}\n${tail(pgLog, 20)}`);
  }

  /** Stops everything (gateways first) and removes the temp dir; safe to call twice. */
  async teardown({ keepDir = process.env.E2E_KEEP === '1' } = {}) {
    if (this.tornDown) return;
    this.tornDown = true;
    const order = [...this.gateways.map((g) => g.name), 'presence', 'messages'].filter((n) => this.procs.has(n));
    for (const name of order) {
      const p = this.proc(name);
      if (p.running) {
        const res = await p.stop();
        if (res?.forced) console.error(`e2e: ${name} needed SIGKILL at teardown`);
      }
    }
    if (this.serversUp) {
      spawnSync('bash', [SERVERS_SH, 'stop', this.serversDir], { stdio: 'inherit', timeout: 120_000 });
      this.serversUp = false;
    }
    if (keepDir) console.error(`e2e: kept logs in ${this.dir}`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
    liveStacks.delete(this);
  }

  /** For process exit: kill -9 everything, stop the servers, synchronously. */
  teardownSync() {
    if (this.tornDown) return;
    this.tornDown = true;
    for (const p of this.procs.values()) {
      if (p.running) {
        p.expectExit = true;
        try {
          p.child.kill('SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    if (this.serversUp) spawnSync('bash', [SERVERS_SH, 'stop', this.serversDir], { stdio: 'ignore', timeout: 60_000 });
    if (process.env.E2E_KEEP !== '1') fs.rmSync(this.dir, { recursive: true, force: true });
    liveStacks.delete(this);
  }
}

/** Creates and starts a stack; see Stack's constructor for options. */
export async function startStack(opts) {
  return new Stack(opts).start();
}

/**
 * Starts one more chat-gateway replica on fresh ports with gateway-0's environment plus `env` (e.g.
 * { MAX_CONNECTIONS: '3', ALLOWED_ORIGINS: 'https://app.example.com' }) and waits for its /readyz. It is
 * appended to stack.gateways (so teardown, metrics and waitAllReady include it); resolves with its entry.
 */
export async function addGateway(stack, env = {}) {
  const base = stack.proc('gateway-0').env;
  const index = stack.gateways.length;
  const g = { name: `gateway-${index}`, index, httpPort: await freePort(), grpcPort: await freePort() };
  // With TLS_CERT_FILE the replica speaks only https/wss; g.ca is the certificate to trust.
  const ca = env.TLS_CERT_FILE ? fs.readFileSync(env.TLS_CERT_FILE, 'utf8') : undefined;
  g.ca = ca;
  g.wsUrl = `${ca ? 'wss' : 'ws'}://127.0.0.1:${g.httpPort}/ws`;
  g.httpUrl = `${ca ? 'https' : 'http'}://127.0.0.1:${g.httpPort}`;
  stack._add(g.name, 'chat-gateway', {
    ...base,
    GATEWAY_HTTP_ADDR: `127.0.0.1:${g.httpPort}`,
    GATEWAY_GRPC_ADDR: `127.0.0.1:${g.grpcPort}`,
    GATEWAY_ID: g.name,
    ...env,
  }, async () => (await httpGet(g.httpPort, '/readyz', { timeoutMs: 2000, ca })).status === 200);
  stack.gateways.push(g);
  await stack.startProc(g.name);
  return g;
}
