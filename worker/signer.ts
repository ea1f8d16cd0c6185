// Signs every delivery with its team's secrets (docs/api.md §4 "Delivery"). Secrets are read from
// team_signing_keys through a small per-process cache: a worker delivering thousands of tasks a
// second for a handful of teams asks the database about each team once per TTL_MS, and
// concurrent misses share one query (all missing teams at once). A rotation or a deleted
// previous key therefore reaches deliveries within TTL_MS (+ one query). The same query reads the
// team's current QStash signing key (migration 015) for tasks enqueued through /v2.
import type { Sql } from '../shared/db.ts';
import { upstashHeaders } from '../shared/qstash-signing.ts';
import { secretBytes, webhookHeaders } from '../shared/signing.ts';
import { createTtlCache } from '../shared/ttl-cache.ts';
import type { ClaimedTask } from './producer.ts';

export const TTL_MS = 2000;
const CACHE_MAX = 10_000;

/** qstash: the team's current QStash signing key (migration 015), for tasks enqueued through /v2. */
type Entry = { current: Buffer; previous: Buffer | null; previousUntil: number; qstash: string | null };

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
    type Row = {
      team_id: string;
      current_secret: string;
      previous_secret: string | null;
      previous_expires_at: Date | null;
      qstash: string | null;
    };
    const rows = await sql<Row[]>`
      select s.team_id::text, s.current_secret,
        case when s.previous_expires_at > now() then s.previous_secret end as previous_secret,
        case when s.previous_expires_at > now() then s.previous_expires_at end as previous_expires_at,
        q.current_key as qstash
      from team_signing_keys s left join qstash_signing_keys q on q.team_id = s.team_id
      where s.team_id = any(${teamIds}::bigint[])`;
    for (const r of rows) {
      cache.set(r.team_id, {
        current: secretBytes(r.current_secret),
        previous: r.previous_secret ? secretBytes(r.previous_secret) : null,
        previousUntil: r.previous_expires_at ? r.previous_expires_at.getTime() : 0,
        qstash: r.qstash,
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

  async function entryFor(teamId: string): Promise<Entry> {
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
    return entry;
  }

  /** The Standard Webhooks secrets that sign now: current, and previous during its 24 h. */
  const active = (entry: Entry) => (entry.previous && now() < entry.previousUntil ? [entry.current, entry.previous] : [entry.current]);

  async function keysFor(teamId: string): Promise<Buffer[]> {
    return active(await entryFor(teamId));
  }

  /**
   * ExecutorDeps.sign: adds webhook-id, webhook-timestamp and webhook-signature; a task
   * enqueued through /v2 also gets Upstash-Signature, Upstash-Message-Id and Upstash-Retried.
   */
  async function sign(task: ClaimedTask, headers: Record<string, string>, body: string | Buffer | null) {
    const entry = await entryFor(task.team_id);
    const nowS = Math.floor(now() / 1000);
    Object.assign(headers, webhookHeaders(active(entry), task.id, nowS, body ?? ''));
    if (task.qstash) {
      if (!entry.qstash) throw new Error(`team ${task.team_id} has no QStash signing key`);
      // Its body claim hashes the bytes sent, as the webhook signature does (not task.body: a
      // large body is not on the claimed task, worker/task-body.ts).
      Object.assign(headers, upstashHeaders(entry.qstash, { ...task, body }, nowS));
    }
  }

  return { sign, keysFor };
}

export type Signer = ReturnType<typeof createSigner>;
