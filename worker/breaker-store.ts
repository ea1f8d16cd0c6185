// The circuit breakers' state in PostgreSQL (migrations/007_circuits.sql): outcomes counted per
// batch, transitions under a row lock, the list of breakers that are not closed for the
// workers' local views, and tasks put back untouched while a breaker is open.
import type { Sql } from '../shared/db.ts';
import { recordEvents } from '../shared/events.ts';
import type { Logger } from '../shared/logger.ts';
import { leaseCleared, TASK_NOTIFY_CHANNEL } from '../shared/tasks.ts';
import { type Breaker, type BreakerEvent, type BreakerSettings, type CircuitState, originOf, step, WINDOW_MS } from './breaker.ts';

/** Workers LISTEN here and refresh their view at once after any transition. */
export const CIRCUIT_NOTIFY_CHANNEL = 'posthorn_circuits';

const BUCKET_MS = 10_000;
/** Transitions kept per breaker. */
export const TRANSITIONS_KEPT = 50;

type Row = {
  state: CircuitState;
  opened_at: Date | null;
  open_ms: number;
  next_probe_at: Date | null;
  probe_token: string | null;
  probe_deadline: Date | null;
};

const ms = (d: Date | null) => (d ? d.getTime() : null);
const date = (n: number | null) => (n === null ? null : new Date(n));

export function breakerFromRow(r: Row): Breaker {
  return {
    state: r.state,
    openedAt: ms(r.opened_at),
    openMs: r.open_ms,
    nextProbeAt: ms(r.next_probe_at),
    probeToken: r.probe_token,
    probeDeadline: ms(r.probe_deadline),
  };
}

/** One (team, origin)'s share of a batch of outcomes. */
export type OutcomeAggregate = {
  team_id: string;
  origin: string;
  requests: number;
  failures: number;
  last_error: string | null;
  endpoints: { path: string; requests: number; successes: number; last_status: number | null; last_outcome: string }[];
};

export type WindowRow = {
  team_id: string;
  origin: string;
  requests: number;
  failures: number;
  state: CircuitState;
  next_probe_at: Date | null;
  probe_deadline: Date | null;
};

/**
 * Counts a batch's outcomes in one statement: the 10 s bucket of the window, the hour (24 h
 * figures and history) and the endpoints' hours. Returns each pair's window totals (the last
 * 50-60 s: whole buckets only, so nothing older than 60 s counts) with its state. Rows are
 * written in (team, origin) order so two workers' batches lock them in the same order. The
 * breaker's state comes back too: a worker still sending to an origin another worker has just
 * opened learns it from its own next batch, NOTIFY or not.
 */
export async function recordOutcomes(sql: Sql, aggs: OutcomeAggregate[]): Promise<WindowRow[]> {
  if (aggs.length === 0) return [];
  aggs.sort((a, b) => (a.team_id === b.team_id ? (a.origin < b.origin ? -1 : 1) : Number(a.team_id) - Number(b.team_id)));
  const endpoints = aggs.flatMap((a) => a.endpoints.map((e) => ({ team_id: a.team_id, origin: a.origin, ...e })));
  const rows = await sql<WindowRow[]>`
    with v as (
      select * from jsonb_to_recordset(${sql.json(aggs.map(({ endpoints: _e, ...a }) => a) as never)})
        as v(team_id bigint, origin text, requests int, failures int, last_error text)
    ), t as (
      select to_timestamp(floor(extract(epoch from now()) * 1000 / ${BUCKET_MS}) * ${BUCKET_MS} / 1000.0) as bucket,
        date_trunc('hour', now()) as hour
    ), b as (
      insert into circuit_buckets (team_id, origin, bucket, requests, failures)
      select v.team_id, v.origin, t.bucket, v.requests, v.failures from v, t order by v.team_id, v.origin
      on conflict (team_id, origin, bucket) do update
        set requests = circuit_buckets.requests + excluded.requests, failures = circuit_buckets.failures + excluded.failures
      returning team_id, origin, bucket, requests, failures
    ), h as (
      insert into circuit_hours (team_id, origin, hour, requests, failures, last_error, last_error_at)
      select v.team_id, v.origin, t.hour, v.requests, v.failures, v.last_error, case when v.last_error is not null then now() end
      from v, t order by v.team_id, v.origin
      on conflict (team_id, origin, hour) do update
        set requests = circuit_hours.requests + excluded.requests, failures = circuit_hours.failures + excluded.failures,
          last_error = coalesce(excluded.last_error, circuit_hours.last_error),
          last_error_at = coalesce(excluded.last_error_at, circuit_hours.last_error_at)
    ), e as (
      insert into circuit_endpoints (team_id, origin, path, hour, requests, successes, last_status, last_outcome, last_attempt_at)
      select e.team_id, e.origin, e.path, t.hour, e.requests, e.successes, e.last_status, e.last_outcome, now()
      from jsonb_to_recordset(${sql.json(endpoints as never)})
        as e(team_id bigint, origin text, path text, requests int, successes int, last_status int, last_outcome text), t
      order by e.team_id, e.origin, e.path
      on conflict (team_id, origin, path, hour) do update
        set requests = circuit_endpoints.requests + excluded.requests, successes = circuit_endpoints.successes + excluded.successes,
          last_status = excluded.last_status, last_outcome = excluded.last_outcome, last_attempt_at = excluded.last_attempt_at
    )
    select b.team_id::text, b.origin,
      b.requests + coalesce(p.requests, 0) as requests, b.failures + coalesce(p.failures, 0) as failures,
      coalesce(c.state, 'closed') as state, c.next_probe_at, c.probe_deadline
    from b
    left join lateral (
      select sum(x.requests)::int as requests, sum(x.failures)::int as failures from circuit_buckets x
      where x.team_id = b.team_id and x.origin = b.origin
        and x.bucket < b.bucket and x.bucket >= b.bucket - ${WINDOW_MS - BUCKET_MS} * interval '1 millisecond'
    ) p on true
    left join circuits c on c.team_id = b.team_id and c.origin = b.origin`;
  return rows;
}

