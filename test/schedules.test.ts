// Cron schedules through the API with an in-process worker that is elected leader: refusals,
// pause/resume/trigger, failure counting, missed ticks, one task per tick.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestTickAtOrBefore, nextTick } from '../shared/cron.ts';
import { enqueueDueTicks } from '../worker/maintenance/scheduler.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { startSink } from './helpers/sink.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
let sink: Awaited<ReturnType<typeof startSink>>;
const failing = new Set<string>();

beforeAll(async () => {
  h = await startHarness({ worker: { workerConcurrency: 8, metricsPort: 0 } });
  sink = await startSink((req) => ({ status: failing.has(req.path) ? 500 : 200 }));
  await waitFor(() => h.worker!.elector.isLeader(), { what: 'the in-process worker to lead' });
});
afterAll(async () => {
  await h?.close();
  await sink?.close();
});

const hits = (path: string) => sink.received.filter((r) => r.path === path);
const create = (body: Record<string, unknown>) => h.api('POST', '/api/v1/schedules', body);

describe('validation', () => {
  it.each([
    ['* * * *', 'cron'],
    ['60 * * * *', 'cron'],
    ['* * 32 * *', 'cron'],
    ['*/0 * * * *', 'cron'],
    ['0 0 * * * * 2026', 'cron'],
    ['', 'cron'],
  ])('cron %j is a 400 naming the field', async (cron, path) => {
    const r = await create({ name: 'x', cron, url: sink.url });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('validation_failed');
    expect(r.body.errors.map((e: { path: string }) => e.path)).toEqual([path]);
  });

  it('an unknown time zone is a 400 naming timezone', async () => {
    const r = await create({ name: 'x', cron: '* * * * *', timezone: 'Mars/Olympus', url: sink.url });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([{ path: 'timezone', message: expect.stringContaining('Mars/Olympus') }]);
  });

  it('unknown fields, a bad url and a missing name are refused; nothing is stored', async () => {
    for (const body of [
      { name: 'x', cron: '* * * * *', url: sink.url, colour: 1 },
      { name: 'x', cron: '* * * * *', url: 'ftp://x' },
      { cron: '* * * * *', url: sink.url },
    ]) {
      expect((await create(body)).status).toBe(400);
    }
    expect((await h.sql`select count(*)::int as n from schedules`)[0]!.n).toBe(0);
  });
});

