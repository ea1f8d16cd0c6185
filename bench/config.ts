// The bench's knobs, read from the environment in this one place (docs/bench.md lists them).
const int = (name: string, dflt: number) => {
  const v = process.env[name];
  const n = v === undefined || v === '' ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
};

export const CONFIG = {
  tasks: int('BENCH_TASKS', 20_000),
  concurrency: Math.max(1, int('BENCH_CONCURRENCY', 64)),
  batchTasks: int('BENCH_BATCH_TASKS', int('BENCH_TASKS', 20_000)),
  batchSize: Math.max(1, int('BENCH_BATCH_SIZE', 1000)),
  batchConcurrency: Math.max(1, int('BENCH_BATCH_CONCURRENCY', 4)),
  gateways: Math.max(1, int('BENCH_GATEWAYS', 1)),
  /** 0: enqueue only (no undici baseline, drain or latency phase). */
  workers: int('BENCH_WORKERS', 2),
  workerConcurrency: Math.max(1, int('POSTHORN_WORKER_CONCURRENCY', 64)),
  latencyRate: int('BENCH_LATENCY_RATE', 1000),
  latencySeconds: int('BENCH_LATENCY_SECONDS', 5),
  baselineRounds: Math.max(1, int('BENCH_BASELINE_ROUNDS', 2)),
  drainTimeoutS: int('BENCH_DRAIN_TIMEOUT_S', 90),
  stallS: int('BENCH_STALL_S', 15),
  /** How long a child (gateway, worker, undici baseline) may take to start; a saturated machine needs more than 30 s. */
  readyTimeoutS: Math.max(1, int('BENCH_READY_TIMEOUT_S', 30)),
  maxSeconds: int('BENCH_MAX_SECONDS', 300),
  cpuProf: process.env.BENCH_CPU_PROF ?? '', // '', gateway, worker or all
  profDir: process.env.BENCH_PROF_DIR,
  logLevel: process.env.BENCH_LOG_LEVEL ?? 'warn',
  // The per-key limiter stays on (its UPSERT is part of what an enqueue costs) with a limit the
  // bench never reaches; POSTHORN_RATE_LIMIT=off measures without it.
  rateLimit: process.env.POSTHORN_RATE_LIMIT ?? '1000000/1s', // the most a limit may allow (docs/auth.md)
  // 1: the children trace and export to a local OTLP receiver (bench/otlp-receiver.ts); else
  // tracing is off, whatever OTEL_* the shell has.
  otlp: process.env.BENCH_OTLP === '1',
  otlpProtocol: process.env.BENCH_OTLP_PROTOCOL ?? 'http/protobuf',
  /** 0: skip pg-boss and graphile-worker (bench/peers/). */
  peers: int('BENCH_PEERS', 1) > 0,
  /** Pending tasks (not due) and succeeded tasks with attempts (a week of history) put in first (bench/preload.ts). */
  pending: int('BENCH_PENDING', 0),
  history: int('BENCH_HISTORY', 0),
};

export type BenchConfig = typeof CONFIG;

// The aims, as ratios measured in one run (docs/bench.md): enqueue over HTTP against the
// single-row INSERT baseline, the batch endpoint against the 1000-row baseline, the drain
// against graphile-worker's, and request sent → sink receipt at BENCH_LATENCY_RATE.
export const AIM = { enqueueVsInsert: 0.9, batchVsMulti: 0.7, drainVsGraphile: 2.5, sendToSinkP50: 3, sendToSinkP99: 15 };
