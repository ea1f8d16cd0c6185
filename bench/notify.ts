// What notifications cost the drain (docs/notifications.md): 10,000 tasks fail at once against
// a dead origin (a closed port on 127.0.0.1, max_retries 0), drained by 2 worker processes,
// with four channels (slack, discord, webhook, email) listening for task.failed.
//   before: the worker code of another checkout (BENCH_BEFORE_DIR, e.g. an export of main),
//           which writes no events and runs no notifier;
//   after:  this checkout: the completer writes 10,000 events, the leader's notifier folds them.
// Runs alternate before/after (and swap order each round) in the same period on the same
// database, so machine load hits both alike; the ratio of medians is the figure to quote.
//   node --import tsx bench/notify.ts     (BENCH_BEFORE_DIR required, BENCH_NOTIFY_ROUNDS=3)
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
const beforeDir = process.env.BENCH_BEFORE_DIR;
if (!beforeDir) throw new Error('set BENCH_BEFORE_DIR to a checkout of the code to compare with (e.g. git archive main)');
const BIN = { after: fileURLToPath(new URL('../bin/posthorn.js', import.meta.url)), before: path.resolve(beforeDir, 'bin/posthorn.js') };
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
  };

  async function run(variant: 'before' | 'after') {
    const dead = await freePort(); // nothing listens: every attempt is a refused connection
    const workers = [0, 1].map((i) => forkChild(`${variant}-worker-${i + 1}`, BIN[variant], ['worker'], { env }));
    children.push(...workers);
    await Promise.all(workers.map((w) => w.ready));
    await sleep(500); // let the leader settle (both variants alike)
    const msgsBefore = sink.anonymous + mails;
    const input = taskInputSchema.parse({
      url: `http://127.0.0.1:${dead}/x`,
      retry: { max_retries: 0, min_backoff_ms: 0, max_backoff_ms: 0 },
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
    if (variant === 'after') {
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
      `${variant}: drain ${Math.round(drainMs)} ms (${Math.round((TASKS * 1000) / drainMs)}/s), CPU ${cpuS.toFixed(2)} s, messages ${messages}${variant === 'after' ? `, all sent ${Math.round(notifyMs)} ms after the first insert` : ''}`,
    );
    return { drainMs, cpuS };
  }

  const times = { before: [] as number[], after: [] as number[] };
  const cpus = { before: [] as number[], after: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    const order: ('before' | 'after')[] = r % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    for (const v of order) {
      const { drainMs, cpuS } = await run(v);
      times[v].push(drainMs);
      cpus[v].push(cpuS);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ratio = median(times.after) / median(times.before);
  const cpuRatio = median(cpus.after) / median(cpus.before);
  const result = {
    tasks: TASKS,
    rounds: ROUNDS,
    before_ms: times.before.map(Math.round),
    after_ms: times.after.map(Math.round),
    ratio: Number(ratio.toFixed(3)),
    before_cpu_s: cpus.before.map((x) => Number(x.toFixed(2))),
    after_cpu_s: cpus.after.map((x) => Number(x.toFixed(2))),
    cpu_ratio: Number(cpuRatio.toFixed(3)),
  };
  console.log(
    `notifications: drain of ${TASKS} failing tasks, median after/before: wall time ${ratio.toFixed(3)}, CPU of workers + PostgreSQL ${cpuRatio.toFixed(3)}`,
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
