// Named queues (docs/queues.md, docs/api.md §6): a team's limits for the tasks that name the
// queue, and what the queue holds. The API (gateway/api/queues.ts) and the QStash layer call
// these functions; the limits themselves are enforced where tasks are claimed (worker/claim.ts).
// Every query names team_id: another team's queue is simply not there.
import { z } from 'zod';
import type { Queryable } from './db.ts';
import { notifyWorkers } from './tasks.ts';

export const queueSettingsSchema = z.strictObject({
  parallelism: z.number().int().min(1).max(10_000).nullable().optional().meta({
    description: 'at most this many attempts in flight, fleet-wide; 1 also means FIFO (created_at order); absent or null: no limit',
  }),
  rate_per_second: z.number().gt(0).max(10_000).nullable().optional().meta({
    description: 'attempts start no closer together than 1/rate_per_second seconds; absent or null: no limit',
  }),
  paused: z.boolean().default(false).meta({ description: 'true: no attempt starts; tasks wait without using up retries' }),
});
export type QueueSettings = z.output<typeof queueSettingsSchema>;

export const QUEUE_COUNT_STATUSES = ['scheduled', 'pending', 'running', 'retrying', 'succeeded', 'failed', 'canceled'] as const;
export type QueueCounts = Record<(typeof QUEUE_COUNT_STATUSES)[number], number>;

export type Queue = {
  name: string;
  parallelism: number | null;
  rate_per_second: number | null;
  paused: boolean;
  /** false: no row, the queue is only a name on tasks (no limits). */
  configured: boolean;
  counts: QueueCounts;
  /** How long the oldest due pending task has waited (since its run_at); null when none waits. */
  oldest_pending_age_ms: number | null;
  created_at: Date | null;
  updated_at: Date | null;
};

type Row = {
  name: string;
  parallelism: number | null;
  rate_per_second: number | null;
  paused: boolean;
  created_at: Date;
  updated_at: Date;
};
type CountRow = { queue: string; status: string; n: number; later: number; oldest_ms: number | null };

/** At most this many queues per list; the list is every configured queue up to this. */
export const MAX_LISTED_QUEUES = 1000;

/**
 * Counts per status for some queues of a team. One range of tasks_queue_status per queue and
 * status (team_id, queue, status, run_at): its cost follows the queue's own rows, never the
 * table. EXPLAIN on 100k tasks over 50 queues: Index Only Scan using tasks_queue_status, Index
 * Cond: ((team_id = 1) AND (queue = ANY (...))), no Seq Scan.
 */
async function countsFor(
  sql: Queryable,
  teamId: string,
  names: string[],
): Promise<Map<string, Pick<Queue, 'counts' | 'oldest_pending_age_ms'>>> {
  const out = new Map<string, Pick<Queue, 'counts' | 'oldest_pending_age_ms'>>();
  for (const n of names) out.set(n, { counts: emptyCounts(), oldest_pending_age_ms: null });
  if (names.length === 0) return out;
  const rows = await sql<CountRow[]>`
    select queue, status,
      count(*) filter (where status <> 'pending' or run_at <= now())::int as n,
      count(*) filter (where status = 'pending' and run_at > now())::int as later,
      (extract(epoch from now() - min(run_at) filter (where status = 'pending' and run_at <= now())) * 1000)::float8 as oldest_ms
    from tasks
    where team_id = ${teamId} and queue = any(${names}::text[])
    group by queue, status`;
  for (const r of rows) {
    const q = out.get(r.queue)!;
    if (r.status === 'pending') {
      q.counts.pending = r.n;
      q.counts.scheduled = r.later;
      q.oldest_pending_age_ms = r.oldest_ms === null ? null : Math.max(0, Math.round(r.oldest_ms));
    } else if (r.status in q.counts) q.counts[r.status as keyof QueueCounts] = r.n;
  }
  return out;
}

