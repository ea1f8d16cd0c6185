// The claim (docs/queues.md): which due tasks a worker takes, fairly across teams and within
// the limits of their queues and flow keys, fleet-wide. Two paths:
//
// - free: tasks with neither a queue nor a flow key. One statement: the teams with due rows
//   (a skip scan of tasks_free_due, one index probe per team), each team's earliest due rows
//   (FOR UPDATE SKIP LOCKED, at most its share of the batch), interleaved by rank so team B's
//   one task goes out in the same claim as team A's first ones, however large A's backlog.
// - gated: tasks with a queue or a flow key. A short transaction: statement 1 finds the
//   (team, queue) groups with runnable rows and locks the rows of the limited queues and keys it
//   meets (SKIP LOCKED: a group another worker is claiming from is left to it); statement 2,
//   whose snapshot is taken after those locks, so it sees every claim committed before them,
//   counts the running attempts, applies parallelism, FIFO, pacing and pause, and claims.
//   Claims of different queues never wait for each other; nothing serialises the whole fleet.
//
// A running attempt's slot is its own tasks row in status running: no counter exists that a
// crash could leave raised. A dead worker's row keeps its slot until its lease expires and the
// rescuer moves it back to pending (worker/maintenance/rescuer.ts).
import type { Queryable, Sql } from '../shared/db.ts';
import type { ClaimedTask } from './producer.ts';

export type ClaimOptions = { workerId: string; limit: number; leaseMs: number; token: string };

// The gated claim's rows also carry queue and flow_key (its pacing CTEs need them).
type Row = ClaimedTask & {
  more: boolean | null;
  gated_due: boolean | null;
  wake_ms: number | null;
  queue?: string | null;
  flow_key?: string | null;
};

/**
 * Bodies up to this many bytes come with the claim; a larger one is left out (body null,
 * body_bytes its size) and read by its attempt when it starts (worker/task-body.ts). 64 claimed
 * tasks of 1 MiB were one 64 MiB result: postgres.js gathers each row's socket chunks into one
 * Buffer and decodes it into a string, ~3 MiB per task until the garbage is collected, and the
 * strings stayed with the tasks while their attempts ran (docs/bench.md, "Memory").
 */
export const INLINE_BODY_BYTES = 64 * 1024;

/**
 * The columns a claim returns (ClaimedTask). octet_length reads a TOASTed body's size from its
 * pointer, without fetching or decompressing the value.
 */
const RETURNING = (sql: Queryable) => sql`t.id, t.team_id::text, t.url, t.method, t.headers,
  case when octet_length(t.body) <= ${INLINE_BODY_BYTES} then t.body end as body,
  case when octet_length(t.body) > ${INLINE_BODY_BYTES} then octet_length(t.body) end as body_bytes, t.body_is_json, t.body_encoding, t.attempts,
  t.retry_base, t.max_retries, t.min_backoff_ms, t.max_backoff_ms, t.timeout_ms, t.lease_token, t.traceparent, t.schedule_id, t.run_at,
  t.auth_connection, t.success, t.qstash`;

const START = (sql: Queryable, o: ClaimOptions) => sql`status = 'running', attempts = t.attempts + 1, started_at = now(),
  lease_token = ${o.token}, lease_expires_at = now() + ${o.leaseMs} * interval '1 millisecond', locked_by = ${o.workerId}`;

/**
 * The claimed tasks of a result: its rows, less the row a claim of nothing still returns. The
 * claim's own columns (more, gated_due, ...) stay on each row: copying 21 columns into a new
 * object to drop them was 1.6% of a worker's busy time in the drain's profile, and nothing
 * reads a task's keys as a whole.
 */
function split(rows: Row[]): ClaimedTask[] {
  return rows.filter((r) => r.id !== null);
}

/**
 * Claims due tasks without a queue or key, round-robin across teams. `more`: some team had
 * more due rows than its share (claim again soon); `gatedDue`: a task with a queue or key is
 * due (worth a gated claim).
 */
