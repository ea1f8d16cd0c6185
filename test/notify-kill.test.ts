// Exactly one message per change, across a crash: a worker SIGKILLed after a task failed (the
// event is committed) but before its notifier sent anything; another worker then sends the
// message once. And a notifier that dies between folding and sending leaves delivery rows
// that the next pass sends once.
import { afterAll, afterEach, expect, it } from 'vitest';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { testNotifier } from './helpers/notify.ts';
import { killAll, spawnPosthorn, testWorkerEnv } from './helpers/proc.ts';
import { startSink } from './helpers/sink.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});
afterAll(killAll);

function spawnWorker(databaseUrl: string, notifyIntervalMs: number) {
  return spawnPosthorn(
    ['worker'],
    testWorkerEnv(databaseUrl, {
      POSTHORN_LOG_LEVEL: 'info',
      POSTHORN_NOTIFY_INTERVAL_MS: String(notifyIntervalMs),
      POSTHORN_PUBLIC_URL: 'https://posthorn.example.com',
    }),
    { ipc: true },
  );
}

it('a worker killed between the failure and the send: the next worker sends exactly one message', async () => {
  const h = await startHarness({ worker: false });
  cleanups.push(h.close);
  const sink = await startSink((r) => ({ status: r.path === '/slack' ? 200 : 400 }));
  cleanups.push(sink.close);
  expect((await h.api('POST', '/api/v1/channels', { type: 'slack', target: `${sink.url}/slack`, events: ['task.failed'] })).status).toBe(
    201,
  );

  // The victim's notifier runs once when it becomes leader, then not for 10 minutes.
  const victim = spawnWorker(h.db.url, 600_000);
  await victim.ready;
  await victim.waitForOutput(/became leader/);
  const id = await h.enqueue({ url: `${sink.url}/task`, retry: { max_retries: 0, min_backoff_ms: 0, max_backoff_ms: 0 } });
  await waitFor(async () => (await h.sql`select 1 from events where data->>'task_id' = ${id}`).length > 0, {
    what: 'the task.failed event',
  });
  victim.proc.kill('SIGKILL');
  await victim.exited;

  // The change is committed, nothing was sent or even queued for sending.
  expect((await h.task(id)).status).toBe('failed');
  expect((await h.sql`select dispatched_at from events where data->>'task_id' = ${id}`)[0]!.dispatched_at).toBeNull();
  expect(Number((await h.sql`select count(*) from channel_deliveries`)[0]!.count)).toBe(0);
  expect(sink.received.filter((r) => r.path === '/slack')).toHaveLength(0);

  const heir = spawnWorker(h.db.url, 100);
  await heir.ready;
  await waitFor(() => sink.received.some((r) => r.path === '/slack'), { what: 'the message', timeoutMs: 20_000 });
  // Several more passes of the heir's notifier (every 100 ms) must not send it again.
  await new Promise((r) => setTimeout(r, 1500));
  const got = sink.received.filter((r) => r.path === '/slack');
  expect(got).toHaveLength(1);
  expect(JSON.parse(got[0]!.body).text).toContain(`<https://posthorn.example.com/ui/tasks/${id}|Open the task>`);
  const rows = await h.sql`select status, attempts from channel_deliveries`;
  expect(rows.map((r) => [r.status, r.attempts])).toEqual([['sent', 1]]);
});

it('a notifier that dies after folding leaves delivery rows; the next pass sends each once', async () => {
  const h = await startHarness({ worker: false });
  cleanups.push(h.close);
  const sink = await startSink();
  cleanups.push(sink.close);
  expect((await h.api('POST', '/api/v1/channels', { type: 'discord', target: `${sink.url}/d`, events: ['schedule.failed'] })).status).toBe(
    201,
  );
  await h.sql`insert into events (team_id, type, subject, data) values (${h.team.teamId}, 'schedule.failed', 's-1', '{"schedule_name": "n"}')`;

  const dying = testNotifier(h.sql);
  const t0 = new Date('2030-06-01T00:00:00Z');
  expect(await dying.foldBatch(t0)).toEqual({ events: 1, created: 1 }); // committed; then it "dies" before sending
  await dying.close();
  expect(sink.received).toHaveLength(0);

  const next = testNotifier(h.sql);
  cleanups.push(next.close);
  expect(await next.runOnce(new Date(t0.getTime() + 1000))).toMatchObject({ events: 0, sent: 1 });
  expect(await next.runOnce(new Date(t0.getTime() + 2000))).toMatchObject({ events: 0, sent: 0 });
  expect(sink.received).toHaveLength(1);
  expect(JSON.parse(sink.received[0]!.body).content).toContain('Schedule "n" failed');
});