/** The window's totals as the transaction sees them (after taking the breaker's lock). */
async function windowTotals(tx: Sql, teamId: string, origin: string) {
  const [w] = await tx`
    select coalesce(sum(requests), 0)::int as requests, coalesce(sum(failures), 0)::int as failures from circuit_buckets
    where team_id = ${teamId} and origin = ${origin}
      and bucket >= to_timestamp(floor(extract(epoch from now()) * 1000 / ${BUCKET_MS}) * ${BUCKET_MS} / 1000.0)
        - ${WINDOW_MS - BUCKET_MS} * interval '1 millisecond'`;
  return { requests: w!.requests as number, failures: w!.failures as number };
}

export type Applied = { before: Breaker; after: Breaker; reason: string | null; changed: boolean };

/**
 * Applies one event to one breaker: locks its row (creating it closed if new), runs step()
 * with the database's clock, and when something changed writes the row, the transition (the
 * last 50 kept), the circuit.opened / circuit.closed event, and NOTIFY — all in one
 * transaction. A `window` event's totals are read again under the lock, so two workers'
 * batches cannot open it on stale numbers. Tasks held back until the old probe time are moved
 * to the new one (now, when it closed).
 */
export async function applyEvent(
  sql: Sql,
  teamId: string,
  origin: string,
  event: BreakerEvent,
  settings: BreakerSettings,
  logger?: Logger,
): Promise<Applied> {
  const res = await sql.begin(async (tx) => {
    await tx`insert into circuits (team_id, origin) values (${teamId}, ${origin}) on conflict do nothing`;
    const [row] = await tx`
      select state, opened_at, open_ms, next_probe_at, probe_token, probe_deadline,
        (extract(epoch from clock_timestamp()) * 1000)::float8 as now_ms
      from circuits where team_id = ${teamId} and origin = ${origin} for update`;
    // The clock once the lock is held, not the transaction's start (now()): a transition
    // waiting for another worker's is dated when it happens.
    const now = Math.floor(row!.now_ms as number);
    const before = breakerFromRow(row as unknown as Row);
    const e = event.type === 'window' ? { type: 'window' as const, ...(await windowTotals(tx as unknown as Sql, teamId, origin)) } : event;
    const { next, reason } = step(before, e, now, settings);
    if (reason === null) return { before, after: before, reason, changed: false };
    await tx`
      update circuits set state = ${next.state}, opened_at = ${date(next.openedAt)}, open_ms = ${next.openMs},
        next_probe_at = ${date(next.nextProbeAt)}, probe_token = ${next.probeToken}, probe_deadline = ${date(next.probeDeadline)},
        changed_at = ${new Date(now)}
      where team_id = ${teamId} and origin = ${origin}`;
    const changed = next.state !== before.state;
    if (changed) {
      await tx`
        insert into circuit_transitions (team_id, origin, at, from_state, to_state, reason)
        values (${teamId}, ${origin}, ${new Date(now)}, ${before.state}, ${next.state}, ${reason})`;
      await tx`
        delete from circuit_transitions where team_id = ${teamId} and origin = ${origin} and id < (
          select id from circuit_transitions where team_id = ${teamId} and origin = ${origin}
          order by id desc offset ${TRANSITIONS_KEPT - 1} limit 1)`;
      if (next.state === 'open' || next.state === 'closed') {
        const data =
          next.state === 'open'
            ? {
                origin,
                reason,
                opened_at: new Date(next.openedAt!).toISOString(),
                next_probe_at: new Date(next.nextProbeAt!).toISOString(),
              }
            : { origin, reason };
        await recordEvents(tx as unknown as Sql, [
          { teamId, type: next.state === 'open' ? 'circuit.opened' : 'circuit.closed', subject: origin, data },
        ]);
      }
      // A fresh window after closing: the failures that opened it must not open it again.
      if (next.state === 'closed') await tx`delete from circuit_buckets where team_id = ${teamId} and origin = ${origin}`;
      await moveHeldTasks(tx as unknown as Sql, teamId, origin, before, next);
      await tx`select pg_notify(${CIRCUIT_NOTIFY_CHANNEL}, ${`${teamId} ${origin}`})`;
    }
    return { before, after: next, reason, changed };
  });
  if (res.reason !== null) {
    const log = { team_id: teamId, origin, from: res.before.state, to: res.after.state, reason: res.reason };
    if (res.after.state === 'open') logger?.warn(log, 'circuit opened');
    else if (res.changed) logger?.info(log, `circuit ${res.after.state === 'closed' ? 'closed' : 'half-open'}`);
    else logger?.warn(log, 'circuit probe taken over');
  }
  return res;
}

