// One worker process: producer → executor → completer, the lease heartbeat (leases.ts), the
// leader election (the leader also runs scheduler, rescuer and pruner) and a health/metrics server.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Dispatcher } from 'undici';
import type { Config } from '../shared/config.ts';
import { createSql, type Sql } from '../shared/db.ts';
import { errorForLog } from '../shared/errors.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { registerWorkerGauges } from '../shared/metrics.ts';
import { secretBoxFromConfig } from '../shared/secret-box.ts';
import { targetPolicyFromConfig } from '../shared/targets.ts';
import { initTelemetry, shutdownTelemetry } from '../shared/telemetry.ts';
import type { BreakerSettings } from './breaker.ts';
import { createBreakerGate } from './breaker-gate.ts';
import { countCircuitsByState } from './breaker-store.ts';
import { createCompleter } from './completer.ts';
import { createCredentials } from './connections/credentials.ts';
import { createSafeDispatcher, isBlockedError } from './dispatcher.ts';
import { type AttemptResult, type ExecutorDeps, executeAttempt, timeoutReason } from './executor.ts';
import { startHealthServer } from './health-server.ts';
import { releaseTasks, startHeartbeat } from './leases.ts';
import { createElector } from './maintenance/elector.ts';
import { createLeaderServices } from './maintenance/leader.ts';
import { createNotifier } from './maintenance/notifier.ts';
import { cachedTaskCounts } from './maintenance/task-counts.ts';
import { observeAttempt } from './observe-attempt.ts';
import { type ClaimedTask, createProducer } from './producer.ts';
import { planNext } from './retry.ts';
import { createSigner } from './signer.ts';
import { createBodyReader, LEASE_LOST } from './task-body.ts';

export type WorkerOptions = {
  sql?: Sql;
  logger?: Logger;
  dispatcher?: Dispatcher;
  random?: () => number;
  now?: () => number;
};

export type WorkerConfig = Pick<
  Config,
  | 'workerConcurrency'
  | 'leaseMs'
  | 'pollIntervalMs'
  | 'shutdownGraceMs'
  | 'logLevel'
  | 'dbPool'
  | 'workerId'
  | 'allowPrivateTargets'
  | 'targetAllowlist'
  | 'retentionHours'
  | 'host'
> &
  Partial<
    Pick<Config, 'smtpUrl' | 'smtpFrom' | 'publicUrl' | 'notifyIntervalMs' | 'notifyRetentionHours' | 'secretKey' | 'secretKeyPrevious'>
  > & {
    databaseUrl: string;
    /** undefined: no health/metrics server (in-process tests); 0: any free port. */
    metricsPort?: number;
    /** OTEL_* (shared/config.ts); absent: no tracing set up by this worker. */
    telemetry?: Config['telemetry'];
    /** Circuit breaker thresholds (docs/circuits.md); default 30 s open, 10 min at most, 10 attempts, 50%. */
    circuit?: BreakerSettings;
  };

