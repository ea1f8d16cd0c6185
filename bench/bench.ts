// npm run bench: enqueue through the real HTTP gateway, drain with real worker processes to a
// local sink (each task one HTTP POST), and compare with baselines measured in the same run:
//   - single-row INSERT with its own commit, C connections, postgres.js, no HTTP
//   - 1000-row insertTasks() in process, no HTTP
//   - undici → the same sink from 2 child processes × 64 in flight, no queue
// Phases: baselines → enqueue (no workers) → batch enqueue → undici baseline → drain (workers
// start) → latency at a steady rate. Own embedded PostgreSQL in a tmp dir, own ports,
// 127.0.0.1 only; everything is stopped and removed at the end, also on failure or Ctrl-C.
// Knobs: bench/config.ts and docs/bench.md.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { createSql, type Sql } from '../shared/db.ts';
import { type EmbeddedDb, startEmbeddedPostgres } from '../shared/embedded.ts';
import { uuidv7 } from '../shared/ids.ts';
import { bootstrap } from '../shared/keys.ts';
import { migrate } from '../shared/migrate.ts';
import { GATEWAY_NODE_FLAGS } from '../shared/node-flags.ts';
import { taskInputSchema } from '../shared/schemas.ts';
import { buildTask, insertTasks, type NewTask, taskTraceparent } from '../shared/tasks.ts';
import { AIM, CONFIG } from './config.ts';
import { createCpuMeter } from './cpu.ts';
import { waitForDrain } from './drain.ts';
import {
  type Child,
  closedLoop,
  forkChild,
  freePort,
  openLoop,
  procPeakRssMb,
  rate,
  type Sink,
  sleep,
  startSink,
  stopChild,
} from './harness.ts';
import { startOtlpReceiver } from './otlp-receiver.ts';
import { type PeerResult, runPeers } from './peers/run.ts';
import { preload } from './preload.ts';
import { type BenchResult, formatReport, percentiles, ratio } from './report.ts';

const BIN = fileURLToPath(new URL('../bin/posthorn.js', import.meta.url));
const RAW_UNDICI = fileURLToPath(new URL('./raw-undici.ts', import.meta.url));

// ---- resources, all released by cleanup() -------------------------------------------------
const tmp = mkdtempSync(path.join(os.tmpdir(), 'posthorn-bench-'));
const profDir = CONFIG.profDir ?? path.join(os.tmpdir(), `posthorn-bench-prof-${process.pid}`);
let db: EmbeddedDb | null = null;
let sql: Sql | null = null;
let sink: Sink | null = null;
let otlp: Awaited<ReturnType<typeof startOtlpReceiver>> | null = null;
const pools: Pool[] = [];
const children: Child[] = [];
const pgErrors = { count: 0, first: [] as string[] };
let cleaning: Promise<void> | null = null;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        console.error(`bench: cleanup (${what}) failed:`, (err as Error).message);
      }
    };
    // Workers first (they hold leases), then the gateways.
    for (const c of [...children].reverse()) await step(c.name, () => stopChild(c));
    for (const p of pools) await step('undici pool', () => p.destroy());
    await step('sink', async () => sink?.close());
    await step('otlp receiver', async () => otlp?.close());
    await step('sql', async () => sql?.end({ timeout: 2 }));
    await step('postgres', async () => db?.stop());
    await step('tmp dir', async () => rmSync(tmp, { recursive: true, force: true }));
  })();
  return cleaning;
}
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted = true;
    console.error(`\nbench: ${sig}, cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${CONFIG.maxSeconds} s (BENCH_MAX_SECONDS); giving up`);
  void cleanup().finally(() => process.exit(1));
}, CONFIG.maxSeconds * 1000);
watchdog.unref();

/** The code being measured: commit, and how many files differ from it. */
function treeState(): string {
  try {
    const cwd = fileURLToPath(new URL('..', import.meta.url));
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd, encoding: 'utf8' }).split('\n').filter(Boolean).length;
    return dirty ? `${head} + ${dirty} changed files` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');

