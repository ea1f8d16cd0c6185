// Prometheus metrics: every name, label and bucket in one place (docs/observability.md lists
// them). The gateway serves gatewayRegistry on /metrics, a worker workerRegistry on its metrics
// port, each merged with the default process metrics (CPU, memory, event-loop lag, GC).
//
// Labels are bounded: route templates (never raw paths), methods, status codes, outcomes and
// statuses. No task id, URL or team-chosen string is ever a label.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export const gatewayRegistry = new Registry();
export const workerRegistry = new Registry();
const processRegistry = new Registry();

let defaultsOn = false;
/** The default process metrics, started only where a /metrics endpoint exists. */
function processMetrics(): Registry {
  if (!defaultsOn) {
    defaultsOn = true;
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

const merged = new Map<Registry, Registry>();
/** One registry to scrape: `own` plus the process metrics. */
export function scrapeRegistry(own: Registry): Registry {
  let r = merged.get(own);
  if (!r) {
    r = Registry.merge([processMetrics(), own]);
    merged.set(own, r);
  }
  return r;
}

// ---- gateway ------------------------------------------------------------------------------

// 1 ms to 5 s: an enqueue takes 2-20 ms, and the API's deadline answers 503 at 4.5 s.
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export const httpRequests = new Counter({
  name: 'posthorn_http_requests_total',
  help: 'HTTP requests answered by the gateway, by route template, method and status code',
  labelNames: ['route', 'method', 'status'] as const,
  registers: [gatewayRegistry],
});

export const httpRequestDuration = new Histogram({
  name: 'posthorn_http_request_duration_seconds',
  help: 'Time from request to response, by route template and method',
  labelNames: ['route', 'method'] as const,
  buckets: HTTP_BUCKETS,
  registers: [gatewayRegistry],
});

export const tasksEnqueued = new Counter({
  name: 'posthorn_tasks_enqueued_total',
  help: 'Tasks stored by this process (single and batch enqueues; idempotent replays are not new tasks)',
  registers: [gatewayRegistry],
});

// ---- worker -------------------------------------------------------------------------------

// 5 ms to 15 min: timeout_ms goes up to 900000.
const ATTEMPT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];
// 10 ms to 1 h: idle workers notice due tasks at once (NOTIFY) or within the poll interval (1 s).
const LAG_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export const attempts = new Counter({
  name: 'posthorn_attempts_total',
  help: 'Delivery attempts made by this worker, by outcome',
  labelNames: ['outcome'] as const,
  registers: [workerRegistry],
});

export const attemptDuration = new Histogram({
  name: 'posthorn_attempt_duration_seconds',
  help: 'Duration of delivery attempts (request sent to response read), by outcome',
  labelNames: ['outcome'] as const,
  buckets: ATTEMPT_BUCKETS,
  registers: [workerRegistry],
});

export const deliveryLag = new Histogram({
  name: 'posthorn_delivery_lag_seconds',
  help: "Time from a task's due time (run_at) to the start of its attempt",
  buckets: LAG_BUCKETS,
  registers: [workerRegistry],
});

export type TaskCounts = { byStatus: Record<string, number>; oldestDueSeconds: number };

// Leadership, busy slots and the fleet-wide counts are read when scraped, from each worker
// running in this process (one in production; tests may run several in one process).
type WorkerGauges = {
  leader: () => boolean;
  slotsBusy: () => number;
  /** The leader's counts (worker/maintenance/task-counts.ts); null on a follower. */
  taskCounts: () => Promise<TaskCounts> | null;
  /** Circuit breakers by state, fleet-wide (worker/breaker-store.ts); read on the leader only. */
  circuitCounts?: () => Promise<Record<CircuitState, number>>;
};
const workers = new Set<WorkerGauges>();

/** The first leader's counts in this process, or null when no worker here leads. */
async function leaderCounts(): Promise<TaskCounts | null> {
  for (const w of workers) {
    const p = w.leader() ? w.taskCounts() : null;
    if (p) return p;
  }
  return null;
}

new Gauge({
  name: 'posthorn_tasks',
  help: 'Tasks in the database by status, fleet-wide; published by the leader only; succeeded, failed and canceled are planner estimates',
  labelNames: ['status'] as const,
  registers: [workerRegistry],
  async collect() {
    this.reset();
    const c = await leaderCounts().catch(() => null);
    for (const [status, n] of Object.entries(c?.byStatus ?? {})) this.set({ status }, n);
  },
});

new Gauge({
  name: 'posthorn_queue_oldest_due_seconds',
  help: 'Age of the oldest due task not yet claimed, fleet-wide (leader only; 0 when none is waiting)',
  registers: [workerRegistry],
  async collect() {
    this.reset();
    const c = await leaderCounts().catch(() => null);
    if (c) this.set(c.oldestDueSeconds);
  },
});

export const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];

new Gauge({
  name: 'posthorn_circuits',
  help: 'Circuit breakers by state, fleet-wide; published by the leader only (closed: origins with attempts in the last 24 h)',
  labelNames: ['state'] as const,
  registers: [workerRegistry],
  async collect() {
    this.reset();
    const w = [...workers].find((x) => x.leader() && x.circuitCounts);
    const c = await w?.circuitCounts?.().catch(() => null);
    if (c) for (const state of CIRCUIT_STATES) this.set({ state }, c[state]);
  },
});

new Gauge({
  name: 'posthorn_leader',
  help: '1 while this worker is the elected leader',
  registers: [workerRegistry],
  collect() {
    this.set([...workers].some((w) => w.leader()) ? 1 : 0);
  },
});

new Gauge({
  name: 'posthorn_worker_slots_busy',
  help: 'Attempts in flight on this worker (of POSTHORN_WORKER_CONCURRENCY slots)',
  registers: [workerRegistry],
  collect() {
    let n = 0;
    for (const w of workers) n += w.slotsBusy();
    this.set(n);
  },
});

/** Registers a worker's live gauges; call the result when it stops. */
export function registerWorkerGauges(w: WorkerGauges): () => void {
  workers.add(w);
  return () => workers.delete(w);
}
