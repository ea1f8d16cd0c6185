// The credentials of tasks that name a connection (docs/connections.md): the `authorization`
// header a delivery carries, resolved at send time.
//
// OAuth2 tokens are shared by the fleet through connection_tokens (sealed, usable until 60 s
// before they expire). A worker that finds none takes a transaction-scoped advisory lock on the
// connection, reads the cache again (another worker may just have filled it), and only then
// asks the token endpoint: however many attempts and workers want a token at once, one request
// goes out. Within a process, concurrent attempts for one connection share one lookup, so only
// one of them holds a database connection while it waits for the lock.
//
// Each process also keeps what it resolved for MEMORY_TTL_MS: 200 tasks a second for one
// connection cost ~1 lookup per 2 s, and a deleted or changed connection reaches deliveries
// within that.
import type { Dispatcher } from 'undici';
import {
  type ConnectionSecret,
  type ConnectionSettings,
  type ConnectionType,
  connectionAad,
  NO_SECRET_KEY,
  tokenAad,
} from '../../shared/connections.ts';
import type { Sql } from '../../shared/db.ts';
import type { SecretBox } from '../../shared/secret-box.ts';
import { createTtlCache } from '../../shared/ttl-cache.ts';
import type { ClaimedTask } from '../producer.ts';
import { AuthError, fetchToken } from './oauth.ts';

export { AuthError };

export const MEMORY_TTL_MS = 2000;
/** Tokens are used until this long before they expire (docs/connections.md). */
export const EXPIRY_MARGIN_S = 60;
/** The token request's own budget, whichever attempt started it. */
const TOKEN_TIMEOUT_MS = 10_000;

type Resolved = { header: string; type: ConnectionType; token: string | null; usableUntil: number };
type Flight = { promise: Promise<Resolved>; rejected: string | null };

export type CredentialsOptions = {
  sql: Sql;
  /** null: POSTHORN_SECRET_KEY unset; every task with auth fails as auth_error, saying so. */
  box: SecretBox | null;
  dispatcher: Dispatcher;
  now?: () => number;
  memoryTtlMs?: number;
};

export type Credentials = {
  /** Sets headers.authorization for the task's connection; throws AuthError. */
  apply(task: ClaimedTask, headers: Record<string, string>, signal: AbortSignal): Promise<void>;
  /**
   * After a 401: for an OAuth2 connection, a token other than the one sent (from the fleet's
   * cache when another worker renewed it, else fetched) goes into headers, and true says "send
   * again". false for bearer and basic: there is nothing to renew.
   */
  renew(task: ClaimedTask, headers: Record<string, string>, signal: AbortSignal): Promise<boolean>;
};