describe('lifecycle', () => {
  it('creates with next_run_at in its zone; 6 fields run every second until paused; resume restarts', async () => {
    const r = await create({
      name: 'every-second',
      cron: '* * * * * *',
      timezone: 'Europe/Oslo',
      url: `${sink.url}/tick`,
      body: { hello: 'cron' },
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      name: 'every-second',
      cron: '* * * * * *',
      timezone: 'Europe/Oslo',
      paused: false,
      url: `${sink.url}/tick`,
      method: 'POST',
      body: { hello: 'cron' },
      consecutive_failures: 0,
      last_run_at: null,
    });
    expect(Date.parse(r.body.next_run_at) - Date.now()).toBeLessThanOrEqual(1000);
    const id = r.body.id;
    await waitFor(() => hits('/tick').length >= 3, { what: '3 ticks delivered' });
    const got = hits('/tick')[0]!;
    expect(got.headers['x-posthorn-schedule-id']).toBe(id);
    expect(JSON.parse(got.body)).toEqual({ hello: 'cron' });

    const paused = await h.api('POST', `/api/v1/schedules/${id}/pause`);
    expect(paused.body).toMatchObject({ paused: true, next_run_at: null });
    await new Promise((r) => setTimeout(r, 400)); // a tick already queued may still be delivered
    const atPause = hits('/tick').length;
    await new Promise((r) => setTimeout(r, 2000));
    expect(hits('/tick').length).toBe(atPause);

    const resumed = await h.api('POST', `/api/v1/schedules/${id}/resume`);
    expect(resumed.body.paused).toBe(false);
    await waitFor(() => hits('/tick').length >= atPause + 2, { what: 'ticks after resume' });

    const s = (await h.api('GET', `/api/v1/schedules/${id}`)).body;
    expect(s.last_run_at).not.toBeNull();
    expect(s.last_status).toBe('succeeded');
    const tasks = await h.api('GET', `/api/v1/tasks?schedule_id=${id}&limit=200`);
    expect(tasks.body.data.length).toBeGreaterThanOrEqual(5);
    expect(tasks.body.data.every((t: any) => t.schedule_id === id && t.scheduled_for !== null)).toBe(true);
    await h.api('DELETE', `/api/v1/schedules/${id}`);
  });

  it('trigger runs once now, outside the cron', async () => {
    const { body } = await create({ name: 'yearly', cron: '0 0 1 1 *', url: `${sink.url}/trigger` });
    const r = await h.api('POST', `/api/v1/schedules/${body.id}/trigger`);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ id: expect.any(String), status: 'pending', schedule_id: body.id });
    await waitFor(() => hits('/trigger').length === 1, { what: 'the triggered run' });
    await new Promise((r) => setTimeout(r, 500));
    expect(hits('/trigger')).toHaveLength(1);
    expect((await h.task(r.body.id)).scheduled_for).toBeNull();
  });

  it('a failing target counts consecutive_failures, and a success resets it', async () => {
    failing.add('/flaky-cron');
    const { body } = await create({ name: 'flaky', cron: '0 0 1 1 *', url: `${sink.url}/flaky-cron`, retry: { max_retries: 0 } });
    for (let i = 1; i <= 3; i++) {
      await h.api('POST', `/api/v1/schedules/${body.id}/trigger`);
      await waitFor(async () => (await h.api('GET', `/api/v1/schedules/${body.id}`)).body.consecutive_failures === i, {
        what: `${i} failures`,
      });
    }
    expect((await h.api('GET', `/api/v1/schedules/${body.id}`)).body.last_status).toBe('failed');
    failing.delete('/flaky-cron');
    await h.api('POST', `/api/v1/schedules/${body.id}/trigger`);
    await waitFor(async () => (await h.api('GET', `/api/v1/schedules/${body.id}`)).body.last_status === 'succeeded', { what: 'recovery' });
    expect((await h.api('GET', `/api/v1/schedules/${body.id}`)).body.consecutive_failures).toBe(0);
  });

  it('PATCH changes fields, revalidates the whole, and moves next_run_at when the cron changes', async () => {
    const { body } = await create({ name: 'patch-me', cron: '0 0 1 1 *', url: `${sink.url}/p`, label: 'l1' });
    const bad = await h.api('PATCH', `/api/v1/schedules/${body.id}`, { cron: '61 * * * *' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe('cron');
    const r = await h.api('PATCH', `/api/v1/schedules/${body.id}`, {
      cron: '0 12 * * *',
      timezone: 'America/New_York',
      label: null,
      method: 'PUT',
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ cron: '0 12 * * *', timezone: 'America/New_York', method: 'PUT', url: `${sink.url}/p` });
    expect(r.body.label).toBeUndefined();
    expect(r.body.next_run_at).toBe(nextTick('0 12 * * *', 'America/New_York', new Date())!.toISOString());
  });

  it('another team gets 404; a read key cannot write', async () => {
    const { body } = await create({ name: 'mine', cron: '0 0 1 1 *', url: sink.url });
    const [other] = await h.sql`insert into teams (slug, name) values ('sched-other', 'x') returning id`;
    const { createKey } = await import('../shared/keys.ts');
    const key = (await createKey(h.sql, String(other!.id), 'x', 'admin')).key;
    for (const [m, p] of [
      ['GET', ''],
      ['PATCH', ''],
      ['DELETE', ''],
      ['POST', '/pause'],
      ['POST', '/trigger'],
    ] as const) {
      const r = await h.api(m, `/api/v1/schedules/${body.id}${p}`, m === 'PATCH' ? { name: 'stolen' } : undefined, { key });
      expect(r.status).toBe(404);
    }
    expect((await h.api('POST', `/api/v1/schedules/${body.id}/pause`, undefined, { key: h.team.keys.read })).status).toBe(403);
    expect((await h.api('GET', `/api/v1/schedules/${body.id}`)).body.name).toBe('mine');
  });
});

