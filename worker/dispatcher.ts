// The worker's HTTP dispatcher: an undici Agent whose connect step enforces the target policy
// (shared/targets.ts, docs/api.md §6) on the address it actually connects to.
//
// Checking a URL at enqueue is not enough: a name can resolve to 127.0.0.1 at delivery, and a
// name checked by one lookup can resolve differently on the next (DNS rebinding). So here we
// resolve the name ourselves, check every answer, and hand the checked IP to the socket: there is
// no second lookup for an attacker to race. One Agent serves the whole worker process, so
// keep-alive pooling still works; the check runs once per new connection, not per request.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Agent as AgentType, buildConnector as Connector } from 'undici';
import type { TargetPolicy } from '../shared/targets.ts';
import { withTimeout } from '../shared/timeout.ts';
import { Agent, buildConnector, errors } from './http.ts';

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

export type SafeDispatcherOptions = {
  /** How names are resolved; default dns.lookup (the OS resolver, /etc/hosts included). */
  resolve?: Resolver;
  /** Budget for name resolution and for each TCP/TLS connect; default 10000. */
  connectTimeoutMs?: number;
  /** How long to wait for response headers; default 300000 (undici's default). */
  headersTimeoutMs?: number;
  /** Sockets per origin; default unlimited. */
  connections?: number;
};

/** A connection refused by the target policy. The attempt is `blocked` and is not retried. */
export class TargetBlockedError extends Error {
  readonly code = 'POSTHORN_TARGET_BLOCKED';
  /** The host name or IP literal from the URL. */
  readonly host: string;
  /** The denied address (equal to host for IP literals). */
  readonly address: string;
  /** Short human-readable reason, e.g. "127.0.0.1 is a loopback address". */
  readonly reason: string;

  constructor(host: string, address: string, reason: string) {
    super(host === address ? `target blocked: ${reason}` : `target blocked: ${reason} (${host} resolves to it)`);
    this.name = 'TargetBlockedError';
    this.host = host;
    this.address = address;
    this.reason = reason;
  }
}

/** Finds a TargetBlockedError in err or its cause chain (undici and fetch wrap errors). */
export function findBlockedError(err: unknown): TargetBlockedError | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 8 && cur !== null && typeof cur === 'object'; depth++) {
    if (cur instanceof TargetBlockedError) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * True when err is, or was caused by, a blocked target. Note that when undici or fetch wrapped
 * it, err is the wrapper: use findBlockedError() to read the reason.
 */
export function isBlockedError(err: unknown): err is TargetBlockedError {
  return findBlockedError(err) !== undefined;
}

const defaultResolve: Resolver = (hostname) => lookup(hostname, { all: true });

// Errors that mean "this address is unreachable right now", where the next address of the same
// name may work (typically IPv6 answers on a host without IPv6 routing). Timeouts are not here:
// waiting for the connect timeout once per address would multiply the worst case.
const TRY_NEXT_ADDRESS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EAFNOSUPPORT']);

const connectStep = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  withTimeout(promise, ms, () => new errors.ConnectTimeoutError(`${what} timed out after ${ms} ms`));

export function createSafeDispatcher(policy: TargetPolicy, opts: SafeDispatcherOptions = {}): AgentType {
  const resolve = opts.resolve ?? defaultResolve;
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  const inner = buildConnector({ timeout: timeoutMs });

  const connect: Connector.connector = (options, callback) => {
    let called = false;
    const done: Connector.Callback = (...args) => {
      if (called) return;
      called = true;
      callback(...args);
    };
    const fail = (err: unknown) => done(err instanceof Error ? err : new Error(String(err)), null);

    const { hostname } = options; // undici has already removed the brackets from IPv6 literals
    if (options.httpSocket) {
      // Only proxies upgrade an existing socket; this Agent is never given one, and we could not
      // vouch for where that socket goes.
      return fail(new Error('posthorn dispatcher: TLS upgrade of an existing socket is not supported'));
    }

    // IP literal. net.connect does not call a lookup for these, so check it here.
    if (isIP(hostname) !== 0) {
      const verdict = policy.checkAddress(hostname);
      if (!verdict.ok) return fail(new TargetBlockedError(hostname, hostname, verdict.reason));
      return inner(options, done);
    }

    // Names always go through our resolver (even when nothing will be denied), so there is one
    // resolution path and the resolve option is honoured everywhere.
    const trusted = policy.allowsPrivate || policy.isAllowlistedHost(hostname);
    connectStep(resolve(hostname), timeoutMs, `resolving ${hostname}`).then((answers) => {
      if (answers.length === 0) {
        return fail(Object.assign(new Error(`${hostname} has no addresses`), { code: 'ENOTFOUND', hostname }));
      }
      // If ANY answer is denied, block, rather than connecting to the allowed ones: whoever
      // controls the name controls the whole answer, and a mixed answer (public + 127.0.0.1) is
      // a known trick to get past "connect to the first good one" with retries or fallbacks.
      for (const { address } of trusted ? [] : answers) {
        const verdict = policy.checkAddress(address);
        if (!verdict.ok) return fail(new TargetBlockedError(hostname, address, verdict.reason));
      }
      const addresses = answers.map((a) => a.address);
      // Connect to the checked IP, but keep the name for TLS: SNI and certificate checks must
      // use the host name (undici also derives them from options.host, which we keep).
      const servername = options.servername || hostname.replace(/\.$/, '');
      const attempt = (i: number): void => {
        inner({ ...options, hostname: addresses[i]!, servername }, (err, socket) => {
          const code = (err as NodeJS.ErrnoException | null)?.code;
          if (err && code !== undefined && TRY_NEXT_ADDRESS.has(code) && i + 1 < addresses.length) {
            return attempt(i + 1);
          }
          if (err) return done(err, null);
          done(null, socket!);
        });
      };
      attempt(0);
    }, fail);
  };

  return new Agent({
    connect,
    headersTimeout: opts.headersTimeoutMs,
    connections: opts.connections,
  });
}