function emptyCounts(): QueueCounts {
  return { scheduled: 0, pending: 0, running: 0, retrying: 0, succeeded: 0, failed: 0, canceled: 0 };
}

function withCounts(r: Row, c: Pick<Queue, 'counts' | 'oldest_pending_age_ms'> | undefined): Queue {
  return {
    name: r.name,
    parallelism: r.parallelism,
    rate_per_second: r.rate_per_second,
    paused: r.paused,
    configured: true,
    counts: c?.counts ?? emptyCounts(),
    oldest_pending_age_ms: c?.oldest_pending_age_ms ?? null,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/**
 * Creates or replaces a queue's settings (a field left out is no limit). Wakes the workers: a
 * resumed queue or a raised limit is claimed from at once, on every worker.
 */
export async function upsertQueue(sql: Queryable, teamId: string, name: string, s: QueueSettings): Promise<Queue> {
  const [row] = await sql<Row[]>`
    with up as (
      insert into queues (team_id, name, parallelism, rate_per_second, paused)
      values (${teamId}, ${name}, ${s.parallelism ?? null}, ${s.rate_per_second ?? null}, ${s.paused})
      on conflict (team_id, name) do update set parallelism = excluded.parallelism,
        rate_per_second = excluded.rate_per_second, paused = excluded.paused, updated_at = now()
      returning name, parallelism, rate_per_second, paused, created_at, updated_at
    ), wake as (${notifyWorkers(sql)})
    select up.*, (select count(*) from wake) as woke from up`;
  const { woke: _w, ...r } = row as Row & { woke: unknown };
  return withCounts(r, (await countsFor(sql, teamId, [name])).get(name));
}

/** The queue with its counts; an unconfigured name that tasks use is shown without limits; null when neither. */
export async function getQueue(sql: Queryable, teamId: string, name: string): Promise<Queue | null> {
  const [row] = await sql<Row[]>`
    select name, parallelism, rate_per_second, paused, created_at, updated_at
    from queues where team_id = ${teamId} and name = ${name}`;
  const counts = (await countsFor(sql, teamId, [name])).get(name)!;
  if (row) return withCounts(row, counts);
  const used = Object.values(counts.counts).some((n) => n > 0);
  if (!used) return null;
  return {
    name,
    parallelism: null,
    rate_per_second: null,
    paused: false,
    configured: false,
    ...counts,
    created_at: null,
    updated_at: null,
  };
}

/** The team's configured queues, newest first, with their counts. */
export async function listQueues(sql: Queryable, teamId: string): Promise<Queue[]> {
  const rows = await sql<Row[]>`
    select name, parallelism, rate_per_second, paused, created_at, updated_at
    from queues where team_id = ${teamId}
    order by created_at desc, name
    limit ${MAX_LISTED_QUEUES}`;
  const counts = await countsFor(
    sql,
    teamId,
    rows.map((r) => r.name),
  );
  return rows.map((r) => withCounts(r, counts.get(r.name)));
}

/** Removes a queue's limits (its tasks keep their queue name and run unlimited); false when there was none. */
export async function deleteQueue(sql: Queryable, teamId: string, name: string): Promise<boolean> {
  const rows = await sql`
    with del as (delete from queues where team_id = ${teamId} and name = ${name} returning 1),
    wake as (${notifyWorkers(sql)} from del limit 1)
    select (select count(*) from del)::int as n, (select count(*) from wake) as woke`;
  return (rows[0]!.n as number) > 0;
}

/** A queue as the API shows it (docs/api.md §6). */
export function queueView(q: Queue) {
  return {
    name: q.name,
    parallelism: q.parallelism,
    rate_per_second: q.rate_per_second,
    paused: q.paused,
    configured: q.configured,
    counts: q.counts,
    oldest_pending_age_ms: q.oldest_pending_age_ms,
    created_at: q.created_at?.toISOString() ?? null,
    updated_at: q.updated_at?.toISOString() ?? null,
  };
}
