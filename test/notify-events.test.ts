// The completer writes task.failed, schedule.failed and schedule.recovered into the event
// outbox in the statement that finishes the task, and notify:false (task or schedule) keeps
// them out. Real worker, real HTTP target.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { originOf } from '../worker/breaker.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { startSink } from './helpers/sink.ts';

type Harness = Awaited<ReturnType<typeof startHarness>>;
let h: Harness;
let sink: Awaited<ReturnType<typeof startSink>>;
const answers = new Map<string, number>();

beforeAll(async () => {
  h = await startHarness({ worker: {} });
  sink = await startSink((r) => ({ status: answers.get(r.path) ?? 200 }));
});
afterAll(async () => {
  await h?.close();
  await sink?.close();
});

const NO_RETRY = { max_retries: 0, min_backoff_ms: 0, max_backoff_ms: 0 };

async function finished(id: string) {
  return waitFor(
    async () => {
      const t = await h.task(id);
      return ['succeeded', 'failed'].includes(t.status) ? t : null;
    },
    { what: `task ${id} to finish` },
  );
}

async function eventsFor(where: { task?: string; subject?: string }) {
  const rows = await h.sql`select type, subject, data from events order by id`;
  return rows.filter((r) => (where.task ? r.data.task_id === where.task : true) && (where.subject ? r.subject === where.subject : true));
}

describe('events from the completer', () => {
  it('a task that ends failed records task.failed about its origin; notify:false and successes record nothing', async () => {
    answers.set('/bad', 400);
    const loud = await h.enqueue({ url: `${sink.url}/bad`, retry: NO_RETRY, headers: { 'x-secret': 'hunter2' }, body: { pii: 'x' } });
    const quiet = await h.enqueue({ url: `${sink.url}/bad`, retry: NO_RETRY, notify: false });
    const fine = await h.enqueue({ url: `${sink.url}/good`, retry: NO_RETRY });
    expect((await finished(loud)).status).toBe('failed');
    const q = await finished(quiet);
    expect(q).toMatchObject({ status: 'failed', notify: false });
    expect((await finished(fine)).status).toBe('succeeded');

    const [ev, ...more] = await eventsFor({ task: loud });
    expect(more).toEqual([]);
    expect(ev).toMatchObject({ type: 'task.failed', subject: sink.url });
    expect(ev!.data).toMatchObject({
      task_id: loud,
      origin: sink.url,
      attempts: 1,
      outcome: 'http_error',
      status_code: 400,
      schedule_id: null,
    });
    expect(JSON.stringify(ev!.data)).not.toMatch(/hunter2|pii/);
    expect(await eventsFor({ task: quiet })).toEqual([]);
    expect(await eventsFor({ task: fine })).toEqual([]);

    const bad = await h.api('POST', '/api/v1/queue', { url: `${sink.url}/x`, notify: 'no' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe('notify');
  });

  it("task.failed's subject is the origin as circuits name it, default port written out", async () => {
    // Nothing listens on 127.0.0.1:443 here: the attempt fails at once (network_error).
    const url = 'https://127.0.0.1/unreachable?token=x';
    const id = await h.enqueue({ url, retry: NO_RETRY });
    expect((await finished(id)).status).toBe('failed');
    const [ev] = await eventsFor({ task: id });
    expect(ev).toMatchObject({ type: 'task.failed', subject: 'https://127.0.0.1:443' });
    expect(ev!.subject).toBe(originOf(url)); // the circuits' key (worker/breaker.ts)
    expect(ev!.data.origin).toBe('https://127.0.0.1:443');
  });

  it('failures to one origin finished in one batch are one event whose count says how many', async () => {
    const dead = await startSink(() => ({ status: 410 }));
    try {
      const tasks = Array.from({ length: 60 }, (_, i) => ({ url: `${dead.url}/gone/${i}`, retry: NO_RETRY }));
      const r = await h.api('POST', '/api/v1/queue/batch', { tasks });
      expect(r.status).toBe(202);
      for (const t of r.body.tasks) await finished(t.id);
      const evs = await eventsFor({ subject: dead.url });
      expect(evs.length).toBeGreaterThanOrEqual(1);
      expect(evs.length).toBeLessThanOrEqual(60);
      expect(evs.reduce((n, e) => n + e.data.count, 0)).toBe(60);
      const ids = new Set(r.body.tasks.map((t: { id: string }) => t.id));
      expect(evs.every((e) => e.type === 'task.failed' && ids.has(e.data.task_id) && e.data.status_code === 410)).toBe(true);
    } finally {
      await dead.close();
    }
  });

  it('schedule.failed on the first failure in a row, not again until schedule.recovered', async () => {
    const s = await h.api('POST', '/api/v1/schedules', {
      name: 'nightly',
      cron: '0 0 1 1 *',
      url: `${sink.url}/sched`,
      retry: NO_RETRY,
    });
    expect(s.status).toBe(201);
    const id = s.body.id as string;
    const run = async (status: number) => {
      answers.set('/sched', status);
      const r = await h.api('POST', `/api/v1/schedules/${id}/trigger`);
      expect(r.status).toBe(202);
      await finished(r.body.id);
      return r.body.id as string;
    };
    const types = async () => (await eventsFor({ subject: id })).map((e) => e.type);

    const t1 = await run(500);
    expect(await types()).toEqual(['task.failed', 'schedule.failed']);
    const [taskEv, schedEv] = await eventsFor({ subject: id });
    expect(taskEv!.data).toMatchObject({ task_id: t1, schedule_id: id, schedule_name: 'nightly', status_code: 500 });
    expect(schedEv!.data).toMatchObject({
      schedule_id: id,
      schedule_name: 'nightly',
      task_id: t1,
      consecutive_failures: 1,
      status_code: 500,
    });
    await run(500);
    expect(await types()).toEqual(['task.failed', 'schedule.failed', 'task.failed']);
    const t3 = await run(200);
    expect(await types()).toEqual(['task.failed', 'schedule.failed', 'task.failed', 'schedule.recovered']);
    expect((await eventsFor({ subject: id })).at(-1)!.data).toMatchObject({ task_id: t3, consecutive_failures: 2 });
    await run(200);
    await run(500);
    expect(await types()).toEqual([
      'task.failed',
      'schedule.failed',
      'task.failed',
      'schedule.recovered',
      'task.failed',
      'schedule.failed',
    ]);
    expect((await h.api('GET', `/api/v1/schedules/${id}`)).body.consecutive_failures).toBe(1);
  });

  it('a schedule with notify:false is silent, its tasks included', async () => {
    const s = await h.api('POST', '/api/v1/schedules', {
      name: 'quiet',
      cron: '0 0 1 1 *',
      url: `${sink.url}/quiet`,
      retry: NO_RETRY,
      notify: false,
    });
    expect(s.status).toBe(201);
    expect(s.body.notify).toBe(false);
    answers.set('/quiet', 500);
    for (const status of [500, 200]) {
      answers.set('/quiet', status);
      const r = await h.api('POST', `/api/v1/schedules/${s.body.id}/trigger`);
      await finished(r.body.id);
    }
    expect(await eventsFor({ subject: s.body.id })).toEqual([]);
    expect((await h.api('GET', `/api/v1/schedules/${s.body.id}`)).body.consecutive_failures).toBe(0);
  });
});