async function main(): Promise<number> {
  const t00 = performance.now();
  log(`tmp dir ${tmp}`);
  const pgPort = await freePort();
  db = await startEmbeddedPostgres({
    dataDir: tmp,
    port: pgPort,
    // PostgreSQL's own ERROR/FATAL lines (deadlocks, say) are counted and the first few kept.
    onLog: (line) => {
      if (!/\b(ERROR|FATAL|PANIC):/.test(line)) return;
      // graphile-worker probes for its schema before installing it: expected, not news.
      if (/relation "graphile_worker\.migrations" does not exist/.test(line)) return;
      pgErrors.count++;
      if (pgErrors.first.length < 5) pgErrors.first.push(line.trim().slice(0, 300));
    },
  });
  log(`embedded PostgreSQL on 127.0.0.1:${pgPort}`);
  const q = (sql = createSql(db.url, {
    max: Math.max(4, CONFIG.concurrency),
    name: 'posthorn-bench',
    // 64 connections opened at once on a loaded 2-core machine can take longer than the 3 s default.
    connectTimeoutS: 30,
  }));
  await migrate(q);
  const key = (await bootstrap(q))!;
  const teamId = String((await q`select id from teams where slug = 'default'`)[0]!.id);
  const s = (sink = await startSink());
  const hook = `${s.url}/hook`;
  const cpu = createCpuMeter({ children, pgDataDir: tmp, sql: () => q });
  let preloadSeconds = 0;
  if (CONFIG.pending + CONFIG.history > 0) {
    preloadSeconds = await preload(q, { teamId, url: hook, pending: CONFIG.pending, history: CONFIG.history });
    log(`preloaded ${CONFIG.pending} pending and ${CONFIG.history} finished tasks in ${preloadSeconds.toFixed(1)} s`);
  }

  // ---- the gateways: real `posthorn gateway` processes (stateless; BENCH_GATEWAYS of them) --
  const prof = (role: 'gateway' | 'worker') => {
    if (CONFIG.cpuProf !== role && CONFIG.cpuProf !== 'all') return [];
    mkdirSync(profDir, { recursive: true });
    return ['--cpu-prof', `--cpu-prof-dir=${profDir}`];
  };
  if (CONFIG.otlp) {
    otlp = await startOtlpReceiver();
    log(`tracing on: OTLP ${CONFIG.otlpProtocol} to ${otlp.url}`);
  }
  const baseEnv = {
    ...process.env,
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp?.url ?? '',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
    OTEL_EXPORTER_OTLP_PROTOCOL: CONFIG.otlpProtocol,
    DATABASE_URL: db.url,
    HOST: '127.0.0.1',
    POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
    POSTHORN_LOG_LEVEL: CONFIG.logLevel,
    POSTHORN_RATE_LIMIT: CONFIG.rateLimit,
    POSTHORN_SHUTDOWN_GRACE_MS: '3000',
  };
  for (let g = 0; g < CONFIG.gateways; g++) {
    const port = await freePort();
    const gw = forkChild(g ? `gateway-${g + 1}` : 'gateway', BIN, ['gateway'], {
      env: { ...baseEnv, PORT: String(port) },
      execArgv: [...GATEWAY_NODE_FLAGS, ...prof('gateway')],
      readyTimeoutMs: CONFIG.readyTimeoutS * 1000,
    });
    children.push(gw);
    await gw.ready;
    const pool = new Pool(`http://127.0.0.1:${port}`, {
      connections: Math.max(CONFIG.concurrency, 256),
      pipelining: 1,
      keepAliveTimeout: 30_000,
    });
    pools.push(pool);
    for (let i = 0; ; i++) {
      const up = await pool.request({ path: '/healthz', method: 'GET' }).then(
        async (r) => (await r.body.text(), r.statusCode === 200),
        () => false,
      );
      if (up) break;
      if (i > 200) throw new Error('gateway /healthz did not answer 200 within 20 s');
      await sleep(100);
    }
    log(`gateway on http://127.0.0.1:${port}`);
  }

  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const errors: Record<string, number> = {};
  const countError = (what: string, status: unknown) => void (errors[`${what}:${status}`] = (errors[`${what}:${status}`] ?? 0) + 1);
  async function post(pathname: string, body: string, i: number): Promise<{ status: number | string; text: string }> {
    try {
      const r = await pools[i % pools.length]!.request({ path: pathname, method: 'POST', headers, body });
      return { status: r.statusCode, text: await r.body.text() };
    } catch (e) {
      return { status: (e as { code?: string }).code ?? 'error', text: '' };
    }
  }
  const taskJson = (i: number, label: string, extra = '') =>
    `{"url":"${hook}","label":"${label}"${extra},"body":{"event":"bench","i":${i}}}`;

  // ---- baselines without HTTP: rows go into tasks itself (same indexes, same FK), a day ahead --
  // Each runs BENCH_BASELINE_ROUNDS times (default 2) and the best round counts: a ceiling, so
  // ratios against it err on the conservative side.
  const bodyText = JSON.stringify({ event: 'bench', i: 0 });
  const singleInsert = async () =>
    void (await q`
      insert into tasks (id, team_id, status, url, method, headers, body, body_is_json, run_at,
        max_retries, min_backoff_ms, max_backoff_ms, timeout_ms, label, traceparent)
      values (${uuidv7()}, ${teamId}, 'pending', ${hook}, 'POST', '{}', ${bodyText}, true, now() + interval '1 day',
        3, 1000, 3600000, 30000, 'bench-baseline', ${taskTraceparent(undefined)})`);
  await closedLoop(CONFIG.concurrency * 4, CONFIG.concurrency, singleInsert); // opens the connections
  let baseInsert = 0;
  const endInsert = await cpu.span('baseline insert');
  for (let round = 0; round < CONFIG.baselineRounds; round++)
    baseInsert = Math.max(baseInsert, rate(CONFIG.tasks, await closedLoop(CONFIG.tasks, CONFIG.concurrency, singleInsert)));
  await endInsert();
  log(`baseline single-row INSERT: ${fmt(baseInsert)} rows/s`);

  const batches = Math.ceil(CONFIG.batchTasks / CONFIG.batchSize);
  const mkTasks = (n: number): NewTask[] =>
    Array.from({ length: n }, (_, i) =>
      buildTask(taskInputSchema.parse({ url: hook, label: 'bench-baseline', delay: '1h', body: { event: 'bench', i } }), {
        teamId,
        traceparent: taskTraceparent(undefined),
      }),
    );
  await insertTasks(q, mkTasks(CONFIG.batchSize)); // warm-up
  let baseMulti = 0;
  for (let round = 0; round < CONFIG.baselineRounds && batches > 0; round++) {
    const prebuilt = Array.from({ length: batches }, () => mkTasks(CONFIG.batchSize));
    const ms = await closedLoop(batches, CONFIG.batchConcurrency, async (b) => void (await insertTasks(q, prebuilt[b]!)));
    baseMulti = Math.max(baseMulti, rate(batches * CONFIG.batchSize, ms));
  }
  log(`baseline ${CONFIG.batchSize}-row insertTasks: ${fmt(baseMulti)} rows/s`);

  // ---- phase 1: enqueue through HTTP, no workers running --------------------------------
  // Warm-up (JIT, auth cache, connections); these run an hour from now, not in the drain.
  await closedLoop(Math.min(2000, CONFIG.tasks), CONFIG.concurrency, async (i) => {
    const r = await post('/api/v1/queue', taskJson(i, 'bench-warmup', ',"delay":"1h"'), i);
    if (r.status !== 202) countError('warmup', r.status);
  });
  let enqueued = 0;
  const endEnqueue = await cpu.span('enqueue');
  const enqueueMs = await closedLoop(CONFIG.tasks, CONFIG.concurrency, async (i) => {
    const r = await post('/api/v1/queue', taskJson(i, 'bench-drain'), i);
    if (r.status === 202) enqueued++;
    else countError('enqueue', r.status);
  });
  await endEnqueue();
  const enqueueRate = rate(enqueued, enqueueMs);
  log(`POST /queue: ${fmt(enqueueRate)} tasks/s (${enqueued}/${CONFIG.tasks} accepted)`);

  // The batch endpoint; its tasks are an hour ahead, so the drain below is exactly the ones above.
  let batchAccepted = 0;
  const endBatch = batches > 0 ? await cpu.span('enqueue batch') : async () => undefined;
  const batchMs = await closedLoop(batches, CONFIG.batchConcurrency, async (b) => {
    const items = Array.from({ length: CONFIG.batchSize }, (_, i) => taskJson(b * CONFIG.batchSize + i, 'bench-batch', ',"delay":"1h"'));
    const r = await post('/api/v1/queue/batch', `{"tasks":[${items.join(',')}]}`, b);
    if (r.status === 202) batchAccepted += CONFIG.batchSize;
    else countError('batch', r.status);
  });
  await endBatch();
  const batchRate = rate(batchAccepted, batchMs);
  log(`POST /queue/batch: ${fmt(batchRate)} tasks/s`);

  let baseUndici = NaN;
  let peakRss: BenchResult['peak_rss_mb'] = { gateway: [], workers: [] };
  let peers: Record<string, PeerResult> = {};
  let drain: BenchResult['drain'] = null;
  let latency: BenchResult['latency_ms'] = null;
  if (CONFIG.workers > 0) {
    // ---- baseline: undici → sink from worker-like child processes, no queue -------------
    const per = Math.ceil(CONFIG.tasks / CONFIG.workers);
    const raws = Array.from({ length: CONFIG.workers }, (_, i) =>
      forkChild(`raw-undici-${i + 1}`, RAW_UNDICI, [`${s.url}/raw`, String(per), String(CONFIG.workerConcurrency)], {
        env: process.env,
        execArgv: ['--import', 'tsx'],
        readyTimeoutMs: CONFIG.readyTimeoutS * 1000,
      }),
    );
    children.push(...raws);
    await Promise.all(raws.map((r) => r.ready));
    type Done = { type: 'done'; ms: number; errors: number; cpuSeconds?: number };
    const done = raws.map((r) => new Promise<Done>((ok) => r.proc.on('message', (m: Done | null) => m?.type === 'done' && ok(m))));
    const endRaw = await cpu.span('baseline undici');
    const t = performance.now();
    raws.forEach((r) => r.proc.send({ type: 'go' }));
    const results = await Promise.race([Promise.all(done), sleep(60_000).then(() => null)]);
    const ms = performance.now() - t;
    const phase = await endRaw();
    if (!results) throw new Error('the undici baseline did not finish within 60 s');
    // The children may have exited before the span ended: use the CPU time they report.
    const rawCpu = results.reduce((n, r) => n + (r.cpuSeconds ?? 0), 0);
    phase.others -= rawCpu - phase.raw;
    phase.raw = rawCpu;
    baseUndici = rate(per * CONFIG.workers - results.reduce((n, r) => n + r.errors, 0), ms);
    await Promise.all(raws.map((r) => stopChild(r, 2000)));
    log(`baseline undici → sink: ${fmt(baseUndici)} req/s (${CONFIG.workers} × ${CONFIG.workerConcurrency} in flight)`);

    // ---- phase 2: drain with real worker processes; the clock starts at the first ready ----
    const workers: Child[] = [];
    for (let i = 0; i < CONFIG.workers; i++) {
      const env = {
        ...baseEnv,
        POSTHORN_WORKER_CONCURRENCY: String(CONFIG.workerConcurrency),
        POSTHORN_METRICS_PORT: String(await freePort()),
      };
      workers.push(
        forkChild(`worker-${i + 1}`, BIN, ['worker'], { env, execArgv: prof('worker'), readyTimeoutMs: CONFIG.readyTimeoutS * 1000 }),
      );
    }
    children.push(...workers);
    const t0 = await Promise.race(workers.map((w) => w.ready.then(() => performance.now())));
    const endDrain = await cpu.span('drain');
    await Promise.all(workers.map((w) => w.ready));
    const out = await waitForDrain({
      sql: q,
      sink: s,
      label: 'bench-drain',
      expected: enqueued,
      deadline: t0 + CONFIG.drainTimeoutS * 1000,
      stallS: CONFIG.stallS,
    });
    await endDrain();
    const finished = Number.isFinite(out.endedAt) && out.succeeded >= enqueued;
    const seconds = ((finished ? out.endedAt : performance.now()) - t0) / 1000;
    const times = [...s.receipts.values()].sort((a, b) => a - b);
    const [i10, i90] = [Math.floor(times.length * 0.1), Math.floor(times.length * 0.9)];
    drain = {
      tasks_s: out.succeeded / seconds,
      steady_tasks_s: times.length > 10 ? rate(i90 - i10, times[i90]! - times[i10]!) : NaN,
      succeeded: out.succeeded,
      seconds,
      timed_out: !finished,
      stalled: out.stalled,
      status: out.status,
      duplicates: s.duplicates,
    };
    log(`drain: ${fmt(drain.tasks_s)} tasks/s (${out.succeeded}/${enqueued} succeeded in ${seconds.toFixed(2)} s)`);
    if (!finished)
      log(
        `drain ${out.stalled ? `made no progress for ${CONFIG.stallS} s` : 'timed out'}; unfinished:\n${out.stuck.map((r) => `  ${JSON.stringify(r)}`).join('\n')}`,
      );

    // ---- phase 3: delivery latency at a steady rate, workers running ----------------------
    const sent: { id: string; tSend: number; tResp: number }[] = [];
    const endLatency = await cpu.span('latency');
    const loop = await openLoop(CONFIG.latencyRate, CONFIG.latencySeconds, 256, async (i) => {
      const tSend = performance.now();
      const r = await post('/api/v1/queue', taskJson(i, 'bench-latency'), i);
      const tResp = performance.now();
      if (r.status === 202) sent.push({ id: JSON.parse(r.text).id, tSend, tResp });
      else countError('latency', r.status);
    });
    const until = performance.now() + 30_000;
    while (sent.some((x) => !s.receipts.has(x.id)) && performance.now() < until) await sleep(50);
    await endLatency();
    const got = sent.filter((x) => s.receipts.has(x.id));
    latency = {
      rate: CONFIG.latencyRate,
      seconds: CONFIG.latencySeconds,
      sent: loop.sent,
      late: loop.late,
      delivered: got.length,
      response_to_sink: percentiles(got.map((x) => s.receipts.get(x.id)! - x.tResp)),
      send_to_sink: percentiles(got.map((x) => s.receipts.get(x.id)! - x.tSend)),
      enqueue_response: percentiles(sent.map((x) => x.tResp - x.tSend)),
    };
    // Peak RSS over the whole run so far (VmHWM), before the peers run and the workers stop.
    peakRss = {
      gateway: children.filter((c) => c.name.startsWith('gateway')).map((c) => procPeakRssMb(c.proc.pid)),
      workers: workers.map((w) => procPeakRssMb(w.proc.pid)),
    };
    if (CONFIG.peers) {
      // The peers get the machine to themselves: Posthorn's workers and gateways stop first.
      for (const w of workers) await stopChild(w);
      peers = await runPeers({ config: CONFIG, dbUrl: db.url, sql: q, sink: s, children, cpu, log });
    }
  }
  const graphile = peers['graphile-worker'];
  const boss = peers['pg-boss'];

  const result: BenchResult = {
    config: { ...CONFIG, cores: os.cpus().length, node: process.version, tree: treeState() },
    baseline: { single_insert_rows_s: baseInsert, multi_insert_rows_s: baseMulti, undici_req_s: baseUndici },
    enqueue: { tasks_s: enqueueRate, accepted: enqueued, batch_tasks_s: batchRate, batch_accepted: batchAccepted },
    drain,
    latency_ms: latency,
    peak_rss_mb: peakRss,
    peers,
    preload: { pending: CONFIG.pending, history: CONFIG.history, seconds: preloadSeconds },
    ratios: {
      enqueue_vs_single_insert: ratio(enqueueRate, baseInsert),
      batch_vs_multi_insert: ratio(batchRate, baseMulti),
      drain_vs_undici: ratio(drain?.tasks_s ?? NaN, baseUndici),
      enqueue_vs_pg_boss: ratio(enqueueRate, boss?.enqueue_tasks_s ?? NaN),
      enqueue_vs_graphile_worker: ratio(enqueueRate, graphile?.enqueue_tasks_s ?? NaN),
      drain_vs_pg_boss: ratio(drain?.tasks_s ?? NaN, boss?.drain_tasks_s ?? NaN),
      drain_vs_graphile_worker: ratio(drain?.tasks_s ?? NaN, graphile?.drain_tasks_s ?? NaN),
    },
    cpu_seconds: cpu.phases,
    cpu_us_per_task: {
      enqueue_gateway: cpu.perTask('enqueue', 'gateway', enqueued),
      enqueue_postgres: cpu.perTask('enqueue', 'postgres', enqueued),
      enqueue_client: cpu.perTask('enqueue', 'bench', enqueued),
      drain_workers: cpu.perTask('drain', 'workers', drain?.succeeded ?? 0),
      drain_postgres: cpu.perTask('drain', 'postgres', drain?.succeeded ?? 0),
    },
    errors,
    postgres_errors: pgErrors,
    total_seconds: (performance.now() - t00) / 1000,
  };
  console.log(formatReport(result));
  if (CONFIG.cpuProf) console.log(`cpu profiles: ${profDir} (written as the children exit; summarise with bench/prof-summary.ts)`);
  if (otlp) console.log(`otlp receiver: ${otlp.stats.requests} export requests, ${fmt(otlp.stats.bytes / 1024)} KiB`);
  console.log(`BENCH_JSON ${JSON.stringify(result)}`);
  return enqueued === 0 || drain?.timed_out ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  // After Ctrl-C the phase in progress fails as its connections close: that is no news.
  if (!interrupted) {
    console.error('bench failed:', err);
    for (const c of children) if (c.tail.length) console.error(`--- last output of ${c.name} ---\n${c.tail.join('\n')}`);
  }
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(code);
