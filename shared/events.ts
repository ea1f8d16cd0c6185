// The event outbox: what happened that people may be told about (migrations/004_events.sql).
// Write an event with the same transaction (or statement) as the state change that causes it;
// the notifier sends it later. Never put a task's headers or body into `data`.
import type { Sql } from './db.ts';

export const EVENT_TYPES = [
  'task.failed',
  'schedule.failed',
  'schedule.recovered',
  'circuit.opened',
  'circuit.closed',
  'monitor.down',
  'monitor.up',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export type NewEvent = {
  teamId: string | number | bigint;
  type: EventType;
  /** A schedule id, an origin (`https://api.example.com:443`) or a monitor id. */
  subject: string;
  data?: Record<string, unknown>;
};

/** Inserts events through `sql`, which should be the transaction of the change that causes them. */
export async function recordEvents(sql: Sql, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map((e) => ({ team_id: String(e.teamId), type: e.type, subject: e.subject, data: e.data ?? {} }));
  await sql`
    insert into events (team_id, type, subject, data)
    select team_id::bigint, type, subject, data
    from jsonb_to_recordset(${sql.json(rows as never)}) as e(team_id text, type text, subject text, data jsonb)`;
}
