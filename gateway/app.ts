// The gateway's Hono app: health, OpenAPI, and /api/v1 behind a deadline, a body limit and
// API-key auth. Every error leaves through onError as application/problem+json.
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { TrustedProxies } from '../shared/config.ts';
import type { Sql } from '../shared/db.ts';
import { errorForLog, isDataError, isUnavailableError, ProblemError, problem } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { gatewayRegistry, scrapeRegistry } from '../shared/metrics.ts';
import { migrationsCurrent } from '../shared/migrate.ts';
import type { SecretBox } from '../shared/secret-box.ts';
import type { TargetCheck } from '../shared/targets.ts';
import { withTimeout } from '../shared/timeout.ts';
import { adminRoutes } from './api/admin.ts';
import { channelRoutes } from './api/channels.ts';
import { circuitRoutes } from './api/circuits.ts';
import { connectionRoutes } from './api/connections.ts';
import { endpointRoutes } from './api/endpoints.ts';
import { keyRoutes } from './api/keys.ts';
import { monitorRoutes } from './api/monitors.ts';
import { queueRoutes } from './api/queues.ts';
import { scheduleRoutes } from './api/schedules.ts';
import { signingKeyRoutes } from './api/signing-keys.ts';
import { syncRoutes } from './api/sync.ts';
import { taskRoutes } from './api/tasks.ts';
import { type AuthEnv, authenticate, requireRole } from './auth.ts';
import { clientIp } from './client-address.ts';
import { docsPage } from './docs-page.ts';
import type { EnqueueBatcher } from './enqueue-batcher.ts';
import { deadline, refuseBadStrings, throwIfPastDeadline } from './http.ts';
import { createInboundWriter, type InboundWriter, inboundRoutes } from './inbound.ts';
import { methodNotAllowed } from './methods.ts';
import { observeRequests, requestLogIds } from './observe.ts';
import { buildOpenApi } from './openapi.ts';
import { pingRoutes } from './ping.ts';
import { publicStatusRoutes } from './public/status.tsx';
import { qstashErrorShape } from './qstash/errors.ts';
import { qstashRoutes } from './qstash/routes.ts';
import type { GatewayLimits } from './rate-limit.ts';
import { uiRoutes } from './ui/app.tsx';

export type AppDeps = {
  sql: Sql;
  batcher: EnqueueBatcher;
  logger: Logger;
  maxBodyBytes: number;
  checkTarget?: TargetCheck;
  /** 4.5 s: answers 503 before a client's 5 s budget runs out (docs/api.md §3). */
  deadlineMs?: number;
  /** Rate limits per key and per failing address (gateway/rate-limit.ts); absent: none. */
  limits?: GatewayLimits;
  /** POSTHORN_OPERATOR_TOKEN; absent: no /admin/v1 routes (404). */
  operatorToken?: string;
  /** 10 s: a request body not fully arrived by then is answered 408 (docs/api.md, errors). */
  bodyTimeoutMs?: number;
  /** POSTHORN_TRUSTED_PROXIES: whose X-Forwarded-For names the client in logs. */
  trustedProxies?: TrustedProxies;
  /** Writes /in/<slug> events in groups (gateway/inbound.ts); absent: the app makes its own. */
  inboundWriter?: InboundWriter;
  /** POSTHORN_SECRET_KEY's box (shared/secret-box.ts); absent: connections are refused. */
  secretBox?: SecretBox | null;
};

// A batch of up to 1000 tasks may be larger than one task: its request may be 10 bodies big.
const BATCH_BODY_FACTOR = 10;
// Room for url, headers and the rest around a body of the largest size.
const ENVELOPE_BYTES = 64 * 1024;

export function problemResponse(c: Context, err: ProblemError) {
  for (const [k, v] of Object.entries(err.headers ?? {})) c.header(k, v);
  return c.body(JSON.stringify(err.toJSON()), err.status, { 'content-type': 'application/problem+json' });
}

