// The leader's pruner forgets notifications once they are old (worker/maintenance/pruner.ts):
// events dispatched longer ago than POSTHORN_NOTIFY_RETENTION_HOURS and channel deliveries
// that are done (sent or failed), never undispatched events or pending deliveries. The
// pruner's clock is the test's, moved by hand.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../shared/config.ts';
import { uuidv7 } from '../shared/ids.ts';
import { createPruner } from '../worker/maintenance/pruner.ts';
import { startHarness } from './helpers/harness.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
const logger = pino({ level: 'silent' });
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

beforeAll(async () => {
  h = await startHarness(); // no worker: nothing but the test touches the outbox
});
afterAll(async () => {
  await h?.close();
});

async function event(o: { dispatchedMs: number | null }) {
  const [r] = await h.sql<{ id: string }[]>`
    insert into events (team_id, type, subject, data, occurred_at, dispatched_at)
    values (${h.team.teamId}, 'task.failed', 'https://a.example:443', '{}', now() - interval '30 days',
      ${o.dispatchedMs === null ? null : new Date(o.dispatchedMs)})
    returning id::text`;
  return r!.id;
}

async function delivery(channelId: string, o: { createdMs: number; status: 'pending' | 'sent' | 'failed' }) {
  const id = uuidv7(o.createdMs);
  await h.sql`
    insert into channel_deliveries (id, channel_id, team_id, kind, event_type, subject, message, status, next_attempt_at, created_at)
    values (${id}, ${channelId}, ${h.team.teamId}, 'event', 'task.failed', 'https://a.example:443', '{}', ${o.status},
      ${new Date(o.createdMs + HOUR)}, ${new Date(o.createdMs)})`;
  return id;
}

describe('pruning notifications', () => {
  it('deletes dispatched events and finished deliveries past the retention, by the clock it is given', async () => {
    const t0 = Date.now();
    const channelId = uuidv7();
    await h.sql`
      insert into channels (id, team_id, type, target, events)
      values (${channelId}, ${h.team.teamId}, 'webhook', 'http://127.0.0.1:9/hook', ${['task.failed']})`;
    const oldEvent = await event({ dispatchedMs: t0 - 8 * DAY });
    const dayOldEvent = await event({ dispatchedMs: t0 - DAY });
    const undispatched = await event({ dispatchedMs: null });
    const oldSent = await delivery(channelId, { createdMs: t0 - 8 * DAY, status: 'sent' });
    const oldFailed = await delivery(channelId, { createdMs: t0 - 8 * DAY, status: 'failed' });
    const oldPending = await delivery(channelId, { createdMs: t0 - 8 * DAY, status: 'pending' });
    const dayOldSent = await delivery(channelId, { createdMs: t0 - DAY, status: 'sent' });

    let clock = t0;
    const pruner = createPruner({ sql: h.sql, logger, retentionHours: 168, notifyRetentionHours: 168, now: () => clock });
    expect(await pruner.runOnce()).toEqual({ tasks: 0, idempotency_keys: 0, events: 1, channel_deliveries: 2 });
    expect(await pruner.runOnce()).toMatchObject({ events: 0, channel_deliveries: 0 });
    const events = async () => (await h.sql<{ id: string }[]>`select id::text from events order by id`).map((r) => r.id);
    const deliveries = async () => (await h.sql<{ id: string }[]>`select id from channel_deliveries order by id`).map((r) => r.id);
    expect(await events()).toEqual([dayOldEvent, undispatched]);
    expect((await deliveries()).sort()).toEqual([oldPending, dayOldSent].sort());
    expect(await events()).not.toContain(oldEvent);
    expect(await deliveries()).not.toContain(oldSent);
    expect(await deliveries()).not.toContain(oldFailed);

    // Six days and an hour later the day-old rows are past 168 hours too; the undispatched
    // event and the pending delivery still stay.
    clock = t0 + 6 * DAY + HOUR;
    expect(await pruner.runOnce()).toMatchObject({ events: 1, channel_deliveries: 1 });
    expect(await events()).toEqual([undispatched]);
    expect(await deliveries()).toEqual([oldPending]);

    // A shorter retention takes effect on the same rows' successors at once.
    const fresh = await event({ dispatchedMs: clock - 2 * HOUR });
    const short = createPruner({ sql: h.sql, logger, retentionHours: 168, notifyRetentionHours: 1, now: () => clock });
    expect(await short.runOnce()).toMatchObject({ events: 1 });
    expect(await events()).not.toContain(fresh);
  });

  it('POSTHORN_NOTIFY_RETENTION_HOURS is read and checked', () => {
    const base = { DATABASE_URL: 'postgres://x@127.0.0.1/x' };
    expect(parseConfig(base).notifyRetentionHours).toBe(168);
    expect(parseConfig({ ...base, POSTHORN_NOTIFY_RETENTION_HOURS: '24' }).notifyRetentionHours).toBe(24);
    expect(() => parseConfig({ ...base, POSTHORN_NOTIFY_RETENTION_HOURS: '0' })).toThrow();
  });

  it('the prune walks the index on dispatched_at, not the table', async () => {
    const plan = await h.sql.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      return tx`explain select id from events where dispatched_at < now() order by dispatched_at limit 1000`;
    });
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain('events_dispatched');
  });
});
