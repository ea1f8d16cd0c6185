// The bench's result: one object (printed as a single JSON line) and a compact text block.
import { AIM, type BenchConfig } from './config.ts';
import type { CpuPhase } from './cpu.ts';
import type { PeerResult } from './peers/run.ts';

export type Lat = { p50: number; p99: number; max: number };

export type BenchResult = {
  config: BenchConfig & { cores: number; node: string; tree: string };
  baseline: { single_insert_rows_s: number; multi_insert_rows_s: number; undici_req_s: number };
  enqueue: { tasks_s: number; accepted: number; batch_tasks_s: number; batch_accepted: number };
  drain: {
    tasks_s: number;
    steady_tasks_s: number;
    succeeded: number;
    seconds: number;
    timed_out: boolean;
    stalled: boolean;
    status: Record<string, number>;
    duplicates: number;
  } | null;
  latency_ms: {
    rate: number;
    seconds: number;
    sent: number;
    late: number;
    delivered: number;
    response_to_sink: Lat;
    send_to_sink: Lat;
    enqueue_response: Lat;
  } | null;
  /** Peak RSS (VmHWM) of each gateway and worker process over the run, MiB. */
  peak_rss_mb: { gateway: number[]; workers: number[] };
  peers: Record<string, PeerResult>;
  preload: { pending: number; history: number; seconds: number };
  ratios: Record<string, number>;
  cpu_seconds: Record<string, CpuPhase>;
  cpu_us_per_task: Record<string, number>;
  errors: Record<string, number>;
  postgres_errors: { count: number; first: string[] };
  total_seconds: number;
};

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const ms1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const x = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a');
export const ratio = (a: number, b: number) => (b > 0 ? a / b : NaN);

export function percentiles(values: number[]): Lat {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN;
  return { p50: at(50), p99: at(99), max: sorted.at(-1) ?? NaN };
}

