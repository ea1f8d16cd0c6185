// Rate limits shared by every gateway process (docs/api.md §2), counted in PostgreSQL with
// rate-limiter-flexible's PostgreSQL store (table rate_limits, migration 002; no Redis):
//  - per API key: POSTHORN_RATE_LIMIT, or the team's own limit set through the operator API;
//    fixed windows that start with a key's first request; 429 rate_limited with Retry-After;
//  - failed authentication per client address (gateway/client-address.ts: the peer, or the
//    client named by X-Forwarded-For when the peer is in POSTHORN_TRUSTED_PROXIES): 20 failures in a minute, then requests from
//    that address with a key that does not authenticate get 429 until the minute is over.
//    A valid key never consults this counter, so it is never refused by it.
// Costs, and why (docs/auth.md has the measurements): a busy key's requests are counted
// together, one UPSERT per key per round trip (like the enqueue group commit), on a row of an
// UNLOGGED table. One UPSERT per request cost 25% of enqueue throughput at 64 in flight (49%
// more CPU per task); grouped, under 2%. Once a window is used up, the library's in-memory
// block answers 429 for the rest of that window without asking the database
// (inMemoryBlockOnConsumed = points). When the database errors, each process falls back to an
// in-memory limiter with the same limit (insuranceLimiter): the fleet then allows at most
// <gateways> × the limit until it is back.
import type { Context, MiddlewareHandler } from 'hono';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimit, TrustedProxies } from '../shared/config.ts';
import type { Sql, SqlParameter } from '../shared/db.ts';
import { problem } from '../shared/errors.ts';
import type { AuthEnv } from './auth.ts';
import { clientIp, clientKey } from './client-address.ts';

/** docs/api.md §2: 20 failures within a minute. */
export const AUTH_FAILURES = { points: 20, windowMs: 60_000 };
const TABLE = 'rate_limits';

/**
 * rate-limiter-flexible talks to a pg Pool (`query({text, values}) → {rows, rowCount}`); this
 * is that interface over postgres.js, so the limiter shares our driver, its connect timeout
 * and its error codes instead of bringing a second PostgreSQL client.
 */
function poolInterface(sql: Sql) {
  return {
    async query(q: { text: string; values?: SqlParameter[] }) {
      const rows = await sql.unsafe(q.text, q.values ?? [], { prepare: true });
      return { rows, rowCount: rows.count };
    },
  };
}

function limiter(sql: Sql, keyPrefix: string, points: number, windowMs: number, clearExpired: boolean) {
  return new RateLimiterPostgres({
    storeClient: poolInterface(sql),
    storeType: 'pool',
    tableName: TABLE,
    tableCreated: true, // by migration 002, UNLOGGED
    clearExpiredByTimeout: clearExpired, // every 5 min: rows expired over an hour ago
    keyPrefix,
    points,
    duration: windowMs / 1000,
    // Window used up → refused in memory until it ends, with no query per refused request.
    inMemoryBlockOnConsumed: points,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix, points, duration: windowMs / 1000 }),
  });
}

type Verdict = { ok: boolean; remaining: number; msBeforeNext: number };

/** 429 rate_limited with Retry-After in whole seconds, at least 1 (a 0 would invite an instant retry into the same refusal). */
function rateLimited(msBeforeNext: number, detail: (retryAfter: string) => string, headers: Record<string, string> = {}) {
  const retryAfter = String(Math.max(1, Math.ceil(msBeforeNext / 1000)));
  return problem('rate_limited', detail(retryAfter), undefined, { ...headers, 'retry-after': retryAfter });
}

/** What a refusal or a pass tells the client (RateLimit-* as in the IETF ratelimit-headers draft). */
function limitHeaders(points: number, v: Verdict): Record<string, string> {
  return {
    'ratelimit-limit': String(points),
    'ratelimit-remaining': String(v.remaining),
    'ratelimit-reset': String(Math.max(0, Math.ceil(v.msBeforeNext / 1000))),
  };
}

/**
 * Counts a key's concurrent requests with one consume(key, n): while a key's UPSERT is in
 * flight, its next requests queue, and go together when it returns (one in flight per key
 * and process; a single request goes at once). The database's running total then says which
 * of the n fit: with `before` points used ahead of the batch, request i passes when
 * before + i + 1 <= points, exactly as n separate consumes in that order would.
 */