export async function startWorker(config: WorkerConfig, opts: WorkerOptions = {}) {
  const logger = opts.logger ?? createLogger('worker', config.logLevel);
  await initTelemetry(config.telemetry, 'posthorn-worker', logger);
  const sql = opts.sql ?? createSql(config.databaseUrl, { max: config.dbPool, name: `posthorn-worker-${process.pid}` });
  const workerId = config.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const random = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;
  const policy = targetPolicyFromConfig(config, logger);
  // Every connection goes through the target policy: names are resolved once, each address
  // checked, and the socket opened to the checked address (docs/api.md §6).
  const dispatcher = opts.dispatcher ?? createSafeDispatcher(policy, { connections: 256, connectTimeoutMs: 10_000 });
  // Circuit breakers per (team, origin): claimed tasks pass its gate, outcomes feed it per batch.
  const breakers = createBreakerGate({ sql, logger, settings: config.circuit, dispatch: (tasks) => dispatch(tasks) });
  const completer = createCompleter(sql, {
    onBatch: breakers.observe,
    // Outcomes held while the database is away (worker/outcome-buffer.ts): a line when the first
    // is held, one when the last is written, not one per task.
    hold: {
      onHold: (h) => h.count === 1 && logger.warn('database unavailable: holding attempt outcomes until it answers'),
      onWritten: (waitedMs, h) => h.count === 0 && logger.info({ waited_ms: waitedMs }, 'database back: held attempt outcomes recorded'),
    },
  });
  // Standard Webhooks signature on every delivery, with the team's secrets cached for 2 s.
  const signer = createSigner(sql);
  // authorization from a task's connection (docs/connections.md); tokens through the same dispatcher.
  const auth = createCredentials({ sql, box: secretBoxFromConfig(config), dispatcher, now });
  const running = new Map<string, { task: ClaimedTask; abort: AbortController; deadline: number }>();
  // Bodies the claim left out for their size, read by their attempts a few at a time.
  const readBody = createBodyReader(sql);
  const counts = { claimed: 0, completed: 0, lostLeases: 0 };

  async function run(task: ClaimedTask) {
    const abort = new AbortController();
    running.set(task.id, { task, abort, deadline: Date.now() + task.timeout_ms });
    const observed = observeAttempt(task, now()); // metrics, and the attempt span when tracing
    try {
      const deps = { dispatcher, isBlocked: isBlockedError, sign: signer.sign, clientSpan: observed.clientSpan, auth };
      const result = await attempt(task, deps, abort.signal);
      if (result === LEASE_LOST) {
        counts.lostLeases++;
        logger.warn({ task_id: task.id, attempt: task.attempts, ...observed.logIds }, 'lease lost before the body was read; not sent');
        return observed.abandon();
      }
      if (abort.signal.aborted && abort.signal.reason?.name !== 'TimeoutError') return observed.abandon(); // shutting down: released in stop(), not recorded
      const plan = planNext(result, task.attempts - task.retry_base, task, now(), random);
      observed.end(result, plan);
      const done = await completer.add({ task, result, plan });
      counts.completed++;
      if (!done.written) {
        counts.lostLeases++;
        logger.warn({ task_id: task.id, attempt: task.attempts, ...observed.logIds }, 'lease lost before completion; result dropped');
      }
      // A task that ends failed is worth an operator's look (docs/retries.md); never its headers or body.
      else if (done.status === 'failed') {
        logger.warn(
          {
            task_id: task.id,
            team_id: task.team_id,
            origin: done.origin,
            attempts: task.attempts,
            outcome: result.outcome,
            status_code: result.statusCode,
          },
          'task failed',
        );
      }
    } catch (err) {
      // The completion could not be written, or a large body read (database gone): the lease
      // expires and the task runs again elsewhere. At least once, never lost.
      logger.error({ err: errorForLog(err), task_id: task.id, ...observed.logIds }, 'could not record attempt');
    } finally {
      running.delete(task.id);
      producer.slotFreed();
    }
  }

  /**
   * The attempt, after reading the body the claim left out (worker/task-body.ts). Not async: a
   * task with its body (nearly all) costs no extra promise, and no frame here holds a body read
   * while its request waits.
   */
  function attempt(task: ClaimedTask, deps: ExecutorDeps, signal: AbortSignal): Promise<AttemptResult | typeof LEASE_LOST> {
    if (task.body_bytes == null) return executeAttempt(task, deps, signal);
    return readBody(task).then<AttemptResult | typeof LEASE_LOST>((body) =>
      body === LEASE_LOST ? body : executeAttempt(task, deps, signal, body),
    );
  }

  function dispatch(tasks: ClaimedTask[]) {
    counts.claimed += tasks.length;
    for (const t of tasks) void run(t);
  }

  const producer = createProducer({
    sql,
    workerId,
    leaseMs: config.leaseMs,
    pollIntervalMs: config.pollIntervalMs,
    concurrency: config.workerConcurrency,
    freeSlots: () => config.workerConcurrency - running.size,
    dispatch: (tasks) => dispatch(breakers.admit(tasks)),
    onError: (err) => logger.error({ err }, 'claim failed'),
  });

  // Attempt timeouts: one timer for all attempts in flight, not one per attempt (no
  // per-task timers). AbortSignal.timeout + AbortSignal.any per attempt cost 10-15% of the
  // workers' CPU per task in the bench profile. Every 25 ms: a timeout fires at most 25 ms late.
  const timeouts = setInterval(() => {
    const t = Date.now();
    for (const r of running.values()) if (t >= r.deadline && !r.abort.signal.aborted) r.abort.abort(timeoutReason());
  }, 25);

  const heartbeat = startHeartbeat({
    sql,
    workerId,
    leaseMs: config.leaseMs,
    running: () => [...running.values()].map((r) => r.task),
    logger,
  });

  let stopping = false;
  // Channel messages go out through the same SSRF-safe dispatcher as tasks (docs/api.md, outbound safety).
  const notifier = createNotifier({
    sql,
    logger,
    dispatcher,
    keysFor: signer.keysFor,
    smtpUrl: config.smtpUrl,
    smtpFrom: config.smtpFrom ?? 'Posthorn <posthorn@localhost>',
    publicUrl: config.publicUrl,
  });
  const leaderServices = createLeaderServices({
    sql,
    logger,
    leaseMs: config.leaseMs,
    retentionHours: config.retentionHours,
    notifyRetentionHours: config.notifyRetentionHours,
    now,
    notifier: { notifier, intervalMs: config.notifyIntervalMs ?? 1000 },
  });
  const elector = createElector({
    sql,
    onElected: () => {
      logger.info({ worker_id: workerId }, 'became leader: running scheduler, rescuer and pruner');
      leaderServices.start();
    },
    onDemoted: async () => {
      // Giving it up on the way out is routine; losing it while running is worth a warning.
      if (stopping) logger.info({ worker_id: workerId }, 'released leadership');
      else logger.warn({ worker_id: workerId }, 'lost leadership');
      await leaderServices.stop();
    },
    onError: (err) => logger.warn({ err }, 'leader election: connection problem'),
  });

  await breakers.start();
  await producer.start();
  elector.start();
  const health =
    config.metricsPort === undefined
      ? null
      : await startHealthServer({
          port: config.metricsPort,
          host: config.host,
          sql,
          status: () => ({ workerId, leader: elector.isLeader() }),
        });
  const taskCounts = cachedTaskCounts(sql);
  const unregisterGauges = registerWorkerGauges({
    leader: () => elector.isLeader(),
    slotsBusy: () => running.size,
    taskCounts: () => (elector.isLeader() ? taskCounts() : null),
    circuitCounts: () => countCircuitsByState(sql),
  });
  logger.info({ worker_id: workerId, concurrency: config.workerConcurrency, metrics_port: health?.port }, 'worker started');

  async function stop() {
    stopping = true;
    // Stop claiming, let attempts in flight finish within the grace period, release the rest.
    await producer.stop();
    await breakers.settle(); // held tasks put back, a probe taken is running
    await elector.stop();
    const deadline = now() + config.shutdownGraceMs;
    while (running.size > 0 && now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const leftovers = [...running.values()];
    for (const r of leftovers) r.abort.abort();
    completer.close(); // outcomes still held for a database that has not come back: at least once
    await completer.drain();
    await breakers.stop();
    heartbeat.stop();
    clearInterval(timeouts);
    await health?.close();
    unregisterGauges();
    const released = await releaseTasks(
      sql,
      leftovers.map((r) => ({ team_id: r.task.team_id, id: r.task.id, token: r.task.lease_token })),
    ).catch(() => 0);
    notifier.close();
    if (!opts.dispatcher) await dispatcher.close().catch(() => {});
    if (!opts.sql) await sql.end({ timeout: 5 });
    logger.info({ released, ...counts }, 'worker stopped');
    if (config.telemetry) await shutdownTelemetry(); // exports the spans still buffered
  }

  return { workerId, stop, counts, producer, running, elector, leaderServices, notifier, breakers, metricsPort: health?.port };
}