describe('ticks', () => {
  it('missed ticks collapse into the most recent one; the same tick never makes two tasks', async () => {
    await h.worker!.leaderServices.stop(); // drive the scheduler by hand
    try {
      // Yearly, so no tick can come due between the two passes below (a 5-minute cron did, once).
      const { body } = await create({ name: 'missed', cron: '0 0 1 1 *', timezone: 'Europe/Oslo', url: `${sink.url}/missed` });
      await h.sql`update schedules set next_run_at = now() - interval '3 years' where id = ${body.id}`;
      await enqueueDueTicks(h.sql);
      const rows = await h.sql`select scheduled_for from tasks where schedule_id = ${body.id}`;
      expect(rows).toHaveLength(1);
      expect(rows[0]!.scheduled_for.toISOString()).toBe(latestTickAtOrBefore('0 0 1 1 *', 'Europe/Oslo', new Date())!.toISOString());
      const [s] = await h.sql`select next_run_at, last_run_at from schedules where id = ${body.id}`;
      expect(s!.last_run_at.getTime()).toBe(rows[0]!.scheduled_for.getTime());
      expect(s!.next_run_at.toISOString()).toBe(nextTick('0 0 1 1 *', 'Europe/Oslo', new Date())!.toISOString());

      // A second leader that still sees the old cursor (a split second of overlap) makes no new task.
      // The tick's task finishes first: a completion of that very task while the second pass holds
      // the schedule is a deadlock PostgreSQL breaks by failing one of them (worker/maintenance/scheduler.ts).
      await waitFor(async () => (await h.sql`select status from tasks where schedule_id = ${body.id}`)[0]?.status === 'succeeded', {
        what: "the tick's task delivered",
      });
      await h.sql`update schedules set next_run_at = now() - interval '1 day' where id = ${body.id}`;
      await enqueueDueTicks(h.sql);
      expect(await h.sql`select 1 from tasks where schedule_id = ${body.id}`).toHaveLength(1);
    } finally {
      h.worker!.leaderServices.start();
    }
  });

  it('the worker reports leadership in /readyz and /metrics', async () => {
    const port = h.worker!.metricsPort;
    const ready = await (await fetch(`http://127.0.0.1:${port}/readyz`)).json();
    expect(ready).toMatchObject({ status: 'ok', leader: true });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('posthorn_leader 1');
  });
});

describe('croner rules we rely on', () => {
  it('DST in Europe/Oslo: a fixed-time job in the spring gap runs after it, once in the repeated hour', () => {
    // 2027-03-28: 02:00 → 03:00 local. 02:30 does not exist; croner runs it at 03:00 local (01:00Z).
    expect(nextTick('30 2 * * *', 'Europe/Oslo', new Date('2027-03-27T12:00:00Z'))!.toISOString()).toBe('2027-03-28T01:00:00.000Z');
    // 2026-10-25: 03:00 → 02:00 local. 02:30 happens twice; a fixed-time job runs at the first.
    const first = nextTick('30 2 * * *', 'Europe/Oslo', new Date('2026-10-24T12:00:00Z'))!;
    expect(first.toISOString()).toBe('2026-10-25T00:30:00.000Z');
    expect(nextTick('30 2 * * *', 'Europe/Oslo', first)!.toISOString()).toBe('2026-10-26T01:30:00.000Z');
  });
});
