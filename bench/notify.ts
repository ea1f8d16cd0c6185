// What notifications cost the drain (docs/notifications.md): 10,000 tasks fail at once against
// a dead origin (a closed port on 127.0.0.1, max_retries 0), drained by 2 worker processes of
// this checkout, with four channels (slack, discord, webhook, email) listening for task.failed.
//   silent: the tasks carry `notify: false`, so the completer writes no event and the leader's
//           notifier has nothing to fold or send: the drain without notifications;
//   notify: the same tasks with notify on: the completer writes task.failed events, the
//           notifier folds them and sends one message per channel.
// Same code, same database, same run: the difference is the notification work alone. Runs
// alternate (and swap order each round) so machine load hits both alike; the ratio of medians
// is the figure to quote. Circuit breakers are kept closed (a dead origin would open one and
// hold the tasks, in both variants).
//   node --import tsx bench/notify.ts     (BENCH_NOTIFY_ROUNDS=3, BENCH_NOTIFY_TASKS=10000)
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { SMTPServer } from 'smtp-server';
import { createSql } from '../shared/db.ts';
import { startEmbeddedPostgres } from '../shared/embedded.ts';
import { uuidv7 } from '../shared/ids.ts';
import { bootstrap } from '../shared/keys.ts';
import { migrate } from '../shared/migrate.ts';
import { taskInputSchema } from '../shared/schemas.ts';
import { buildTask, insertTasks, taskTraceparent } from '../shared/tasks.ts';
import { type Child, forkChild, freePort, postgresCpuSeconds, procCpuSeconds, sleep, startSink, stopChild } from './harness.ts';

const TASKS = Number(process.env.BENCH_NOTIFY_TASKS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_NOTIFY_ROUNDS ?? 3);
const BIN = fileURLToPath(new URL('../bin/posthorn.js', import.meta.url));
type Variant = 'silent' | 'notify';
const log = (m: string) => process.stderr.write(`bench-notify: ${m}\n`);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'posthorn-bench-notify-'));
const db = await startEmbeddedPostgres({ dataDir: tmp, port: await freePort() });
const children: Child[] = [];
const sql = createSql(db.url, { max: 8 });
try {
  await migrate(sql);
  await bootstrap(sql);
  const teamId = String((await sql`select id from teams where slug = 'default'`)[0]!.id);
  const sink = await startSink();
  let mails = 0;
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _s, cb) {
      stream.resume();
      stream.on('end', () => {
        mails++;
        cb();
      });
    },
  });
  await new Promise<void>((ok) => smtp.listen(0, '127.0.0.1', ok));
  const smtpUrl = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
  for (const [type, target] of [
    ['slack', `${sink.url}/slack`],
    ['discord', `${sink.url}/discord`],
    ['webhook', `${sink.url}/webhook`],
    ['email', 'ops@example.com'],
  ]) {
    await sql`insert into channels (id, team_id, type, target, events) values (${uuidv7()}, ${teamId}, ${type}, ${target}, ${['task.failed']})`;
  }
  const env = {
    ...process.env,
    DATABASE_URL: db.url,
    POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
    POSTHORN_LOG_LEVEL: 'warn',
    POSTHORN_METRICS_PORT: '0',
    POSTHORN_SHUTDOWN_GRACE_MS: '3000',
    POSTHORN_SMTP_URL: smtpUrl,
    POSTHORN_CIRCUIT_MIN_REQUESTS: '1000000',
  };

  async function run(variant: Variant) {
    const dead = await freePort(); // nothing listens: every attempt is a refused connection
    const workers = [0, 1].map((i) => forkChild(`${variant}-worker-${i + 1}`, BIN, ['worker'], { env, readyTimeoutMs: 120_000 }));
    children.push(...workers);
    await Promise.all(workers.map((w) => w.ready));
    await sleep(500); // let the leader settle (both variants alike)
    const msgsBefore = sink.anonymous + mails;
    const input = taskInputSchema.parse({
      url: `http://127.0.0.1:${dead}/x`,
      retry: { max_retries: 0, min_backoff_ms: 0, max_backoff_ms: 0 },
      notify: variant === 'notify',
    });
    // CPU seconds of the workers and PostgreSQL: what the drain cost, less sensitive than wall
    // time to what else the (shared) machine is doing.
    const cpu = () => workers.reduce((n, w) => n + procCpuSeconds(w.proc.pid), 0) + postgresCpuSeconds(path.join(tmp, 'pg'));
    const cpu0 = cpu();
    const t0 = performance.now();
    for (let i = 0; i < TASKS; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, TASKS - i) }, () =>
        buildTask(input, { teamId, traceparent: taskTraceparent(undefined) }),
      );
      await insertTasks(sql, batch);
    }
    for (;;) {
      const [r] = await sql`select count(*)::int as n from tasks where status in ('pending', 'running', 'retrying')`;
      if (r!.n === 0) break;
      await sleep(20);
    }
    const drainMs = performance.now() - t0;
    const cpuS = cpu() - cpu0;
    let notifyMs = NaN;
    if (variant === 'notify') {
      for (let i = 0; i < 500; i++) {
        const [r] = await sql`select count(*)::int as n from events where dispatched_at is null`;
        const [d] = await sql`select count(*)::int as n from channel_deliveries where status = 'pending'`;
        if (r!.n === 0 && d!.n === 0) break;
        await sleep(20);
      }
      notifyMs = performance.now() - t0;
    }
    await Promise.all(workers.map((w) => stopChild(w)));
    const messages = sink.anonymous + mails - msgsBefore;
    log(
      `${variant}: drain ${Math.round(drainMs)} ms (${Math.round((TASKS * 1000) / drainMs)}/s), CPU ${cpuS.toFixed(2)} s, messages ${messages}${variant === 'notify' ? `, all sent ${Math.round(notifyMs)} ms after the first insert` : ''}`,
    );
    return { drainMs, cpuS };
  }

  const times = { silent: [] as number[], notify: [] as number[] };
  const cpus = { silent: [] as number[], notify: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    const order: Variant[] = r % 2 === 0 ? ['silent', 'notify'] : ['notify', 'silent'];
    for (const v of order) {
      const { drainMs, cpuS } = await run(v);
      times[v].push(drainMs);
      cpus[v].push(cpuS);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ratio = median(times.notify) / median(times.silent);
  const cpuRatio = median(cpus.notify) / median(cpus.silent);
  const result = {
    tasks: TASKS,
    rounds: ROUNDS,
    silent_ms: times.silent.map(Math.round),
    notify_ms: times.notify.map(Math.round),
    ratio: Number(ratio.toFixed(3)),
    silent_cpu_s: cpus.silent.map((x) => Number(x.toFixed(2))),
    notify_cpu_s: cpus.notify.map((x) => Number(x.toFixed(2))),
    cpu_ratio: Number(cpuRatio.toFixed(3)),
  };
  console.log(
    `notifications: drain of ${TASKS} failing tasks, median notify/silent: wall time ${ratio.toFixed(3)}, CPU of workers + PostgreSQL ${cpuRatio.toFixed(3)}`,
  );
  console.log(`BENCH_NOTIFY_JSON ${JSON.stringify(result)}`);
  await sink.close();
  await new Promise<void>((ok) => smtp.close(() => ok()));
} finally {
  for (const c of children) await stopChild(c, 2000).catch(() => {});
  await sql.end({ timeout: 2 });
  await db.stop();
  rmSync(tmp, { recursive: true, force: true });
}