export function createApp(deps: AppDeps) {
  const { sql, logger } = deps;
  const app = new Hono<AuthEnv>();
  app.use('*', observeRequests()); // metrics and the server span (docs/observability.md)

  app.onError((err, c) => {
    if (err instanceof ProblemError) return problemResponse(c, err);
    if (err instanceof HTTPException && err.status < 500) {
      return problemResponse(c, problem('validation_failed', err.message || 'bad request'));
    }
    // Errors are logged by errorForLog only: a PostgreSQL error carries the statement's
    // parameters, which for an enqueue are task rows with their headers and bodies.
    if (isUnavailableError(err)) {
      logger.warn({ err: errorForLog(err), ...requestLogIds(c) }, 'database unavailable');
      return problemResponse(
        c,
        problem('unavailable', 'the database is not reachable; try again shortly', undefined, { 'retry-after': '5' }),
      );
    }
    // A value PostgreSQL refused that validation let through: this request's fault alone (the
    // enqueue group commit isolates its row), so a 400 and not a 500.
    if (isDataError(err)) {
      logger.warn({ err: errorForLog(err), path: c.req.path }, 'the database refused a value validation let through');
      return problemResponse(
        c,
        problem('validation_failed', 'the database refused a value in this request', [
          { path: '', message: 'a value could not be stored' },
        ]),
      );
    }
    logger.error({ err: errorForLog(err), path: c.req.path, ...requestLogIds(c) }, 'unhandled error');
    return c.body(JSON.stringify({ status: 500, code: 'internal', title: 'Internal error', detail: 'an unexpected error occurred' }), 500, {
      'content-type': 'application/problem+json',
    });
  });
  // A known path with a method it does not serve is 405 with Allow, read off the route table
  // once every route is registered (gateway/methods.ts); anything else is 404.
  const allowed = methodNotAllowed(app);
  app.notFound((c) => {
    const allow = allowed(c.req.path);
    if (allow) {
      return problemResponse(
        c,
        problem('method_not_allowed', `${c.req.path} does not serve ${c.req.method}; it serves ${allow}`, undefined, { allow }),
      );
    }
    return problemResponse(c, problem('not_found', `no route for ${c.req.method} ${c.req.path}`));
  });

  // Query parameters follow the body's rules (docs/api.md, errors): a NUL in ?label= reached
  // PostgreSQL and was a 500. Requests without a query string pay one indexOf.
  app.use('*', async function refuseBadQuery(c, next) {
    if (c.req.url.indexOf('?') !== -1) {
      for (const [name, values] of Object.entries(c.req.queries())) refuseBadStrings([name, ...values].join(''), name);
    }
    await next();
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      const current = await withTimeout(migrationsCurrent(sql), 2000, () => new Error('database did not answer in 2 s'));
      if (!current) return c.json({ status: 'unavailable', database: 'ok', migrations: 'pending' }, 503);
      return c.json({ status: 'ok', database: 'ok', migrations: 'current' });
    } catch (e) {
      return c.json({ status: 'unavailable', database: (e as Error).message }, 503);
    }
  });
  const openapi = buildOpenApi();
  app.get('/openapi.json', (c) => c.json(openapi));
  app.get('/metrics', async (c) => {
    const registry = scrapeRegistry(gatewayRegistry);
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
  });
  app.get('/docs', docsPage(openapi));

  // 413 past maxSize. A declared Content-Length is checked without touching the body (Node's
  // parser never reads past it); hono's bodyLimit, which wraps the body in a counting stream,
  // only sees chunked bodies. That stream made @hono/node-server build a full web Request for
  // every enqueue: 20-25% of the gateway's CPU per task (docs/bench.md).
  const limit = (maxSize: number): MiddlewareHandler => {
    const tooLarge = (c: Context) => problemResponse(c, problem('payload_too_large', `the request body is larger than ${maxSize} bytes`));
    const chunked = bodyLimit({ maxSize, onError: tooLarge });
    return async function requestBodyLimit(c, next) {
      const declared = c.req.header('content-length');
      if (declared === undefined || c.req.header('transfer-encoding') !== undefined) return chunked(c, next);
      if (Number(declared) > maxSize) return tooLarge(c);
      await next();
    };
  };

  // A body that stalls is the client being slow: 408 at 10 s, logged as such, not as the
  // database being away (the 503 deadline waits while the body is still arriving).
  const timing = deadline(deps.deadlineMs ?? 4500, {
    bodyTimeoutMs: deps.bodyTimeoutMs,
    onSlowBody: (c) =>
      logger.info(
        { method: c.req.method, path: c.req.path, client: clientIp(c, deps.trustedProxies) },
        'slow client: request body not received in time; answered 408',
      ),
  });
  const authFailed = deps.limits?.authFailed ?? (async () => {});
  /** What every API-key surface (/api/v1, /v2) runs first: deadline, body limits, key, rate limit, role. */
  const keyed = (h: Hono<AuthEnv>, batchPath: string) => {
    h.use('*', timing);
    h.use(batchPath, limit(deps.maxBodyBytes * BATCH_BODY_FACTOR + ENVELOPE_BYTES));
    const taskLimit = limit(deps.maxBodyBytes + ENVELOPE_BYTES);
    h.use('*', async (c, next) => (c.req.path.endsWith(batchPath) ? next() : taskLimit(c, next)));
    h.use('*', authenticate(sql, { onFailure: authFailed }));
    if (deps.limits) h.use('*', deps.limits.perKey);
    h.use('*', requireRole('read'));
    // Answered 503 while auth or the limiter waited for the database: go no further.
    h.use('*', async function stopPastDeadline(c, next) {
      throwIfPastDeadline(c);
      await next();
    });
    return h;
  };
  const api = keyed(new Hono<AuthEnv>(), '/queue/batch');
  const checkTarget = deps.checkTarget ?? (() => ({ ok: true }) as const);
  api.route('/', taskRoutes({ sql, batcher: deps.batcher, maxBodyBytes: deps.maxBodyBytes, checkTarget }));
  api.route('/', scheduleRoutes({ sql, maxBodyBytes: deps.maxBodyBytes, checkTarget }));
  api.route('/', keyRoutes({ sql }));
  api.route('/', signingKeyRoutes({ sql }));
  api.route('/', channelRoutes({ sql, checkTarget }));
  api.route('/', circuitRoutes({ sql }));
  api.route('/', endpointRoutes({ sql, checkTarget }));
  api.route('/', monitorRoutes({ sql }));
  api.route('/', syncRoutes({ sql, maxBodyBytes: deps.maxBodyBytes, checkTarget }));
  api.route('/', queueRoutes({ sql }));
  api.route('/', connectionRoutes({ sql, box: deps.secretBox ?? null, checkTarget }));
  app.route('/api/v1', api);
  // The QStash-compatible API (docs/qstash.md): the same keys and limits, QStash's error shape.
  const v2 = new Hono<AuthEnv>();
  v2.use('*', qstashErrorShape);
  keyed(v2, '/batch').route('/', qstashRoutes({ sql, batcher: deps.batcher, maxBodyBytes: deps.maxBodyBytes, checkTarget }));
  app.route('/v2', v2);
  // The web UI (docs/ui.md): sessions instead of Bearer keys, the same routes underneath.
  app.route(
    '/ui',
    uiRoutes({ sql, batcher: deps.batcher, maxBodyBytes: deps.maxBodyBytes, checkTarget, logger, authFailed: deps.limits?.authFailed }),
  );

  // Inbound endpoints and heartbeat pings (docs/endpoints.md, docs/monitors.md): no API key;
  // the slug or token in the path is the credential.
  app.route(
    '/in',
    inboundRoutes({
      sql,
      writer: deps.inboundWriter ?? createInboundWriter(sql),
      maxBodyBytes: deps.maxBodyBytes,
      deadlineMs: deps.deadlineMs,
      bodyTimeoutMs: deps.bodyTimeoutMs,
      limit: deps.limits?.perEndpoint,
    }),
  );
  app.route('/ping', pingRoutes({ sql, deadlineMs: deps.deadlineMs }));

  // A team's public status page (docs/circuits.md): no credentials, the token in the path.
  app.route('/status', publicStatusRoutes({ sql }));

  if (deps.operatorToken) {
    const admin = new Hono();
    admin.use('*', timing);
    admin.use('*', limit(ENVELOPE_BYTES));
    admin.route('/', adminRoutes({ sql, operatorToken: deps.operatorToken, onAuthFailure: authFailed }));
    app.route('/admin/v1', admin);
  }
  return app;
}
