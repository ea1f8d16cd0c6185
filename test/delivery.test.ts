// Delivery end to end: gateway → PostgreSQL → in-process worker → a real HTTP server on
// 127.0.0.1. Retries, outcomes, timeouts, delays, Retry-After, response capture, callbacks,
// cancel and the lease guard.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, DEFAULT_TIMEOUT_MS } from '../shared/tasks.ts';
import { completeTasks } from '../worker/completer.ts';
import { extendLeases } from '../worker/leases.ts';
import { rescueExpiredLeases } from '../worker/maintenance/rescuer.ts';
import { claimTasks } from '../worker/producer.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { type Behaviour, startSink } from './helpers/sink.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
let sink: Awaited<ReturnType<typeof startSink>>;
const behaviours = new Map<string, Behaviour>();

beforeAll(async () => {
  h = await startHarness({ worker: { workerConcurrency: 16 } });
  sink = await startSink((req, nth) => {
    const path = req.path.split('?')[0]!;
    return behaviours.get(path)?.(req, nth) ?? { status: 200, body: 'ok' };
  });
});
afterAll(async () => {
  await h?.close();
  await sink?.close();
});

const fast = { max_retries: 3, min_backoff_ms: 10, max_backoff_ms: 50 };
const finished = (id: string, timeoutMs = 15_000) =>
  waitFor(
    async () => {
      const t = await h.task(id);
      return ['succeeded', 'failed', 'canceled'].includes(t.status) ? t : null;
    },
    { timeoutMs, what: `task ${id} to finish` },
  );
const attempts = async (id: string) => (await h.api('GET', `/api/v1/tasks/${id}/attempts`)).body.data;
const hits = (path: string) => sink.received.filter((r) => r.path.startsWith(path));

