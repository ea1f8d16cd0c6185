// Heartbeat monitors (docs/monitors.md): when the next ping is due, and the two moves a ping
// makes. Every move of a monitor's status is one transaction that locks the monitor's row,
// changes it only from the status it read, and records its event (monitor.down, monitor.up)
// with recordEvents in that same transaction, so a change is announced exactly once: the
// leader's overdue check (worker/maintenance/monitors.ts) and a ping arriving at the same
// moment serialise on the row lock.
import { nextTick } from './cron.ts';
import { dbNow, type Sql } from './db.ts';
import { recordEvents } from './events.ts';

export type MonitorStatus = 'new' | 'up' | 'down';

/** The timing fields of a monitor: an interval, or a cron expression in a time zone. */
export type MonitorTiming = {
  interval_seconds: number | null;
  cron: string | null;
  timezone: string;
  grace_seconds: number;
};

/** Pings kept per monitor (GET /api/v1/monitors/:id/pings lists them); older ones are deleted. */
export const PINGS_KEPT = 100;

/** When the ping after one at `from` is due; null when a cron expression never fires again. */
export function nextExpected(m: MonitorTiming, from: Date): Date | null {
  if (m.interval_seconds !== null) return new Date(from.getTime() + m.interval_seconds * 1000);
  return nextTick(m.cron!, m.timezone, from);
}

/** Late from then on: the expected time plus the grace period. */
export function downAt(m: MonitorTiming, expected: Date | null): Date | null {
  return expected ? new Date(expected.getTime() + m.grace_seconds * 1000) : null;
}

type LockedMonitor = MonitorTiming & { team_id: string; id: string; name: string; status: MonitorStatus; paused: boolean };

export type PingInput = { token: string; kind: 'success' | 'fail'; method: string; userAgent: string | null };
export type PingResult =
  | { found: false }
  | { found: true; paused: true }
  | { found: true; paused: false; status: MonitorStatus; previous: MonitorStatus };

/**
 * Records a ping. success: the monitor is up (monitor.up when it was down) and the next ping
 * is due a period from now. fail: it is down at once (monitor.down unless it already was).
 * `now` is the database's clock unless given (tests pass their own).
 */
export async function recordPing(sql: Sql, input: PingInput, now?: Date): Promise<PingResult> {
  return sql.begin(async (tx) => {
    const [m] = await tx<LockedMonitor[]>`
      select team_id::text, id, name, status, paused, interval_seconds, cron, timezone, grace_seconds
      from monitors where token = ${input.token}
      for update`;
    if (!m) return { found: false } as const;
    if (m.paused) return { found: true, paused: true } as const;
    const at = now ?? (await dbNow(tx));
    const expected = nextExpected(m, at);
    const status: MonitorStatus = input.kind === 'success' ? 'up' : 'down';
    await tx`
      update monitors set status = ${status}, last_ping_at = ${at}, next_expected_at = ${expected},
        down_at = ${downAt(m, expected)}, updated_at = ${at}
      where team_id = ${m.team_id} and id = ${m.id}`;
    const data = { monitor_name: m.name, reason: input.kind === 'fail' ? 'fail' : 'ping', at: at.toISOString() };
    if (status === 'down' && m.status !== 'down')
      await recordEvents(tx as never, [{ teamId: m.team_id, type: 'monitor.down', subject: m.id, data }]);
    if (status === 'up' && m.status === 'down')
      await recordEvents(tx as never, [{ teamId: m.team_id, type: 'monitor.up', subject: m.id, data }]);
    await tx`
      insert into monitor_pings (team_id, monitor_id, kind, method, user_agent, received_at)
      values (${m.team_id}, ${m.id}, ${input.kind}, ${input.method}, ${input.userAgent}, ${at})`;
    // Keep the last PINGS_KEPT: one probe of the primary key finds the cut.
    await tx`
      delete from monitor_pings
      where team_id = ${m.team_id} and monitor_id = ${m.id} and id <= (
        select id from monitor_pings where team_id = ${m.team_id} and monitor_id = ${m.id}
        order by id desc offset ${PINGS_KEPT} limit 1)`;
    return { found: true, paused: false, status, previous: m.status } as const;
  });
}

/** Monitors marked down by one overdue pass, at most this many (the rest go in the next pass). */
export const OVERDUE_BATCH = 1000;

/**
 * One overdue pass at `now`: every monitor that is up, not paused and whose down_at has passed
 * goes down, with its monitor.down event, in one transaction. The select is one range scan of
 * monitors_overdue (migration 010). The UPDATE is guarded by status = 'up', and rows another
 * transaction holds (a ping in progress, a second leader's pass) are skipped, not waited for:
 * that transaction decides them, and a monitor still overdue afterwards is taken by the next
 * pass. So two leaders overlapping during a hand-over send no down twice, and a leader that
 * dies mid-pass loses none: its transaction rolls back and the next leader finds the same rows.
 */
export async function markOverdue(sql: Sql, now: Date, limit = OVERDUE_BATCH): Promise<{ down: string[] }> {
  return sql.begin(async (tx) => {
    const rows = await tx<{ team_id: string; id: string; name: string; last_ping_at: Date | null; down_at: Date }[]>`
      with due as (
        select team_id, id from monitors
        where status = 'up' and not paused and down_at <= ${now}
        order by down_at
        limit ${limit}
        for update skip locked
      )
      update monitors m set status = 'down', updated_at = ${now}
      from due where m.team_id = due.team_id and m.id = due.id and m.status = 'up'
      returning m.team_id::text, m.id, m.name, m.last_ping_at, m.down_at`;
    await recordEvents(
      tx as never,
      rows.map((r) => ({
        teamId: r.team_id,
        type: 'monitor.down' as const,
        subject: r.id,
        data: {
          monitor_name: r.name,
          reason: 'late',
          last_ping_at: r.last_ping_at?.toISOString() ?? null,
          down_at: r.down_at.toISOString(),
        },
      })),
    );
    return { down: rows.map((r) => r.id) };
  });
}