function groupedConsumer(l: RateLimiterPostgres, points: number) {
  type Waiter = { resolve: (v: Verdict) => void; reject: (e: unknown) => void };
  const keys = new Map<string, { queue: Waiter[]; busy: boolean }>();

  async function flush(key: string, s: { queue: Waiter[]; busy: boolean }) {
    s.busy = true;
    const batch = s.queue;
    s.queue = [];
    try {
      let res: RateLimiterRes;
      try {
        res = await l.consume(key, batch.length);
      } catch (e) {
        if (!(e instanceof RateLimiterRes)) throw e;
        res = e;
      }
      // A count below our own n means the in-memory block answered (consumedPoints 0): the
      // window is used up and nothing was counted.
      const before = res.consumedPoints >= batch.length ? res.consumedPoints - batch.length : points;
      batch.forEach((w, i) =>
        w.resolve({ ok: before + i + 1 <= points, remaining: Math.max(0, points - (before + i + 1)), msBeforeNext: res.msBeforeNext }),
      );
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      s.busy = false;
      if (s.queue.length) void flush(key, s);
      else keys.delete(key);
    }
  }

  return function take(key: string): Promise<Verdict> {
    let s = keys.get(key);
    if (!s) keys.set(key, (s = { queue: [], busy: false }));
    const state = s;
    return new Promise<Verdict>((resolve, reject) => {
      state.queue.push({ resolve, reject });
      // Wait for the end of this I/O turn so requests that arrived together share the UPSERT.
      if (!state.busy && state.queue.length === 1) setImmediate(() => !state.busy && state.queue.length && void flush(key, state));
    });
  };
}

async function consume(l: RateLimiterPostgres, key: string): Promise<{ ok: boolean; res: RateLimiterRes }> {
  try {
    return { ok: true, res: await l.consume(key) };
  } catch (e) {
    if (e instanceof RateLimiterRes) return { ok: false, res: e };
    throw e;
  }
}

export type GatewayLimits = ReturnType<typeof createGatewayLimits>;

/**
 * `defaultLimit` null = no per-key limit unless a team has its own. `sql` should be a pool of
 * its own (a few connections) so that limiter queries never queue behind enqueue INSERTs.
 */
export function createGatewayLimits(o: {
  sql: Sql;
  defaultLimit: RateLimit | null;
  trustedProxies?: TrustedProxies;
  /** POSTHORN_INBOUND_RATE_LIMIT: requests per inbound endpoint (/in/<slug>); null = none. */
  inboundLimit?: RateLimit | null;
}) {
  const perLimit = new Map<string, (key: string) => Promise<Verdict>>();
  const failures = limiter(o.sql, 'authfail', AUTH_FAILURES.points, AUTH_FAILURES.windowMs, true);

  // One limiter per distinct limit (a handful: the default and the teams' own); the prefix
  // keeps windows of different lengths apart when a team's limit changes.
  function limiterFor(l: RateLimit) {
    const id = `${l.points}/${l.windowMs}`;
    let found = perLimit.get(id);
    if (!found) perLimit.set(id, (found = groupedConsumer(limiter(o.sql, `key${id}`, l.points, l.windowMs, false), l.points)));
    return found;
  }

  /** Per API key, after authentication: counts the request, or refuses it with 429. */
  const perKey: MiddlewareHandler<AuthEnv> = async function rateLimitPerKey(c, next) {
    const p = c.get('principal');
    const limit = p.rateLimit ?? o.defaultLimit;
    if (!limit) return next();
    const verdict = await limiterFor(limit)(p.keyId);
    const headers = limitHeaders(limit.points, verdict);
    if (!verdict.ok)
      throw rateLimited(verdict.msBeforeNext, (s) => `this key may make ${limit.raw} requests; try again in ${s} s`, headers);
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
    await next();
  };

  /**
   * Called when a request fails authentication, before it is answered 401: counts the failure
   * against the client's address, and throws 429 once the address has had 20 this minute.
   */
  async function authFailed(c: Context) {
    const { ok, res } = await consume(failures, clientKey(clientIp(c, o.trustedProxies)));
    if (!ok) throw rateLimited(res.msBeforeNext, (s) => `too many failed authentications from this address; try again in ${s} s`);
  }

  /** Per inbound endpoint (gateway/inbound.ts): counts a request to /in/<slug>, or throws 429. */
  async function perEndpoint(endpointId: string) {
    const limit = o.inboundLimit;
    if (!limit) return;
    const verdict = await limiterFor(limit)(`in:${endpointId}`);
    if (!verdict.ok)
      throw rateLimited(
        verdict.msBeforeNext,
        (s) => `this endpoint takes ${limit.raw} requests; try again in ${s} s`,
        limitHeaders(limit.points, verdict),
      );
  }

  return { perKey, authFailed, perEndpoint };
}