export async function claimFree(sql: Queryable, o: ClaimOptions): Promise<{ tasks: ClaimedTask[]; more: boolean; gatedDue: boolean }> {
  if (o.limit <= 0) return { tasks: [], more: true, gatedDue: true };
  const rows = await sql<Row[]>`
    with recursive teams as (
      (select team_id, run_at from tasks
       where status in ('pending', 'retrying') and queue is null and flow_key is null
       order by team_id, run_at limit 1)
      union all
      select nx.team_id, nx.run_at from teams cross join lateral (
        select t.team_id, t.run_at from tasks t
        where t.status in ('pending', 'retrying') and t.queue is null and t.flow_key is null and t.team_id > teams.team_id
        order by t.team_id, t.run_at limit 1
      ) nx
    ), due as materialized (
      -- a team's first entry is its earliest run_at: due when that is
      select team_id from teams where run_at <= now()
    ), share as (
      select greatest(1, ceil(${o.limit}::float8 / greatest(1, count(*))))::int as k from due
    ), c as (
      select due.team_id, p.id, p.run_at, row_number() over (partition by due.team_id order by p.run_at) as rk
      from due cross join lateral (
        select t.id, t.run_at from tasks t
        where t.team_id = due.team_id and t.status in ('pending', 'retrying') and t.queue is null and t.flow_key is null
          and t.run_at <= now()
        order by t.run_at
        limit (select k from share)
        for update skip locked
      ) p
    ), pick as (
      select team_id, id from c order by rk, run_at limit ${o.limit}
    ), upd as (
      update tasks t set ${START(sql, o)}
      from pick where t.team_id = pick.team_id and t.id = pick.id
      returning ${RETURNING(sql)}
    )
    select u.*, x.more, x.gated_due
    from (select coalesce((select max(rk) from c) >= (select k from share), false) as more,
            exists (select 1 from tasks g where g.status in ('pending', 'retrying') and (g.queue is not null or g.flow_key is not null)
                    and g.run_at <= now()) as gated_due) x
    left join upd u on true`;
  return { tasks: split(rows), more: rows[0]?.more ?? false, gatedDue: rows[0]?.gated_due ?? false };
}

/** Groups looked at per gated claim, and candidates per group (FIFO order). */
const MAX_GROUPS = 200;
const PER_GROUP = 64;

type Group = { team_id: string; qkey: string };
type Locked = { kind: 'q' | 'k'; team_id: string; name: string };

/**
 * Claims due tasks with a queue or a flow key within their limits. `wakeInMs`: when a paced
 * queue or key with due tasks may start the next one (null: nothing waits on pacing).
 */