/**
 * Held tasks wait with run_at set to exactly the breaker's next_probe_at or probe_deadline
 * (milliseconds, as the breaker stores them), so they are found by the runnable index on
 * run_at. On a change they move to the new time, or to now when it closed (the backlog drains
 * at once). A task of another origin with the very same run_at is left alone (checked here).
 */
async function moveHeldTasks(tx: Sql, teamId: string, origin: string, before: Breaker, after: Breaker) {
  const from = [before.nextProbeAt, before.probeDeadline].filter((t): t is number => t !== null).map((t) => new Date(t).toISOString());
  if (from.length === 0) return;
  const to = after.state === 'closed' ? null : after.state === 'open' ? after.nextProbeAt : after.probeDeadline;
  const rows = await tx`
    select id, url from tasks
    where run_at = any(${from}::timestamptz[]) and run_at > now() and status in ('pending', 'retrying') and team_id = ${teamId}`;
  const ids = rows.filter((r) => originOf(r.url as string) === origin).map((r) => r.id as string);
  if (ids.length === 0) return;
  await tx`
    update tasks set run_at = coalesce(${date(to)}::timestamptz, now())
    where team_id = ${teamId} and id = any(${ids}::uuid[]) and status in ('pending', 'retrying')`;
  if (to === null) await tx`select pg_notify(${TASK_NOTIFY_CHANNEL}, '')`;
}

export type ViewRow = { team_id: string; origin: string; state: CircuitState; next_probe_at: Date | null; probe_deadline: Date | null };

/** Every breaker that is not closed: what a worker's local view holds. */
export async function loadNotClosed(sql: Sql): Promise<ViewRow[]> {
  return sql<ViewRow[]>`
    select team_id::text, origin, state, next_probe_at, probe_deadline from circuits where state <> 'closed'`;
}

/**
 * Puts claimed tasks back untouched while their breaker is open: the claim's attempt count is
 * undone, no attempt row is written, and run_at becomes the time the breaker will look again
 * (next_probe_at while open, the probe's deadline while half-open; shown as next_attempt_at).
 * Guarded by the lease token like every completion. The times come from the breakers' rows,
 * read FOR SHARE, not from the worker's view, which may be a moment old: a breaker that
 * changed meanwhile (its transaction holds the row and moves held tasks) gives its new time,
 * and one that closed lets the task run now.
 */
export async function releaseHeld(sql: Sql, held: { id: string; token: string; team_id: string; origin: string }[]): Promise<number> {
  if (held.length === 0) return 0;
  const res = await sql`
    with v as (
      select * from jsonb_to_recordset(${sql.json(held as never)}::jsonb) as v(id uuid, token uuid, team_id bigint, origin text)
    ), c as (
      select c.team_id, c.origin, case c.state when 'open' then c.next_probe_at else c.probe_deadline end as until
      from circuits c
      where (c.team_id, c.origin) in (select distinct team_id, origin from v) and c.state <> 'closed'
      order by c.team_id, c.origin
      for share
    )
    update tasks t set
      status = case when t.status = 'canceled' then 'canceled' when t.attempts - 1 > t.retry_base then 'retrying' else 'pending' end,
      attempts = t.attempts - 1,
      run_at = coalesce((select c.until from c where c.team_id = v.team_id and c.origin = v.origin), now()),
      ${leaseCleared(sql)}
    from v
    where t.team_id = v.team_id and t.id = v.id and t.lease_token = v.token and t.status in ('running', 'canceled')`;
  return res.count;
}

/** Window buckets older than 5 min, hours and endpoints older than 25 h. */
export async function pruneCircuitStats(sql: Sql): Promise<void> {
  await sql`delete from circuit_buckets where bucket < now() - interval '5 minutes'`;
  await sql`delete from circuit_hours where hour < now() - interval '25 hours'`;
  await sql`delete from circuit_endpoints where hour < now() - interval '25 hours'`;
}

/** Breakers per state, fleet-wide, for the metrics (posthorn_circuits{state}). Closed counts origins with attempts in the last 24 h. */
export async function countCircuitsByState(sql: Sql): Promise<Record<CircuitState, number>> {
  const [r] = await sql`
    select
      (select count(*) from circuits where state = 'open')::int as open,
      (select count(*) from circuits where state = 'half_open')::int as half_open,
      (select count(*) from (
        select distinct h.team_id, h.origin from circuit_hours h
        where h.hour >= date_trunc('hour', now()) - interval '23 hours'
          and not exists (select 1 from circuits c where c.team_id = h.team_id and c.origin = h.origin and c.state <> 'closed')
      ) x)::int as closed`;
  return { closed: r!.closed as number, open: r!.open as number, half_open: r!.half_open as number };
}
