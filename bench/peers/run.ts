// The peers, measured in the same run as Posthorn (BENCH_PEERS=0 skips them): for each library,
// on the same embedded PostgreSQL, the same task count, in-flight count and sink:
//   enqueue  BENCH_TASKS jobs through its own API in process, BENCH_CONCURRENCY in flight
//            (no HTTP, which flatters it against POST /api/v1/queue);
//   drain    BENCH_WORKERS child processes × POSTHORN_WORKER_CONCURRENCY slots, each job the
//            same POST to the sink; the clock runs from the first worker ready until every job
//            reached the sink and the library shows none unfinished;
//   latency  BENCH_LATENCY_RATE jobs a second for BENCH_LATENCY_SECONDS, open loop, workers
//            running: request sent → sink receipt.
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Sql } from '../../shared/db.ts';
import type { BenchConfig } from '../config.ts';
import type { createCpuMeter } from '../cpu.ts';
import { type Child, closedLoop, forkChild, openLoop, procPeakRssMb, rate, type Sink, sleep, stopChild } from '../harness.ts';
import { type Lat, percentiles } from '../report.ts';
import { PEER_LIST } from './peer.ts';

const PEER_WORKER = fileURLToPath(new URL('./peer-worker.ts', import.meta.url));

export type PeerResult = {
  version: string;
  enqueue_tasks_s: number;
  drain_tasks_s: number;
  steady_tasks_s: number;
  drained: number;
  timed_out: boolean;
  send_to_sink: Lat | null;
  latency_delivered: number;
  latency_sent: number;
  worker_peak_rss_mb: number[];
  cpu_us_per_task: { drain_workers: number; drain_postgres: number };
  error?: string;
};

export async function runPeers(o: {
  config: BenchConfig;
  dbUrl: string;
  sql: Sql;
  sink: Sink;
  children: Child[];
  cpu: ReturnType<typeof createCpuMeter>;
  log: (msg: string) => void;
}): Promise<Record<string, PeerResult>> {
  const out: Record<string, PeerResult> = {};
  for (const peer of PEER_LIST) {
    try {
      out[peer.name] = await runOne(peer, o);
    } catch (err) {
      o.log(`peer ${peer.name} failed: ${(err as Error).message}`);
      out[peer.name] = { ...EMPTY, version: peer.version, error: (err as Error).message.slice(0, 300) };
    }
  }
  return out;
}

const EMPTY: PeerResult = {
  version: '',
  enqueue_tasks_s: NaN,
  drain_tasks_s: NaN,
  steady_tasks_s: NaN,
  drained: 0,
  timed_out: true,
  send_to_sink: null,
  latency_delivered: 0,
  latency_sent: 0,
  worker_peak_rss_mb: [],
  cpu_us_per_task: { drain_workers: NaN, drain_postgres: NaN },
};

async function runOne(peer: (typeof PEER_LIST)[number], o: Parameters<typeof runPeers>[0]): Promise<PeerResult> {
  const c = o.config;
  const body = (i: number) => `{"event":"bench","i":${i}}`;
  const enq = await peer.enqueuer(o.dbUrl, c.concurrency);
  const workers: Child[] = [];
  try {
    // Warm-up (JIT, connections, prepared statements): a few jobs, drained below with the rest.
    const keys = Array.from({ length: c.tasks }, (_, i) => `${peer.name}-${i}`);
    const warm = Math.min(500, c.tasks);
    await closedLoop(warm, c.concurrency, (i) => enq.enqueue(keys[i]!, body(i)));
    const endEnqueue = await o.cpu.span(`${peer.name} enqueue`);
    const ms = await closedLoop(c.tasks - warm, c.concurrency, (i) => enq.enqueue(keys[warm + i]!, body(warm + i)));
    await endEnqueue();
    const enqueueRate = rate(c.tasks - warm, ms);
    o.log(`${peer.name} enqueue: ${Math.round(enqueueRate)} jobs/s`);

    for (let i = 0; i < c.workers; i++)
      workers.push(
        forkChild(`peer-${peer.name}-${i + 1}`, PEER_WORKER, [peer.name, o.dbUrl, o.sink.url, String(c.workerConcurrency)], {
          env: process.env,
          execArgv: ['--import', 'tsx'],
        }),
      );
    o.children.push(...workers);
    const t0 = await Promise.race(workers.map((w) => w.ready.then(() => performance.now())));
    const endDrain = await o.cpu.span(`${peer.name} drain`);
    await Promise.all(workers.map((w) => w.ready));
    const deadline = t0 + c.drainTimeoutS * 1000;
    const seen = () => keys.reduce((n, k) => n + (o.sink.receipts.has(k) ? 1 : 0), 0);
    while (performance.now() < deadline && seen() < keys.length) await sleep(50);
    let endedAt = NaN;
    while (performance.now() < deadline) {
      if (Number((await o.sql.unsafe(enq.unfinishedSql))[0]!.n) === 0) {
        endedAt = performance.now();
        break;
      }
      await sleep(25);
    }
    const drainCpu = await endDrain();
    const drained = seen();
    const seconds = ((Number.isFinite(endedAt) ? endedAt : performance.now()) - t0) / 1000;
    const times = keys
      .map((k) => o.sink.receipts.get(k))
      .filter((t): t is number => t !== undefined)
      .sort((a, b) => a - b);
    const [i10, i90] = [Math.floor(times.length * 0.1), Math.floor(times.length * 0.9)];
    const drainRate = drained / seconds;
    o.log(`${peer.name} drain: ${Math.round(drainRate)} jobs/s (${drained}/${keys.length} in ${seconds.toFixed(2)} s)`);

    const sent: { key: string; tSend: number }[] = [];
    await openLoop(c.latencyRate, c.latencySeconds, 256, async (i) => {
      const key = `${peer.name}-lat-${i}`;
      const tSend = performance.now();
      await enq.enqueue(key, body(i));
      sent.push({ key, tSend });
    });
    const until = performance.now() + 30_000;
    while (sent.some((x) => !o.sink.receipts.has(x.key)) && performance.now() < until) await sleep(50);
    const got = sent.filter((x) => o.sink.receipts.has(x.key));
    const rss = workers.map((w) => procPeakRssMb(w.proc.pid));
    const per = (v: number) => (drained > 0 ? Math.round((v * 1e6) / drained) : NaN);
    return {
      version: peer.version,
      enqueue_tasks_s: enqueueRate,
      drain_tasks_s: drainRate,
      steady_tasks_s: times.length > 10 ? rate(i90 - i10, times[i90]! - times[i10]!) : NaN,
      drained,
      timed_out: !Number.isFinite(endedAt),
      send_to_sink: got.length ? percentiles(got.map((x) => o.sink.receipts.get(x.key)! - x.tSend)) : null,
      latency_delivered: got.length,
      latency_sent: sent.length,
      worker_peak_rss_mb: rss,
      cpu_us_per_task: { drain_workers: per(drainCpu.peers), drain_postgres: per(drainCpu.postgres) },
    };
  } finally {
    await Promise.all(workers.map((w) => stopChild(w, 5000)));
    await enq.close().catch(() => {});
  }
}