describe('delivery', () => {
  it('sends the stored method, headers and body with the x-posthorn headers', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const r = await h.api(
      'POST',
      '/api/v1/queue',
      { url: `${sink.url}/basic?q=1`, method: 'PATCH', headers: { 'X-Tenant': '42' }, body: { user_id: '123' } },
      { headers: { traceparent: tp } },
    );
    const id = r.body.id;
    const t = await finished(id);
    expect(t.status).toBe('succeeded');
    const [got] = hits('/basic');
    expect(got).toBeDefined();
    expect(got!.method).toBe('PATCH');
    expect(got!.path).toBe('/basic?q=1');
    expect(JSON.parse(got!.body)).toEqual({ user_id: '123' });
    expect(got!.headers).toMatchObject({
      'x-tenant': '42',
      'content-type': 'application/json',
      'x-posthorn-task-id': id,
      'x-posthorn-attempt': '1',
      'x-posthorn-retried': '0',
    });
    expect(got!.headers['user-agent']).toMatch(/^Posthorn\/\d+\.\d+\.\d+$/);
    // The attempt continues the enqueue request's trace with a span of its own.
    expect(got!.headers.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(got!.headers.traceparent).not.toBe(tp);
    expect(t.attempts).toBe(1);
    expect(t.last_attempt).toMatchObject({ attempt: 1, outcome: 'success', status_code: 200 });
    expect(t.finished_at).not.toBeNull();
  });

  it('a target that fails twice then succeeds: 3 attempts recorded', async () => {
    behaviours.set('/flaky', (_r, nth) =>
      nth <= 2 ? { status: 503, headers: { 'x-why': 'maintenance' }, body: `down ${nth}` } : { status: 201, body: 'created' },
    );
    const id = await h.enqueue({ url: `${sink.url}/flaky`, body: 'x', retry: fast });
    const t = await finished(id);
    expect(t.status).toBe('succeeded');
    const a = await attempts(id);
    expect(a.map((x: any) => [x.attempt, x.outcome, x.status_code, x.response_body])).toEqual([
      [1, 'http_error', 503, 'down 1'],
      [2, 'http_error', 503, 'down 2'],
      [3, 'success', 201, 'created'],
    ]);
    expect(hits('/flaky').map((r) => r.headers['x-posthorn-attempt'])).toEqual(['1', '2', '3']);
    expect(hits('/flaky').map((r) => r.headers['x-posthorn-retried'])).toEqual(['0', '1', '2']);
    expect(a[0].duration_ms).toBeGreaterThanOrEqual(0);
    expect(a[0].response_headers['x-why']).toBe('maintenance');
  });

  it('a 404 is not retried: 1 attempt, failed', async () => {
    behaviours.set('/missing', () => ({ status: 404, body: 'no' }));
    const id = await h.enqueue({ url: `${sink.url}/missing`, retry: fast });
    const t = await finished(id);
    expect(t.status).toBe('failed');
    expect(t.attempts).toBe(1);
    expect((await attempts(id))[0]).toMatchObject({ outcome: 'http_error', status_code: 404 });
  });

  it('a redirect is not followed: http_error with the status, not retried', async () => {
    behaviours.set('/moved', () => ({ status: 302, headers: { location: `${sink.url}/elsewhere` } }));
    const id = await h.enqueue({ url: `${sink.url}/moved`, retry: fast });
    const t = await finished(id);
    expect(t.status).toBe('failed');
    expect((await attempts(id))[0]).toMatchObject({ outcome: 'http_error', status_code: 302 });
    expect(hits('/elsewhere')).toHaveLength(0);
  });

  it('retries run out: max_retries 2 means 3 attempts, then failed', async () => {
    behaviours.set('/always500', () => ({ status: 500 }));
    const id = await h.enqueue({ url: `${sink.url}/always500`, retry: { ...fast, max_retries: 2 } });
    const t = await finished(id);
    expect(t.status).toBe('failed');
    expect(t.attempts).toBe(3);
    expect(hits('/always500')).toHaveLength(3);
  });

  it('a timeout is recorded as timeout and retried', async () => {
    behaviours.set('/slow', (_r, nth) => (nth === 1 ? { status: 200, delayMs: 1500 } : { status: 200 }));
    const id = await h.enqueue({ url: `${sink.url}/slow`, timeout_ms: 300, retry: fast });
    const t = await finished(id);
    expect(t.status).toBe('succeeded');
    const a = await attempts(id);
    expect(a[0]).toMatchObject({ outcome: 'timeout', status_code: null });
    expect(a[0].duration_ms).toBeGreaterThanOrEqual(250);
    expect(a[0].duration_ms).toBeLessThan(1400);
    expect(a[1]).toMatchObject({ outcome: 'success' });
  });

  it('a refused connection is a retryable network_error', async () => {
    const closed = await startSink();
    const url = closed.url;
    await closed.close();
    const id = await h.enqueue({ url: `${url}/gone`, retry: { max_retries: 1, min_backoff_ms: 10, max_backoff_ms: 10 } });
    const t = await finished(id);
    expect(t.status).toBe('failed');
    const a = await attempts(id);
    expect(a).toHaveLength(2);
    expect(a[0].outcome).toBe('network_error');
    expect(a[0].error).toMatch(/ECONNREFUSED/);
  });

  it('a delay is honoured, measured against the clock', async () => {
    const sent = Date.now();
    const id = await h.enqueue({ url: `${sink.url}/delayed`, delay: 2 });
    expect((await h.task(id)).status).toBe('scheduled');
    await finished(id);
    const [got] = hits('/delayed');
    const waited = got!.at - sent;
    expect(waited).toBeGreaterThanOrEqual(1990);
    expect(waited).toBeLessThan(2000 + 1500); // poll interval 100 ms here, plus slack for a busy machine
  });

  it('Retry-After on 429 sets the next attempt (capped at max_backoff_ms)', async () => {
    behaviours.set('/limited', (_r, nth) => (nth === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    const id = await h.enqueue({ url: `${sink.url}/limited`, retry: { max_retries: 3, min_backoff_ms: 1, max_backoff_ms: 60_000 } });
    await finished(id);
    const [first, second] = hits('/limited');
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);

    behaviours.set('/capped', (_r, nth) => (nth === 1 ? { status: 503, headers: { 'retry-after': '3600' } } : { status: 200 }));
    const cid = await h.enqueue({ url: `${sink.url}/capped`, retry: { max_retries: 3, min_backoff_ms: 1, max_backoff_ms: 200 } });
    const t = await finished(cid, 5000);
    expect(t.status).toBe('succeeded');
  });

  it('keeps at most 64 KiB of a response body, marks it truncated; binary is base64', async () => {
    behaviours.set('/big', () => ({ status: 500, body: 'é'.repeat(40_000) })); // 80,000 bytes, a 2-byte character on the 64 KiB edge
    const id = await h.enqueue({ url: `${sink.url}/big`, retry: { max_retries: 0 } });
    await finished(id);
    const [a] = await attempts(id);
    expect(a.response_truncated).toBe(true);
    expect(Buffer.byteLength(a.response_body)).toBeLessThanOrEqual(64 * 1024);
    expect(a.response_body).toBe('é'.repeat(32_768));

    behaviours.set('/bin', () => ({ status: 200, body: '\u0000\u0001binary' }));
    const bid = await h.enqueue({ url: `${sink.url}/bin` });
    await finished(bid);
    const [b] = await attempts(bid);
    expect(b.response_encoding).toBe('base64');
    expect(Buffer.from(b.response_body, 'base64').toString()).toBe('\u0000\u0001binary');
  });

  it('a task canceled while running finishes its attempt but is not retried', async () => {
    behaviours.set('/cancel-me', () => ({ status: 500, delayMs: 700 }));
    const id = await h.enqueue({ url: `${sink.url}/cancel-me`, retry: fast });
    await waitFor(() => hits('/cancel-me').length === 1, { what: 'first attempt to start' });
    const r = await h.api('DELETE', `/api/v1/tasks/${id}`);
    expect(r.status).toBe(200);
    await waitFor(async () => (await attempts(id)).length === 1, { what: 'attempt recorded' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await h.task(id)).status).toBe('canceled');
    expect(hits('/cancel-me')).toHaveLength(1);
  });

  it('a failed task can be replayed: runs again with fresh retries, old attempts kept', async () => {
    let fail = true;
    behaviours.set('/replay', () => ({ status: fail ? 400 : 200 }));
    const id = await h.enqueue({ url: `${sink.url}/replay`, retry: fast });
    expect((await finished(id)).status).toBe('failed');
    fail = false;
    expect((await h.api('POST', `/api/v1/tasks/${id}/replay`)).status).toBe(202);
    await waitFor(async () => (await h.task(id)).status === 'succeeded', { what: 'replayed task to succeed' });
    const a = await attempts(id);
    expect(a.map((x: any) => [x.attempt, x.status_code])).toEqual([
      [1, 400],
      [2, 200],
    ]);
  });

  it('callback_url hears of the outcome as a task of its own; failure_callback_url only of failures', async () => {
    behaviours.set('/cb-fails', () => ({ status: 410 }));
    const okId = await h.enqueue({
      url: `${sink.url}/cb-ok`,
      callback_url: `${sink.url}/callback`,
      failure_callback_url: `${sink.url}/on-failure`,
    });
    const badId = await h.enqueue({
      url: `${sink.url}/cb-fails`,
      callback_url: `${sink.url}/callback`,
      failure_callback_url: `${sink.url}/on-failure`,
    });
    await waitFor(() => hits('/callback').length === 2 && hits('/on-failure').length === 1, { what: 'callbacks' });
    const bodies = hits('/callback').map((r) => JSON.parse(r.body));
    const ok = bodies.find((b) => b.task_id === okId);
    expect(ok).toMatchObject({
      task_id: okId,
      status: 'succeeded',
      attempts: 1,
      last_attempt: { attempt: 1, outcome: 'success', status_code: 200 },
    });
    expect(bodies.find((b) => b.task_id === badId)).toMatchObject({ status: 'failed', last_attempt: { status_code: 410 } });
    // Times as everywhere else in the API: ISO 8601 in UTC with Z, the same as the attempt shows.
    const [attempt] = (await h.api('GET', `/api/v1/tasks/${okId}/attempts`)).body.data;
    expect(ok.last_attempt.started_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(ok.last_attempt).toMatchObject({ started_at: attempt.started_at, finished_at: attempt.finished_at });
    expect(JSON.parse(hits('/on-failure')[0]!.body).task_id).toBe(badId);
    const list = await h.api('GET', '/api/v1/tasks?label=callback');
    const cb = list.body.data.find((t: any) => t.parent_id === okId);
    // Made by the one insert path with the one default policy (shared/tasks.ts).
    expect(cb).toMatchObject({
      label: 'callback',
      parent_id: okId,
      url: `${sink.url}/callback`,
      retry: DEFAULT_RETRY,
      timeout_ms: DEFAULT_TIMEOUT_MS,
      method: 'POST',
      headers: {},
    });
  });
});

describe('leases', () => {
  it('the heartbeat extends only the attempts still running, so a lost completion expires', async () => {
    await h.worker!.producer.stop();
    try {
      const a = await h.enqueue({ url: `${sink.url}/hb` });
      const b = await h.enqueue({ url: `${sink.url}/hb` });
      const claimed = await claimTasks(h.sql, { workerId: 'hb-worker', limit: 2, leaseMs: 1000 });
      expect(claimed.map((t) => t.id).sort()).toEqual([a, b].sort());
      const team = h.team.teamId;
      expect(await extendLeases(h.sql, 'hb-worker', 600_000, [{ team_id: team, id: a }])).toBe(1);
      expect(await extendLeases(h.sql, 'someone-else', 600_000, [{ team_id: team, id: b }])).toBe(0);
      // A task is found by its key, team first: the right id under another team is not it.
      expect(await extendLeases(h.sql, 'hb-worker', 600_000, [{ team_id: String(Number(team) + 1000), id: b }])).toBe(0);
      const rows = await h.sql`select id, lease_expires_at > now() + interval '5 minutes' as extended from tasks where id in (${a}, ${b})`;
      expect(Object.fromEntries(rows.map((r) => [r.id, r.extended]))).toEqual({ [a]: true, [b]: false });
      await h.sql`update tasks set status = 'canceled', finished_at = now() where id in (${a}, ${b})`;
    } finally {
      await h.worker!.producer.start();
    }
  });

  it('a late result from a lost lease never overwrites the rerun', async () => {
    // Claim by hand as a worker that then "dies"; let the lease expire; the real worker reruns
    // the task; then the dead worker's result arrives and must be dropped.
    await h.worker!.producer.stop();
    try {
      const id = await h.enqueue({ url: `${sink.url}/lease`, retry: fast });
      const [claimed] = await claimTasks(h.sql, { workerId: 'ghost', limit: 1, leaseMs: 1 });
      expect(claimed!.id).toBe(id);
      await new Promise((r) => setTimeout(r, 20));
      expect(await rescueExpiredLeases(h.sql)).toBe(1);
      const [rerun] = await claimTasks(h.sql, { workerId: 'live', limit: 1, leaseMs: 60_000 });
      expect(rerun!.attempts).toBe(2);
      const now = new Date();
      const result = {
        outcome: 'http_error' as const,
        statusCode: 500,
        responseHeaders: null,
        responseBody: 'late',
        responseEncoding: null,
        responseTruncated: false,
        error: 'HTTP 500',
        startedAt: now,
        finishedAt: now,
      };
      const [late] = await completeTasks(h.sql, [{ task: claimed!, result, plan: { status: 'failed' } }]);
      expect(late!.written).toBe(false);
      expect((await h.task(id)).status).toBe('running');
      const [live] = await completeTasks(h.sql, [
        { task: rerun!, result: { ...result, outcome: 'success', statusCode: 200, error: null }, plan: { status: 'succeeded' } },
      ]);
      expect(live).toEqual({ written: true, status: 'succeeded', origin: 'api' });
      const a = await attempts(id);
      expect(a.map((x: any) => [x.attempt, x.outcome])).toEqual([
        [1, 'network_error'],
        [2, 'success'],
      ]);
      expect(a[0].error).toMatch(/lease expired/);
    } finally {
      await h.worker!.producer.start();
    }
  });
});
