// What both peer servers share: the port from the command line, the user name from a token, the
// /healthz answer and a clean exit on SIGTERM. Kept tiny so each server file reads on its own.

/** `--port N`, `--port=N` or env PORT; 0 (the default) means a free port, printed at startup. */
export function portFromArgs(argv = process.argv.slice(2)) {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') return Number(argv[i + 1]);
    if (argv[i].startsWith('--port=')) return Number(argv[i].slice('--port='.length));
  }
  return Number(process.env.PORT || 0);
}

// Loopback by default: the harness runs peers next to the load generator, and nothing else should reach them.
export const HOST = process.env.HOST || '127.0.0.1';

/**
 * The `sub` claim of a JWT, read from its base64url middle part WITHOUT checking the signature: the
 * peers only need a stable user name to put in `from`, and verifying would add work the gateway does
 * but these servers, as written in the tutorials, do not. Returns undefined when there is no usable sub.
 */
export function subFromToken(token) {
  if (typeof token !== 'string') return undefined;
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const sub = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')).sub;
    return typeof sub === 'string' && sub !== '' ? sub : undefined;
  } catch {
    return undefined;
  }
}

/** Answers GET /healthz with 200 "ok" and returns true; false for any other request. */
export function serveHealthz(req, res) {
  if (req.method !== 'GET' || new URL(req.url, 'http://x').pathname !== '/healthz') return false;
  res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
  return true;
}

/**
 * On SIGTERM (and SIGINT) runs `close` once and exits 0, or 1 if it throws. A timer forces the exit
 * if closing hangs (a peer that never sends its close frame must not keep the harness waiting).
 */
export function exitOnSignal(close, forceAfterMs = 5000) {
  let closing = false;
  const onSignal = async (sig) => {
    if (closing) return;
    closing = true;
    setTimeout(() => {
      console.error(`${sig}: close did not finish in ${forceAfterMs} ms, exiting`);
      process.exit(1);
    }, forceAfterMs).unref();
    try {
      await close();
      process.exit(0);
    } catch (err) {
      console.error(`${sig}: close failed:`, err);
      process.exit(1);
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
