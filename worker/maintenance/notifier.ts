// The notifier (leader only; docs/notifications.md): turns the event outbox into channel
// messages. Two steps per pass, each safe to die in:
//
// 1. Fold, in one transaction: take undispatched events, fold them per (channel, event type,
//    subject) into the 10-minute windows (worker/notify/fold.ts), insert one delivery row per
//    message to send, and mark the events dispatched. A crash before commit leaves the events
//    undispatched; after commit the delivery rows exist. Either way each change is announced once.
// 2. Send: claim due delivery rows with a lease (so two notifiers, e.g. an old and a new leader
//    overlapping for a moment, never send one row at once), send, and record the attempt. A row
//    whose sender died is sent by the next pass once its lease has run out.
//
// Leader-run rather than any-worker: folding is read-modify-write of the window rows, which is
// simplest and cheapest with one writer, and the volume is small (one message per window). The
// fold still takes a transaction-scoped advisory lock, and sends still lease their rows, so an
// overlap during a leader change cannot double-fold or double-send.
import type { Sql } from '../../shared/db.ts';
import { uuidv7 } from '../../shared/ids.ts';
import type { Logger } from '../../shared/logger.ts';
import {
  type ChannelRow,
  dueDigests,
  type EventRow,
  foldEvents,
  type Message,
  type NewDelivery,
  WINDOW_MS,
  type WindowRow,
  windowKey,
} from '../notify/fold.ts';
import { createSenders, type SenderDeps, type SendResult } from '../notify/senders.ts';
import { createService } from './service.ts';

export const NOTIFIER_LOCK = 7_312_014; // arbitrary, constant: the fold step's advisory lock
const EVENT_BATCH = 5000; // events folded per transaction; 10,000 failed tasks are two
const MAX_BATCHES = 20; // per pass, so a pass ends and the sends get their turn
const SEND_BATCH = 50;
const LEASE_MS = 60_000; // > a send's 15 s budget, with room
// Waits before attempts 2..6: about 2 h 50 min in all, so a chat service's outage of an hour loses nothing.
export const BACKOFF_MS = [10_000, 60_000, 5 * 60_000, 30 * 60_000, 2 * 3_600_000];
export const MAX_ATTEMPTS = BACKOFF_MS.length + 1;

export type NotifierOptions = SenderDeps & { sql: Sql; logger: Logger };

export type PassResult = { events: number; created: number; sent: number; failed: number };

