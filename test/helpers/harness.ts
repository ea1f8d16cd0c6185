// A test file's Posthorn: its own database, a team with keys of each role, the gateway app
// (called with app.request, Hono's way) and, when asked, an in-process worker that delivers
// over real HTTP.
import { pino } from 'pino';
import type { Dispatcher } from 'undici';
import { createApp } from '../../gateway/app.ts';
import { createEnqueueBatcher, type EnqueueBatcher } from '../../gateway/enqueue-batcher.ts';
import type { Logger } from '../../shared/logger.ts';
import { createSecretBox, parseSecretKey } from '../../shared/secret-box.ts';
import { createTargetPolicy } from '../../shared/targets.ts';
import { startWorker, type WorkerConfig } from '../../worker/main.ts';
import { type JsonResponse, requestJson } from './client.ts';
import { createTestDb, seedTeam } from './db.ts';

export type ApiResponse = JsonResponse;

export type HarnessOptions = {
  worker?: Partial<WorkerConfig> | false;
  maxBodyBytes?: number;
  allowPrivate?: boolean;
  allowlist?: string[];
  /** A worker dispatcher of the test's own (e.g. the SSRF-safe one with a resolver it controls). */
  dispatcher?: Dispatcher;
  /** The gateway's (and worker's) logger; default silent. */
  logger?: Logger;
  /** Enables /admin/v1 with this token. */
  operatorToken?: string;
  /** POSTHORN_SECRET_KEY (base64 of 32 bytes) for the gateway and the worker: enables connections. */
  secretKey?: string;
  /** Wraps the enqueue batcher (e.g. to hand it a row PostgreSQL refuses, past validation). */
  wrapBatcher?: (inner: EnqueueBatcher) => EnqueueBatcher;
};

export async function startHarness(opts: HarnessOptions = {}) {
  const db = await createTestDb();
  const team = await seedTeam(db.sql);
  const logger = opts.logger ?? pino({ level: 'silent' });
  const inner = createEnqueueBatcher(db.sql);
  const batcher = opts.wrapBatcher ? opts.wrapBatcher(inner) : inner;
  const allowPrivate = opts.allowPrivate ?? true; // sinks live on 127.0.0.1
  const allowlist = opts.allowlist ?? [];
  const policy = createTargetPolicy({ allowPrivate, allowlist });
  const secretKey = opts.secretKey === undefined ? undefined : (parseSecretKey(opts.secretKey) as Buffer);
  const app = createApp({
    secretBox: secretKey ? createSecretBox(secretKey) : null,
    sql: db.sql,
    batcher,
    logger,
    maxBodyBytes: opts.maxBodyBytes ?? 1_048_576,
    checkTarget: policy.checkUrl,
    operatorToken: opts.operatorToken,
  });

  async function api(
    method: string,
    path: string,
    body?: unknown,
    o: { key?: string | null; headers?: Record<string, string>; raw?: string } = {},
  ): Promise<ApiResponse> {
    const key = o.key === undefined ? team.keys.admin : o.key;
    return requestJson((p, init) => app.request(p, init), method, path, { ...o, key, body });
  }

  const worker =
    opts.worker === false || opts.worker === undefined
      ? null
      : await startWorker(
          {
            databaseUrl: db.url,
            workerConcurrency: 16,
            leaseMs: 5000,
            pollIntervalMs: 100,
            shutdownGraceMs: 2000,
            logLevel: 'silent',
            dbPool: 4,
            workerId: undefined,
            allowPrivateTargets: allowPrivate,
            targetAllowlist: allowlist,
            retentionHours: 168,
            host: '127.0.0.1',
            // Circuit breakers stay closed unless a test asks for them: test files reuse one
            // sink (one origin) for many unrelated failure cases, which would open one.
            circuit: { openMs: 30_000, maxOpenMs: 600_000, minRequests: 1_000_000, failureRate: 0.5 },
            secretKey,
            ...opts.worker,
          },
          { logger, dispatcher: opts.dispatcher },
        );

  return {
    db,
    sql: db.sql,
    team,
    app,
    api,
    worker,
    /** Enqueue and return the new task's id (fails the test on anything but 202). */
    async enqueue(task: Record<string, unknown>) {
      const r = await api('POST', '/api/v1/queue', task);
      if (r.status !== 202) throw new Error(`enqueue failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.id as string;
    },
    async task(id: string) {
      return (await api('GET', `/api/v1/tasks/${id}`)).body;
    },
    async close() {
      await worker?.stop();
      await inner.drain();
      await db.drop();
    },
  };
}