export async function claimGated(sql: Sql, o: ClaimOptions): Promise<{ tasks: ClaimedTask[]; wakeInMs: number | null }> {
  if (o.limit <= 0) return { tasks: [], wakeInMs: null };
  return sql.begin(async (tx) => {
    const found = await tx<(Locked | (Group & { kind: 'g' }))[]>`
      with recursive g as (
        (select team_id, coalesce(queue, '') as qkey from tasks
         where status in ('pending', 'retrying') and (queue is not null or flow_key is not null)
         order by team_id, coalesce(queue, '') limit 1)
        union all
        select nx.team_id, nx.qkey from g cross join lateral (
          select t.team_id, coalesce(t.queue, '') as qkey from tasks t
          where t.status in ('pending', 'retrying') and (t.queue is not null or t.flow_key is not null)
            and (t.team_id, coalesce(t.queue, '')) > (g.team_id, g.qkey)
          order by t.team_id, coalesce(t.queue, '') limit 1
        ) nx
      ), gl as materialized (
        select * from g limit ${MAX_GROUPS}
      ), keys as materialized (
        select distinct c.team_id, c.flow_key from gl cross join lateral (
          select t.team_id, t.flow_key from tasks t
          where t.team_id = gl.team_id and coalesce(t.queue, '') = gl.qkey
            and t.status in ('pending', 'retrying') and (t.queue is not null or t.flow_key is not null)
            and not (t.status = 'pending' and t.run_at > now())
          order by coalesce(t.queue, ''), t.created_at, t.id limit ${PER_GROUP}
        ) c where c.flow_key is not null
      ), ql as (
        select q.team_id, q.name from queues q join gl on q.team_id = gl.team_id and q.name = gl.qkey
        where q.parallelism is not null or q.rate_per_second is not null or q.paused
        order by q.team_id, q.name
        for update of q skip locked
      ), kl as (
        select k.team_id, k.key from flow_keys k join keys on k.team_id = keys.team_id and k.key = keys.flow_key
        where k.parallelism is not null or k.rate_per_second is not null
        order by k.team_id, k.key
        for update of k skip locked
      )
      select 'g' as kind, team_id::text, qkey, null as name from gl
      union all select 'q', team_id::text, null, name from ql
      union all select 'k', team_id::text, null, key from kl`;
    const groups = found.filter((r) => r.kind === 'g') as (Group & { kind: 'g' })[];
    if (groups.length === 0) return { tasks: [], wakeInMs: null };
    const held = (kind: 'q' | 'k') => (found.filter((r) => r.kind === kind) as Locked[]).map(({ team_id, name }) => ({ team_id, name }));
    const rows = await tx<Row[]>`
      with grp as (
        select * from jsonb_to_recordset(${tx.json(groups.map(({ team_id, qkey }) => ({ team_id, qkey })))}::jsonb) as x(team_id bigint, qkey text)
      ), lq as (
        select * from jsonb_to_recordset(${tx.json(held('q'))}::jsonb) as x(team_id bigint, name text)
      ), lk as (
        select * from jsonb_to_recordset(${tx.json(held('k'))}::jsonb) as x(team_id bigint, name text)
      ), q as materialized (
        -- each group's limits; limited ones are claimed from only under their row's lock
        select grp.team_id, grp.qkey, qs.parallelism, qs.rate_per_second as rate, coalesce(qs.paused, false) as paused,
          qs.next_start_at, (qs.parallelism is not null or qs.rate_per_second is not null or coalesce(qs.paused, false)) as limited,
          exists (select 1 from lq where lq.team_id = grp.team_id and lq.name = grp.qkey) as mine,
          case when qs.parallelism is not null then
            (select count(*) from tasks r where r.team_id = grp.team_id and r.queue = grp.qkey and r.status = 'running') end as running
        from grp left join queues qs on qs.team_id = grp.team_id and qs.name = grp.qkey
      ), ok as (
        select * from q where not limited or (mine and not paused)
      ), cand as materialized (
        select c.*,
          row_number() over (partition by c.team_id, c.qkey order by c.created_at, c.id) as rank_all,
          row_number() over (partition by c.team_id, c.qkey, c.due order by c.created_at, c.id) as rank_due
        from ok cross join lateral (
          select t.id, t.team_id, coalesce(t.queue, '') as qkey, t.queue, t.flow_key, t.created_at, t.run_at <= now() as due
          from tasks t
          where t.team_id = ok.team_id and coalesce(t.queue, '') = ok.qkey
            and t.status in ('pending', 'retrying') and (t.queue is not null or t.flow_key is not null)
            and not (t.status = 'pending' and t.run_at > now())
          order by coalesce(t.queue, ''), t.created_at, t.id limit ${PER_GROUP}
        ) c
      ), qa as (
        -- parallelism 1 is FIFO: only the queue's earliest unfinished task (a retrying one
        -- waiting out its backoff too) may start, and only when nothing of the queue runs.
        select cand.* from cand join ok on ok.team_id = cand.team_id and ok.qkey = cand.qkey
        where cand.due
          and (ok.parallelism is null
               or (ok.parallelism = 1 and cand.rank_all = 1 and ok.running = 0)
               or (ok.parallelism > 1 and cand.rank_due <= ok.parallelism - ok.running))
          and (ok.rate is null or (ok.next_start_at <= now() and cand.rank_due = 1))
      ), k as materialized (
        select fk.team_id, fk.key, fk.parallelism, fk.rate_per_second as rate, fk.next_start_at,
          (fk.parallelism is not null or fk.rate_per_second is not null) as limited,
          exists (select 1 from lk where lk.team_id = fk.team_id and lk.name = fk.key) as mine,
          case when fk.parallelism is not null then
            (select count(*) from tasks r where r.team_id = fk.team_id and r.flow_key = fk.key and r.status = 'running') end as running
        from flow_keys fk
        where (fk.team_id, fk.key) in (select distinct team_id, flow_key from cand where flow_key is not null)
      ), allowed as (
        select qa.*, row_number() over (partition by qa.team_id order by qa.created_at, qa.id) as team_rank
        from (select qa.*, row_number() over (partition by qa.team_id, qa.flow_key order by qa.created_at, qa.id) as krank from qa) qa
        left join k on k.team_id = qa.team_id and k.key = qa.flow_key
        where qa.flow_key is null or k.key is null or not k.limited
          or (k.mine
              and (k.parallelism is null or qa.krank <= k.parallelism - k.running)
              and (k.rate is null or (k.next_start_at <= now() and qa.krank = 1)))
      ), pick as (
        select team_id, id from allowed order by team_rank, created_at limit ${o.limit}
      ), lockt as (
        select t.team_id, t.id from tasks t join pick on pick.team_id = t.team_id and pick.id = t.id
        where t.status in ('pending', 'retrying')
        for update of t skip locked
      ), upd as (
        update tasks t set ${START(tx, o)}
        from lockt where t.team_id = lockt.team_id and t.id = lockt.id
        returning ${RETURNING(tx)}, t.queue, t.flow_key
      ), qpace as (
        update queues qs set next_start_at = now() + (1 / qs.rate_per_second) * interval '1 second'
        from (select distinct team_id, queue from upd where queue is not null) u
        where qs.team_id = u.team_id::bigint and qs.name = u.queue and qs.rate_per_second is not null
        returning qs.team_id, qs.name, qs.next_start_at
      ), kpace as (
        update flow_keys fk set next_start_at = now() + (1 / fk.rate_per_second) * interval '1 second'
        from (select distinct team_id, flow_key from upd where flow_key is not null) u
        where fk.team_id = u.team_id::bigint and fk.key = u.flow_key and fk.rate_per_second is not null
        returning fk.team_id, fk.key, fk.next_start_at
      ), wake as (
        -- the earliest moment a paced queue or key that still has due candidates may start one
        select min(at) as at from (
          select coalesce((select p.next_start_at from qpace p where p.team_id = ok.team_id and p.name = ok.qkey), ok.next_start_at) as at
          from ok where ok.rate is not null
            and exists (select 1 from cand where cand.team_id = ok.team_id and cand.qkey = ok.qkey and cand.due
                        and cand.id not in (select id from upd))
          union all
          select coalesce((select p.next_start_at from kpace p where p.team_id = k.team_id and p.key = k.key), k.next_start_at)
          from k where k.rate is not null
            and exists (select 1 from cand where cand.team_id = k.team_id and cand.flow_key = k.key and cand.due
                        and cand.id not in (select id from upd))
        ) w
      )
      select u.*,
        (case when x.at is not null then greatest(0, extract(epoch from x.at - now()) * 1000) end)::float8 as wake_ms
      from (select at from wake) x left join upd u on true`;
    const wake = rows[0]?.wake_ms;
    return { tasks: split(rows), wakeInMs: wake === null || wake === undefined ? null : wake };
  });
}

/** Both paths once (gated first): what tests and simple callers use. */
export async function claimAll(sql: Sql, o: ClaimOptions): Promise<ClaimedTask[]> {
  const gated = await claimGated(sql, o);
  const free = await claimFree(sql, { ...o, limit: o.limit - gated.tasks.length });
  return [...gated.tasks, ...free.tasks];
}