/** Rejects with the signal's reason when the attempt is aborted first (its timeout, shutdown). */
function raced<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function createCredentials(o: CredentialsOptions): Credentials {
  const { sql, box } = o;
  const now = o.now ?? Date.now;
  const cache = createTtlCache<Resolved>({ ttlMs: o.memoryTtlMs ?? MEMORY_TTL_MS, max: 10_000, now });
  const flights = new Map<string, Flight>();

  type Row = {
    id: string;
    type: ConnectionType;
    settings: ConnectionSettings;
    secret: string;
    token: string | null;
    ttl_ms: number | null;
  };

  function resolvedToken(token: string, ttlMs: number): Resolved {
    return { header: `Bearer ${token}`, type: 'oauth2_client_credentials', token, usableUntil: now() + ttlMs };
  }

  async function load(teamId: string, name: string, rejected: string | null): Promise<Resolved> {
    if (!box) throw new AuthError(NO_SECRET_KEY);
    const [row] = await sql<Row[]>`
      select c.id, c.type, c.settings, c.secret, t.token, extract(epoch from t.usable_until - now()) * 1000 as ttl_ms
      from connections c
      left join connection_tokens t on t.team_id = c.team_id and t.connection_id = c.id and t.usable_until > now()
      where c.team_id = ${teamId} and c.name = ${name}`;
    if (!row) throw new AuthError(`connection "${name}" does not exist (deleted?); create it or change the task's auth`);
    const secret = JSON.parse(box.open(row.secret, connectionAad(teamId, row.id))) as ConnectionSecret;
    if (row.type === 'bearer') return { header: `Bearer ${secret.token}`, type: row.type, token: null, usableUntil: Infinity };
    if (row.type === 'basic') {
      const pair = Buffer.from(`${row.settings.username}:${secret.password}`).toString('base64');
      return { header: `Basic ${pair}`, type: row.type, token: null, usableUntil: Infinity };
    }
    if (row.token !== null) {
      const token = box.open(row.token, tokenAad(teamId, row.id));
      if (token !== rejected) return resolvedToken(token, Number(row.ttl_ms));
    }
    return fetchLocked(teamId, row, secret.client_secret ?? '', rejected);
  }

  function fetchLocked(teamId: string, conn: Row, clientSecret: string, rejected: string | null): Promise<Resolved> {
    return sql.begin(async (tx) => {
      // Two-int advisory keys do not overlap the one-bigint keys used elsewhere (the elector).
      await tx`select pg_advisory_xact_lock(hashtext('posthorn:connection-token'), hashtext(${`${teamId}:${conn.id}`}))`;
      const [cached] = await tx<{ token: string; ttl_ms: number }[]>`
        select token, extract(epoch from usable_until - now()) * 1000 as ttl_ms from connection_tokens
        where team_id = ${teamId} and connection_id = ${conn.id} and usable_until > now()`;
      if (cached) {
        const token = box!.open(cached.token, tokenAad(teamId, conn.id));
        if (token !== rejected) return resolvedToken(token, Number(cached.ttl_ms));
      }
      const fetched = await fetchToken(conn.settings, clientSecret, {
        dispatcher: o.dispatcher,
        signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
        timeoutMs: TOKEN_TIMEOUT_MS,
      });
      const keepS = fetched.expiresInS - EXPIRY_MARGIN_S;
      if (keepS > 0) {
        await tx`
          insert into connection_tokens (team_id, connection_id, token, usable_until)
          values (${teamId}, ${conn.id}, ${box!.seal(fetched.accessToken, tokenAad(teamId, conn.id))}, now() + ${keepS} * interval '1 second')
          on conflict (team_id, connection_id) do update
            set token = excluded.token, usable_until = excluded.usable_until, fetched_at = now()`;
      } else {
        // Too short-lived to share: used by the attempts waiting now, fetched again after.
        await tx`delete from connection_tokens where team_id = ${teamId} and connection_id = ${conn.id}`;
      }
      return resolvedToken(fetched.accessToken, Math.max(0, keepS) * 1000);
    });
  }

  /** One lookup per (team, connection) at a time in this process; `rejected`: a token a target refused. */
  function start(key: string, teamId: string, name: string, rejected: string | null): Flight {
    const flight: Flight = {
      rejected,
      promise: load(teamId, name, rejected).then((r) => {
        if (r.usableUntil > now()) cache.set(key, r);
        return r;
      }),
    };
    flights.set(key, flight);
    void flight.promise.then(
      () => flights.delete(key),
      () => flights.delete(key),
    );
    return flight;
  }

  async function resolve(task: ClaimedTask, signal: AbortSignal, rejected: string | null): Promise<Resolved> {
    const name = task.auth_connection!;
    const key = `${task.team_id}\0${name}`;
    if (rejected === null) {
      const hit = cache.get(key);
      if (hit && now() < hit.usableUntil) return hit;
    }
    // Join a lookup in flight unless it can only hand back the token the target just refused.
    for (let f = flights.get(key); f; f = flights.get(key)) {
      const r = await raced(f.promise, signal);
      if (rejected === null || r.token !== rejected || f.rejected === rejected) return r;
    }
    return raced(start(key, task.team_id, name, rejected).promise, signal);
  }

  /** Errors that are not AuthError (the database away, a secret that does not open) become one. */
  async function guarded<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AuthError || signal.aborted) throw err;
      throw new AuthError(`credentials unavailable: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  return {
    apply: (task, headers, signal) =>
      guarded(signal, async () => {
        headers.authorization = (await resolve(task, signal, null)).header;
      }),
    renew: (task, headers, signal) =>
      guarded(signal, async () => {
        const sent = headers.authorization;
        if (!sent?.startsWith('Bearer ')) return false;
        const key = `${task.team_id}\0${task.auth_connection}`;
        const known = cache.stale(key);
        if (known && known.type !== 'oauth2_client_credentials') return false;
        const r = await resolve(task, signal, sent.slice('Bearer '.length));
        if (r.type !== 'oauth2_client_credentials') return false;
        headers.authorization = r.header;
        return true;
      }),
  };
}
