// npm run bench:scaling: the scaling curve (docs/scaling.md). Runs bench/bench.ts once per
// configuration, each against its own fresh embedded PostgreSQL, and prints one table:
//   - 1, 2 and 4 gateways, no workers: the enqueue rate (POST /api/v1/queue, closed loop);
//   - 1 gateway and 1, 2, 4 and 8 workers: the drain rate (every task one POST to the sink).
// For each: PostgreSQL's CPU µs per task (postmaster and backends, from /proc, bench/cpu.ts),
// the gateways' or workers' CPU µs per task, and how busy the machine was (ours and others'),
// which says what saturated. Each run is a child process so that every configuration starts
// from the same empty database and nothing of one run (JIT, caches, bloat) helps the next.
// Knobs: BENCH_SCALING_TASKS (tasks per run, default 10000), BENCH_SCALING_GATEWAYS and
// BENCH_SCALING_WORKERS (comma lists); any other BENCH_* / POSTHORN_* reaches bench.ts.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './report.ts';

const BENCH = fileURLToPath(new URL('./bench.ts', import.meta.url));

function list(name: string, dflt: number[]): number[] {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (v === 'none') return [];
  const out = v.split(',').map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) throw new Error(`${name} must be a comma list of integers 1-64, got ${v}`);
  return out;
}
const tasksEnv = process.env.BENCH_SCALING_TASKS;
const TASKS = tasksEnv ? Number(tasksEnv) : 10_000;
if (!Number.isInteger(TASKS) || TASKS < 100) throw new Error(`BENCH_SCALING_TASKS must be an integer ≥ 100, got ${tasksEnv}`);

type Run = { gateways: number; workers: number };
const runs: Run[] = [
  ...list('BENCH_SCALING_GATEWAYS', [1, 2, 4]).map((gateways) => ({ gateways, workers: 0 })),
  ...list('BENCH_SCALING_WORKERS', [1, 2, 4, 8]).map((workers) => ({ gateways: 1, workers })),
];

/** One bench.ts run; its BENCH_JSON line, or null when it failed (its output is shown). */
function runBench(r: Run): Promise<BenchResult | null> {
  const env = {
    ...process.env,
    BENCH_TASKS: String(TASKS),
    BENCH_GATEWAYS: String(r.gateways),
    BENCH_WORKERS: String(r.workers),
    BENCH_BATCH_TASKS: '0', // the batch endpoint is not what this curve is about
    BENCH_BASELINE_ROUNDS: '1',
    BENCH_LATENCY_SECONDS: '0',
    BENCH_READY_TIMEOUT_S: process.env.BENCH_READY_TIMEOUT_S ?? '120', // 8 workers start at once
  };
  return new Promise((ok) => {
    const child = spawn(process.execPath, ['--import', 'tsx', BENCH], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => void (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => void (out += c.toString()));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
      if (!line || code !== 0) console.error(`run ${JSON.stringify(r)} exited ${code}:\n${out.split('\n').slice(-30).join('\n')}`);
      ok(line ? (JSON.parse(line.slice('BENCH_JSON '.length)) as BenchResult) : null);
    });
  });
}

const f0 = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : Math.round(n).toString());
const pct = (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)}%` : '-');

type Row = Record<string, string | number>;
const rows: Row[] = [];
const cores = os.cpus().length;
console.log(`scaling: ${runs.length} runs of ${TASKS} tasks, ${cores} cores, ${new Date().toISOString()}`);
for (const r of runs) {
  // Once more after a failure: on a busy machine a run can lose a connection at start (3 s connect timeout).
  const res = (await runBench(r)) ?? (await runBench(r));
  const phase = res?.cpu_seconds[r.workers > 0 ? 'drain' : 'enqueue'];
  // Shares of the whole machine (cores × wall) during the measured phase.
  const share = (s: number | undefined) => (phase && s !== undefined ? s / (phase.wall * cores) : NaN);
  const row: Row = {
    gateways: r.gateways,
    workers: r.workers,
    enqueue_s: f0(res?.enqueue.tasks_s),
    enqueue_pg_us: f0(res?.cpu_us_per_task.enqueue_postgres),
    gateway_us: f0(res?.cpu_us_per_task.enqueue_gateway),
    // Write transactions per enqueued task: how well the gateways' group commits batch.
    enqueue_tx: res?.enqueue.accepted ? (res.cpu_seconds.enqueue!.write_tx / res.enqueue.accepted).toFixed(2) : '-',
    drain_s: r.workers > 0 ? f0(res?.drain?.tasks_s) : '',
    drain_steady_s: r.workers > 0 ? f0(res?.drain?.steady_tasks_s) : '',
    drain_pg_us: r.workers > 0 ? f0(res?.cpu_us_per_task.drain_postgres) : '',
    workers_us: r.workers > 0 ? f0(res?.cpu_us_per_task.drain_workers) : '',
    pg_busy: pct(share(phase?.postgres)),
    ours_busy: pct(share(phase ? phase.postgres + phase.gateway + phase.workers + phase.bench : undefined)),
    others_busy: pct(share(phase?.others)),
  };
  rows.push(row);
  console.log(`  ${JSON.stringify(row)}`);
}

const head = Object.keys(rows[0] ?? {});
const widths = head.map((h) => Math.max(h.length, ...rows.map((r) => String(r[h]).length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(
  [
    '',
    'busy = share of the whole machine during the measured phase (enqueue for the gateway rows, drain for the worker rows)',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(head.map((h) => String(r[h])))),
  ].join('\n'),
);
console.log(`SCALING_JSON ${JSON.stringify({ cores, tasks: TASKS, rows })}`);
