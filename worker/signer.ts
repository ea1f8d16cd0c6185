// Signs every delivery with its team's secrets (docs/api.md §4 "Delivery"). Secrets are read from
// team_signing_keys through a small per-process cache: a worker delivering thousands of tasks a
// second for a handful of teams asks the database about each team once per TTL_MS, and
// concurrent misses share one query (all missing teams at once). A rotation or a deleted
// previous key therefore reaches deliveries within TTL_MS (+ one query).
import type { Sql } from '../shared/db.ts';
import { secretBytes, webhookHeaders } from '../shared/signing.ts';
import { createTtlCache } from '../shared/ttl-cache.ts';
import { sentBody } from './executor.ts';
import type { ClaimedTask } from './producer.ts';

export const TTL_MS = 2000;
const CACHE_MAX = 10_000;

type Entry = { current: Buffer; previous: Buffer | null; previousUntil: number };

export type SignerOptions = { ttlMs?: number; now?: () => number };

export function createSigner(sql: Sql, opts: SignerOptions = {}) {
  const ttlMs = opts.ttlMs ?? TTL_MS;
  const now = opts.now ?? Date.now;
  const cache = createTtlCache<Entry>({ ttlMs, max: CACHE_MAX, now });
  // Teams wanted by the load that has not been sent yet, and the promise it will settle.
  let wanted: Set<string> | null = null;
  let nextLoad: Promise<void> | null = null;
  const inFlight = new Map<string, Promise<void>>();

  async function load(teamIds: string[]) {
    const rows = await sql<{ team_id: string; current_secret: string; previous_secret: string | null; previous_expires_at: Date | null }[]>`
      select team_id::text, current_secret,
        case when previous_expires_at > now() then previous_secret end as previous_secret,
        case when previous_expires_at > now() then previous_expires_at end as previous_expires_at
      from team_signing_keys where team_id = any(${teamIds}::bigint[])`;
    for (const r of rows) {
      cache.set(r.team_id, {
        current: secretBytes(r.current_secret),
        previous: r.previous_secret ? secretBytes(r.previous_secret) : null,
        previousUntil: r.previous_expires_at ? r.previous_expires_at.getTime() : 0,
      });
    }
  }

  /** Queues teamId for the next batched load (sent after the current tick's misses gather). */
  function refresh(teamId: string): Promise<void> {
    const running = inFlight.get(teamId);
    if (running) return running;
    if (!wanted) {
      const batch = (wanted = new Set());
      nextLoad = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        wanted = null;
        return load([...batch]);
      });
      const settled = nextLoad.finally(() => {
        for (const id of batch) inFlight.delete(id);
      });
      settled.catch(() => {});
    }
    wanted!.add(teamId);
    inFlight.set(teamId, nextLoad!);
    return nextLoad!;
  }

  async function keysFor(teamId: string): Promise<Buffer[]> {
    let entry = cache.get(teamId);
    if (!entry) {
      entry = cache.stale(teamId);
      try {
        await refresh(teamId);
      } catch (err) {
        // The database is away: keep signing with what we had (it was right TTL_MS ago); with
        // nothing cached the attempt fails and is retried rather than sent unsigned.
        if (!entry) throw new Error(`signing keys unavailable: ${(err as Error).message}`, { cause: err });
      }
      entry = cache.stale(teamId) ?? entry;
      if (!entry) throw new Error(`team ${teamId} has no signing key`);
    }
    return entry.previous && now() < entry.previousUntil ? [entry.current, entry.previous] : [entry.current];
  }

  /** ExecutorDeps.sign: adds webhook-id, webhook-timestamp and webhook-signature. */
  async function sign(task: ClaimedTask, headers: Record<string, string>) {
    const keys = await keysFor(task.team_id);
    Object.assign(headers, webhookHeaders(keys, task.id, Math.floor(now() / 1000), sentBody(task) ?? ''));
  }

  return { sign, keysFor };
}

export type Signer = ReturnType<typeof createSigner>;