export function createNotifier(o: NotifierOptions) {
  const { sql, logger } = o;
  // Senders keep the wall clock: a webhook-timestamp is checked against real time by receivers.
  const senders = createSenders(o);

  async function writeDeliveries(tx: Sql, deliveries: NewDelivery[], now: Date) {
    if (deliveries.length === 0) return;
    const rows = deliveries.map((d) => ({ ...d, id: uuidv7(now.getTime()) }));
    await tx`
      insert into channel_deliveries (id, channel_id, team_id, kind, event_type, subject, message, next_attempt_at)
      select r.id, r.channel_id, r.team_id, r.kind, r.event_type, r.subject, r.message, ${now}
      from jsonb_to_recordset(${tx.json(rows as never)}::jsonb) as r(id uuid, channel_id uuid, team_id bigint, kind text,
        event_type text, subject text, message jsonb)`;
  }

  async function writeWindows(tx: Sql, windows: WindowRow[]) {
    if (windows.length === 0) return;
    await tx`
      insert into notification_windows (team_id, channel_id, type, subject, opened_at, held, first_held, last_held)
      select w.team_id, w.channel_id, w.type, w.subject, w.opened_at, w.held, w.first_held, w.last_held
      from jsonb_to_recordset(${tx.json(windows as never)}::jsonb) as w(team_id bigint, channel_id uuid, type text, subject text,
        opened_at timestamptz, held int, first_held jsonb, last_held jsonb)
      on conflict (team_id, channel_id, type, subject) do update set opened_at = excluded.opened_at, held = excluded.held,
        first_held = excluded.first_held, last_held = excluded.last_held`;
  }

  /** One fold transaction: due digests, then up to EVENT_BATCH events. Returns events taken (-1: another notifier holds the lock). */
  async function foldBatch(now: Date): Promise<{ events: number; created: number }> {
    return sql.begin(async (txRaw) => {
      const tx = txRaw as unknown as Sql;
      const [lock] = await tx`select pg_try_advisory_xact_lock(${NOTIFIER_LOCK}) as got`;
      if (!lock!.got) return { events: -1, created: 0 };
      const windowEnd = new Date(now.getTime() - WINDOW_MS);
      const ended = await tx<WindowRow[]>`
        select w.* from notification_windows w
        where w.held > 0 and w.opened_at <= ${windowEnd} order by w.opened_at limit 1000`;
      const teamOf = new Map(ended.map((w) => [w.channel_id, w.team_id]));
      const digests = dueDigests(ended, (id) => teamOf.get(id), now);
      // Windows that ended with nothing held are forgotten: the next event is news again.
      await tx`delete from notification_windows where held = 0 and opened_at <= ${windowEnd}`;

      const events = await tx<EventRow[]>`
        select id::text, team_id::text, type, subject, data, occurred_at from events
        where dispatched_at is null order by id limit ${EVENT_BATCH} for update skip locked`;
      let folded: ReturnType<typeof foldEvents> = { deliveries: [], changed: [] };
      if (events.length > 0) {
        const teams = [...new Set(events.map((e) => e.team_id))];
        const channels = await tx<ChannelRow[]>`select id, team_id::text, events from channels where team_id = any(${teams}::bigint[])`;
        const keys = new Map<string, { team_id: string; channel_id: string; type: string; subject: string }>();
        for (const e of events)
          for (const c of channels)
            if (c.team_id === e.team_id && c.events.includes(e.type))
              keys.set(windowKey(c.id, e.type, e.subject), { team_id: c.team_id, channel_id: c.id, type: e.type, subject: e.subject });
        const windows = new Map<string, WindowRow>();
        // The digests above may have just restarted some of these windows: use those rows.
        for (const w of digests.changed) windows.set(windowKey(w.channel_id, w.type, w.subject), w);
        if (keys.size > 0) {
          const rows = await tx<WindowRow[]>`
            select w.* from notification_windows w
            join jsonb_to_recordset(${tx.json([...keys.values()] as never)}::jsonb) as k(team_id bigint, channel_id uuid, type text, subject text)
              on w.team_id = k.team_id and w.channel_id = k.channel_id and w.type = k.type and w.subject = k.subject`;
          for (const w of rows) {
            const key = windowKey(w.channel_id, w.type, w.subject);
            if (!windows.has(key)) windows.set(key, w);
          }
        }
        folded = foldEvents(events, channels, windows, now);
        await tx`
          update events set dispatched_at = ${now}
          where (team_id, id) in (select * from unnest(${events.map((e) => e.team_id)}::bigint[], ${events.map((e) => e.id)}::bigint[]))`;
      }
      const changed = new Map<string, WindowRow>();
      for (const w of [...digests.changed, ...folded.changed]) changed.set(windowKey(w.channel_id, w.type, w.subject), w);
      await writeWindows(tx, [...changed.values()]);
      const deliveries = [...digests.deliveries, ...folded.deliveries];
      await writeDeliveries(tx, deliveries, now);
      return { events: events.length, created: deliveries.length };
    });
  }

  async function record(d: { team_id: string; id: string }, attempts: number, r: SendResult, now: Date) {
    const entry = {
      at: now.toISOString(),
      outcome: r.ok ? 'success' : r.outcome,
      status_code: r.statusCode ?? null,
      error: r.ok ? null : r.error,
    };
    const done = r.ok || !r.retryable || attempts >= MAX_ATTEMPTS;
    const status = r.ok ? 'sent' : done ? 'failed' : 'pending';
    const next = new Date(now.getTime() + (done ? 0 : BACKOFF_MS[attempts - 1]!));
    // attempts = ours: a row whose lease we lost (and someone else claimed) is not overwritten.
    await sql`
      update channel_deliveries set status = ${status}, next_attempt_at = ${next}, lease_until = null,
        last_error = ${entry.error}, last_status_code = ${entry.status_code}, sent_at = ${r.ok ? now : null},
        history = history || ${sql.json([entry] as never)}::jsonb
      where team_id = ${d.team_id} and id = ${d.id} and attempts = ${attempts}`;
  }

  /** Claims and sends due deliveries until none is left (bounded). */
  async function sendDue(now: Date): Promise<{ sent: number; failed: number }> {
    let sent = 0;
    let failed = 0;
    for (let round = 0; round < 20; round++) {
      const claimed = await sql<
        { id: string; team_id: string; team: string; attempts: number; type: string; target: string; message: Message }[]
      >`
        with due as (
          select team_id, id from channel_deliveries
          where status = 'pending' and next_attempt_at <= ${now} and (lease_until is null or lease_until < ${now})
          order by next_attempt_at limit ${SEND_BATCH}
          for update skip locked
        )
        update channel_deliveries d set lease_until = ${new Date(now.getTime() + LEASE_MS)}, attempts = d.attempts + 1
        from due, channels c, teams t
        where d.team_id = due.team_id and d.id = due.id and c.team_id = d.team_id and c.id = d.channel_id and t.id = d.team_id
        returning d.id, d.team_id::text, t.slug as team, d.attempts, c.type, c.target, d.message`;
      if (claimed.length === 0) break;
      await Promise.all(
        claimed.map(async (d) => {
          const r = await senders.send({ id: d.id, team_id: d.team_id, team: d.team, type: d.type, target: d.target, message: d.message });
          if (r.ok) sent++;
          else {
            failed++;
            logger.warn(
              { delivery_id: d.id, channel_type: d.type, attempt: d.attempts, outcome: r.outcome, status_code: r.statusCode },
              'notification not sent',
            );
          }
          await record(d, d.attempts, r, now);
        }),
      );
      if (claimed.length < SEND_BATCH) break;
    }
    return { sent, failed };
  }

  /** One pass: fold what is new, then send what is due. `now` is injectable for tests. */
  async function runOnce(now: Date = new Date()): Promise<PassResult> {
    // One query of three index probes decides what the pass has to do: an idle notifier costs
    // the database one statement per interval, not a transaction of five.
    const [todo] = await sql<{ fold: boolean; send: boolean }[]>`
      select exists (select 1 from events where dispatched_at is null)
          or exists (select 1 from notification_windows where opened_at <= ${new Date(now.getTime() - WINDOW_MS)}) as fold,
        exists (select 1 from channel_deliveries where status = 'pending' and next_attempt_at <= ${now}) as send`;
    let events = 0;
    let created = 0;
    for (let i = 0; todo!.fold && i < MAX_BATCHES; i++) {
      const r = await foldBatch(now);
      if (r.events < 0) break; // another notifier is folding right now
      events += r.events;
      created += r.created;
      if (r.events < EVENT_BATCH) break;
    }
    const s = todo!.send || created > 0 ? await sendDue(now) : { sent: 0, failed: 0 };
    return { events, created, ...s };
  }

  return { runOnce, foldBatch, sendDue, close: () => senders.close() };
}

export type Notifier = ReturnType<typeof createNotifier>;

/**
 * The notifier as a leader service (service.ts): a pass every intervalMs (POSTHORN_NOTIFY_INTERVAL,
 * 1 s by default), on the leader's clock.
 */
export function createNotifierService(o: { notifier: Notifier; intervalMs: number; logger: Logger; now: () => number }) {
  return createService({
    name: 'notifier',
    intervalMs: o.intervalMs,
    logger: o.logger,
    runOnce: () => o.notifier.runOnce(new Date(o.now())),
  });
}
