// The retry defaults as stored (tasks and their callback tasks), and the warn line for a task
// that ends failed: its id, team, origin and last outcome, never its headers or body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness } from './helpers/harness.ts';
import { captureLogger } from './helpers/log.ts';
import { waitFor } from './helpers/net.ts';
import { startSink } from './helpers/sink.ts';

const log = captureLogger('info');
let h: Awaited<ReturnType<typeof startHarness>>;
let sink: Awaited<ReturnType<typeof startSink>>;

beforeAll(async () => {
  h = await startHarness({ worker: { workerConcurrency: 4 }, logger: log.logger });
  sink = await startSink((req) => (req.path.startsWith('/gone') ? { status: 410, body: 'gone' } : { status: 200, body: 'ok' }));
});
afterAll(async () => {
  await h?.close();
  await sink?.close();
});

describe('a task that ends failed', () => {
  it('is logged at warn with id, team, origin and last outcome; its callback task has the default retries', async () => {
    const secret = 'Bearer never-log-me-5e4d3c2b1a';
    // 410 is not retryable: failed after one attempt, whatever the retry policy.
    const id = await h.enqueue({
      url: `${sink.url}/gone`,
      headers: { authorization: secret },
      body: { card: secret },
      failure_callback_url: `${sink.url}/hook`,
    });
    const line = await waitFor(() => log.records().find((l) => l.msg === 'task failed' && l.task_id === id), {
      what: 'the failed-task log line',
    });
    expect(line).toMatchObject({
      level: 40,
      task_id: id,
      team_id: h.team.teamId,
      origin: 'api',
      attempts: 1,
      outcome: 'http_error',
      status_code: 410,
    });
    expect(log.text()).not.toContain('never-log-me');

    const task = await h.task(id);
    expect(task.retry).toEqual({ max_retries: 8, min_backoff_ms: 10000, max_backoff_ms: 3600000 });
    const [cb] = await h.sql`select max_retries, min_backoff_ms, max_backoff_ms from tasks where parent_id = ${id}`;
    expect(cb).toEqual({ max_retries: 8, min_backoff_ms: 10000, max_backoff_ms: 3600000 });
  });

  it('a task that succeeds is not logged as failed', async () => {
    const id = await h.enqueue({ url: `${sink.url}/fine` });
    await waitFor(async () => (await h.task(id)).status === 'succeeded', { what: 'success' });
    expect(log.records().some((l) => l.msg === 'task failed' && l.task_id === id)).toBe(false);
  });
});