export function formatReport(r: BenchResult): string {
  const c = r.config;
  // Write transactions and the process's read/write system calls, per task, in one phase.
  const perTask = (phase: string, who: 'gateway' | 'workers', n: number) => {
    const p = r.cpu_seconds[phase];
    if (!p || n <= 0) return 'n/a';
    const f = (v: number) => (v / n).toFixed(2);
    return `${f(p.write_tx)} write tx, ${who} ${f(p.syscalls[who].writes)} write + ${f(p.syscalls[who].reads)} read syscalls`;
  };
  const ok = (v: number, aim: number) => (!Number.isFinite(v) ? 'n/a' : v >= aim ? 'meets' : 'BELOW');
  const okMax = (v: number, aim: number) => (!Number.isFinite(v) ? 'n/a' : v <= aim ? 'meets' : 'ABOVE');
  const L = (label: string, value: string, note = '') => `  ${label.padEnd(46)}${value.padStart(15)}   ${note}`.trimEnd();
  const lat = (l: Lat) => `p50 ${ms1(l.p50)}  p99 ${ms1(l.p99)}  max ${ms1(l.max)} ms`;
  const out = [
    '',
    `Posthorn bench — ${c.cores} cores, node ${c.node}, embedded PostgreSQL, N=${c.tasks}, C=${c.concurrency}; code ${c.tree}`,
    ...(r.preload.pending + r.preload.history
      ? [
          `preloaded: ${fmt(r.preload.pending)} pending (not due), ${fmt(r.preload.history)} succeeded with attempts (a week), ${r.preload.seconds.toFixed(0)} s`,
        ]
      : []),
    'baselines (this run; best of ' + c.baselineRounds + ')',
    L(`single-row INSERT, own commit, ${c.concurrency} conns`, `${fmt(r.baseline.single_insert_rows_s)} rows/s`, 'postgres.js, no HTTP'),
    L(
      `${c.batchSize}-row insertTasks(), ${c.batchConcurrency} in flight`,
      `${fmt(r.baseline.multi_insert_rows_s)} rows/s`,
      'in process, no HTTP',
    ),
  ];
  if (r.drain)
    out.push(L(`undici → sink, ${c.workers} procs × ${c.workerConcurrency}`, `${fmt(r.baseline.undici_req_s)} req/s`, 'no queue'));
  out.push(
    `enqueue (no workers running${c.gateways > 1 ? `; ${c.gateways} gateways` : ''}; rate limit ${c.rateLimit})`,
    L(
      `POST /queue, ${c.concurrency} in flight`,
      `${fmt(r.enqueue.tasks_s)} tasks/s`,
      `= ${x(r.ratios.enqueue_vs_single_insert!)} single-row insert baseline (aim ${AIM.enqueueVsInsert}×: ${ok(r.ratios.enqueue_vs_single_insert!, AIM.enqueueVsInsert)})`,
    ),
    L(
      `POST /queue/batch, ${c.batchSize}/req, ${c.batchConcurrency} in flight`,
      `${fmt(r.enqueue.batch_tasks_s)} tasks/s`,
      `= ${x(r.ratios.batch_vs_multi_insert!)} ${c.batchSize}-row insert baseline (aim ${AIM.batchVsMulti}×: ${ok(r.ratios.batch_vs_multi_insert!, AIM.batchVsMulti)})`,
    ),
  );
  if (r.drain) {
    const d = r.drain;
    const flag = d.stalled ? ' (STALLED)' : d.timed_out ? ' (TIMED OUT)' : '';
    out.push(
      `drain (${c.workers} workers × ${c.workerConcurrency})`,
      L(
        `${d.succeeded}/${r.enqueue.accepted} succeeded in ${d.seconds.toFixed(2)} s${flag}`,
        `${fmt(d.tasks_s)} tasks/s`,
        `= ${x(r.ratios.drain_vs_undici!)} raw undici baseline`,
      ),
      L(
        'steady state (10%→90% of sink receipts)',
        `${fmt(d.steady_tasks_s)} tasks/s`,
        d.duplicates ? `${d.duplicates} duplicate deliveries` : '',
      ),
    );
  }
  if (r.latency_ms) {
    const l = r.latency_ms;
    out.push(
      `latency (${l.rate}/s for ${l.seconds} s, workers running; ${l.delivered}/${l.sent} delivered, ${l.late} sent >50 ms late)`,
      `  enqueue 202 → sink receipt     ${lat(l.response_to_sink)}`,
      `  request sent → sink receipt    ${lat(l.send_to_sink)}   aim p50 ≤ ${AIM.sendToSinkP50}: ${okMax(l.send_to_sink.p50, AIM.sendToSinkP50)}, p99 ≤ ${AIM.sendToSinkP99}: ${okMax(l.send_to_sink.p99, AIM.sendToSinkP99)}`,
      `  request sent → 202             ${lat(l.enqueue_response)}`,
    );
  }
  const rss = (v: number[]) => v.map((m) => `${ms1(m)}`).join(', ');
  if (r.peak_rss_mb.gateway.length || r.peak_rss_mb.workers.length)
    out.push(`peak RSS (MiB): gateway ${rss(r.peak_rss_mb.gateway)}; workers ${rss(r.peak_rss_mb.workers)}`);
  const peers = Object.entries(r.peers);
  if (peers.length) {
    out.push(`peers (same PostgreSQL, N, in flight and sink; enqueue in process through their own API, no HTTP)`);
    for (const [name, p] of peers) {
      if (p.error) {
        out.push(`  ${name} ${p.version}: FAILED: ${p.error}`);
        continue;
      }
      const l = p.send_to_sink ? lat(p.send_to_sink) : 'n/a';
      out.push(
        `  ${`${name} ${p.version}`.padEnd(24)} enqueue ${fmt(p.enqueue_tasks_s).padStart(6)}/s, drain ${fmt(p.drain_tasks_s).padStart(6)}/s (steady ${fmt(p.steady_tasks_s)}/s${p.timed_out ? ', TIMED OUT' : ''}); sent → sink ${l} (${p.latency_delivered}/${p.latency_sent})`,
        `  ${''.padEnd(24)} worker peak RSS ${rss(p.worker_peak_rss_mb)} MiB; drain cpu µs/job workers ${fmt(p.cpu_us_per_task.drain_workers)}, postgres ${fmt(p.cpu_us_per_task.drain_postgres)}`,
      );
    }
    const R = r.ratios;
    out.push(
      `  Posthorn ÷ pg-boss: enqueue ${x(R.enqueue_vs_pg_boss!)}, drain ${x(R.drain_vs_pg_boss!)}; ÷ graphile-worker: enqueue ${x(R.enqueue_vs_graphile_worker!)}, drain ${x(R.drain_vs_graphile_worker!)} (aim ≥ ${AIM.drainVsGraphile}×: ${ok(R.drain_vs_graphile_worker!, AIM.drainVsGraphile)})`,
    );
  }
  out.push(`cpu seconds per phase (${c.cores} cores; bench = this process: client, sink, baselines)`);
  for (const [name, p] of Object.entries(r.cpu_seconds)) {
    const used = p.gateway + p.workers + p.postgres + p.bench + p.raw + p.peers;
    const share = (v: number) => `${((100 * v) / (p.wall * c.cores)).toFixed(0)}%`;
    const parts = (['gateway', 'workers', 'raw', 'peers', 'postgres', 'bench'] as const)
      .filter((k) => p[k] > 0.005)
      .map((k) => `${k} ${p[k].toFixed(1)}`);
    const others = Number.isFinite(p.others) ? `; other processes ${share(Math.max(0, p.others))}` : '';
    const tx = p.write_tx > 0 ? `; ${p.write_tx} write tx` : '';
    out.push(
      `  ${name.padEnd(16)} ${p.wall.toFixed(1).padStart(5)} s wall: ${parts.join(', ')} = ${share(used)} of the machine${others}${tx}`,
    );
  }
  const u = r.cpu_us_per_task;
  out.push(
    // CPU per task hardly depends on what else the machine runs: the steadier figure to compare.
    `cpu per task (µs): enqueue gateway ${fmt(u.enqueue_gateway!)}, postgres ${fmt(u.enqueue_postgres!)}, client ${fmt(u.enqueue_client!)}` +
      (r.drain ? `; drain workers ${fmt(u.drain_workers!)}, postgres ${fmt(u.drain_postgres!)}` : ''),
    `per task: enqueue ${perTask('enqueue', 'gateway', r.enqueue.accepted)}` +
      (r.drain ? `; drain ${perTask('drain', 'workers', r.drain.succeeded)}` : ''),
    Object.keys(r.errors).length ? `request errors: ${JSON.stringify(r.errors)}` : 'request errors: none',
    r.postgres_errors.count
      ? `PostgreSQL logged ${r.postgres_errors.count} ERROR lines, first: ${r.postgres_errors.first.join(' | ')}`
      : 'PostgreSQL errors: none',
    `total ${r.total_seconds.toFixed(1)} s`,
  );
  return out.join('\n');
}
