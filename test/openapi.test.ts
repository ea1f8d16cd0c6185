// /openapi.json and /docs against the app itself: the document is valid OpenAPI 3.1, names
// exactly the routes the app serves, asks for the roles the code enforces, and every answer
// this file receives (success or problem) has a documented status, code and shape: checked
// with the zod schema of gateway/api/responses.ts and with the JSON Schema in the document.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../gateway/app.ts';
import { createEnqueueBatcher } from '../gateway/enqueue-batcher.ts';
import { buildOpenApi, openApiPath, problemCodes } from '../gateway/openapi.ts';
import { type Access, ROUTES, type RouteSpec } from '../gateway/openapi-routes.ts';
import { PROBLEM_STATUS } from '../shared/errors.ts';
import { problemSchema } from '../shared/schemas.ts';
import { createTargetPolicy } from '../shared/targets.ts';
import { DEFAULT_BREAKER_SETTINGS } from '../worker/breaker.ts';
import { applyEvent } from '../worker/breaker-store.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { startSink } from './helpers/sink.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const OPERATOR = `operator-${randomUUID()}`;
const doc = buildOpenApi() as any;

let h: Awaited<ReturnType<typeof startHarness>>;
let sink: Awaited<ReturnType<typeof startSink>>;
let app: ReturnType<typeof createApp>;
let batcher: ReturnType<typeof createEnqueueBatcher>;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

beforeAll(async () => {
  h = await startHarness({ worker: {} });
  sink = await startSink((r) => (r.path.startsWith('/fail') ? { status: 500, body: 'down' } : { status: 200, body: '{"ok":true}' }));
  batcher = createEnqueueBatcher(h.sql);
  // The harness's app has no operator API; this one has, and refuses private targets but the sink's.
  const policy = createTargetPolicy({ allowPrivate: false, allowlist: ['127.0.0.1/32'] });
  app = createApp({
    sql: h.sql,
    batcher,
    logger: pino({ level: 'silent' }),
    maxBodyBytes: 1_048_576,
    operatorToken: OPERATOR,
    checkTarget: policy.checkUrl,
  });
  ajv.addSchema(doc, 'openapi.json');
});

afterAll(async () => {
  await batcher?.drain();
  await sink?.close();
  await h?.close();
});

const pointer = (...parts: string[]) => `openapi.json#/${parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`;

function validateAgainstDocument(route: RouteSpec, status: number, contentType: string, body: unknown) {
  const p = openApiPath(route.path);
  let answer = doc.paths[p][route.method].responses[status];
  let at = pointer('paths', p, route.method, 'responses', String(status), 'content', contentType, 'schema');
  if (answer.$ref) {
    const name = answer.$ref.split('/').pop();
    answer = doc.components.responses[name];
    at = pointer('components', 'responses', name, 'content', contentType, 'schema');
  }
  if (!answer.content?.[contentType]?.schema) return;
  const validate = ajv.getSchema(at);
  expect(validate, `no schema at ${at}`).toBeTypeOf('function');
  const ok = validate!(body);
  expect(ok, `${route.method} ${route.path} ${status}: ${ajv.errorsText(validate!.errors)}`).toBe(true);
}

type Call = { status: number; headers: Headers; body: any };

/** Calls the app and checks that the answer is one the document describes for this route. */
async function call(
  method: string,
  path: string,
  o: {
    params?: Record<string, string>;
    query?: string;
    body?: unknown;
    raw?: string;
    key?: string | null;
    headers?: Record<string, string>;
  } = {},
): Promise<Call> {
  const route = ROUTES.find((r) => r.method === method.toLowerCase() && r.path === path);
  if (!route) throw new Error(`not in gateway/openapi-routes.ts: ${method} ${path}`);
  const url = path.replace(/:(\w+)/g, (_, n) => encodeURIComponent(o.params?.[n] ?? '')) + (o.query ? `?${o.query}` : '');
  const headers: Record<string, string> = { ...o.headers };
  const key = o.key === undefined ? (route.access === 'operator' ? OPERATOR : h.team.keys.admin) : o.key;
  if (key) headers.authorization = `Bearer ${key}`;
  const payload = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
  if (payload !== undefined) headers['content-type'] ??= 'application/json';
  const res = await app.request(url, { method: method.toUpperCase(), headers, body: payload });
  const text = await res.text();
  const type = (res.headers.get('content-type') ?? '').split(';')[0]!;
  const body = type.endsWith('json') && text ? JSON.parse(text) : text;
  const where = `${method} ${url} → ${res.status} ${text.slice(0, 300)}`;

  const answer = route.responses[res.status];
  if (answer) {
    if (!answer.schema && !answer.contentType) expect(text, where).toBe('');
    expect(type, where).toBe(answer.contentType ?? (answer.schema ? 'application/json' : ''));
    if (answer.schema) expect(answer.schema.parse(body), `${where}: fields other than documented`).toEqual(body);
    for (const name of answer.headers ?? []) expect(res.headers.get(name), `${where}: header ${name}`).not.toBeNull();
  } else {
    const codes = problemCodes(route).filter((c) => PROBLEM_STATUS[c] === res.status);
    expect(codes.length, `${where}: status not documented`).toBeGreaterThan(0);
    expect(type, where).toBe('application/problem+json');
    expect(codes, where).toContain(body.code);
    expect(problemSchema.parse(body)).toEqual(body);
    if (res.status === 401) expect(res.headers.get('www-authenticate'), where).toBe('Bearer');
  }
  validateAgainstDocument(route, res.status, type, body);
  return { status: res.status, headers: res.headers, body };
}

describe('the document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('names every route the app serves, and the app serves every route it names', () => {
    // The web UI's HTML pages (/ui, docs/ui.md) are not part of the API document, nor is the
    // QStash-compatible API (/v2): its destination is the rest of the path (OpenAPI cannot
    // template that) and its errors are QStash's {"error"}, not problem+json. docs/qstash.md
    // lists its routes instead (the next test).
    const served = new Set(
      app.routes
        .filter((r) => r.method !== 'ALL' && !r.path.startsWith('/ui') && !r.path.startsWith('/v2/'))
        .map((r) => `${r.method} ${openApiPath(r.path)}`),
    );
    const documented = new Set(
      Object.entries<any>(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`)),
    );
    expect(served.size).toBeGreaterThan(25);
    expect(
      [...served].filter((r) => !documented.has(r)),
      'served but not documented',
    ).toEqual([]);
    expect(
      [...documented].filter((r) => !served.has(r)),
      'documented but not served',
    ).toEqual([]);
  });

  it('lists every /v2 route the app serves in docs/qstash.md', () => {
    const qstashDoc = readFileSync(new URL('../docs/qstash.md', import.meta.url), 'utf8');
    const v2 = app.routes.filter((r) => r.method !== 'ALL' && r.path.startsWith('/v2/'));
    expect(v2.length).toBeGreaterThan(10);
    // Hono's /v2/enqueue/:queue/* is written /v2/enqueue/<queue>/<destination> there.
    const written = (path: string) => path.replace(/\/\*$/, '/<destination>').replace(/:(\w+)/g, '<$1>');
    expect(v2.map((r) => `${r.method} ${written(r.path)}`).filter((r) => !qstashDoc.includes(`\`${r}\``))).toEqual([]);
  });

  it('gives every operation an id, a success answer with its shape, and its problems', () => {
    const ids = ROUTES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [p, item] of Object.entries<any>(doc.paths)) {
      for (const [m, op] of Object.entries<any>(item)) {
        const statuses = Object.keys(op.responses).map(Number);
        expect(
          statuses.some((s) => s >= 200 && s < 300),
          `${m} ${p}`,
        ).toBe(true);
        for (const s of statuses.filter((s) => s >= 200 && s < 300 && s !== 204))
          expect(op.responses[s].content, `${m} ${p} ${s}`).toBeDefined();
        if (p.startsWith('/api/')) expect(statuses, `${m} ${p}`).toEqual(expect.arrayContaining([401, 429, 503]));
        if (op.requestBody) expect(statuses, `${m} ${p}`).toEqual(expect.arrayContaining([400, 413, 415]));
      }
    }
    const enqueue = doc.paths['/api/v1/queue'].post;
    expect(enqueue.parameters.map((p: any) => p.name)).toContain('Idempotency-Key');
    expect(enqueue.responses[200].headers).toHaveProperty('Idempotent-Replayed');
    expect(doc.paths['/api/v1/tasks'].get.parameters.map((p: any) => p.name)).toEqual(
      expect.arrayContaining(['status', 'queue', 'schedule_id', 'label', 'limit', 'cursor']),
    );
  });

  it('compiles every schema as JSON Schema 2020-12', () => {
    for (const name of Object.keys(doc.components.schemas)) {
      expect(ajv.getSchema(pointer('components', 'schemas', name)), name).toBeTypeOf('function');
    }
  });
});

describe('roles', () => {
  const below: Partial<Record<Access, 'read' | 'write'>> = { write: 'read', admin: 'write' };
  it('each API route refuses a key one role short of the one documented, and takes the one documented', async () => {
    for (const r of ROUTES.filter((r) => r.path.startsWith('/api/'))) {
      const params = { id: randomUUID(), event_id: randomUUID(), name: 'q1' };
      const body = r.body ? {} : undefined;
      const lower = below[r.access];
      if (lower)
        expect((await call(r.method, r.path, { params, body, key: h.team.keys[lower] })).status, `${r.method} ${r.path}`).toBe(403);
      const enough = (await call(r.method, r.path, { params, body, key: h.team.keys[r.access as 'read' | 'write' | 'admin'] })).status;
      expect([401, 403], `${r.method} ${r.path} answered ${enough}`).not.toContain(enough);
      expect((await call(r.method, r.path, { params, body, key: null })).status).toBe(401);
    }
  });

  it('operator routes need the operator token; public routes need nothing', async () => {
    for (const r of ROUTES.filter((r) => r.access === 'operator')) {
      expect((await call(r.method, r.path, { params: { slug: 'x' }, key: h.team.keys.admin })).status).toBe(401);
    }
    // A public route with a token in its path (/status/:token) answers 200 only for a live
    // token: 'circuits and the status page' below calls it with one.
    for (const r of ROUTES.filter((r) => r.access === 'public' && !r.path.includes('/:'))) {
      expect((await call(r.method, r.path, { key: null })).status).toBe(200);
    }
  });
});

describe('answers match the document', () => {
  it('tasks: enqueue, idempotency, batch, list, read, attempts, cancel, replay', async () => {
    const idem = { headers: { 'idempotency-key': `k-${randomUUID()}` } };
    const ok = await call('POST', '/api/v1/queue', { body: { url: `${sink.url}/ok`, body: { hello: 1 } }, ...idem });
    expect(ok.status).toBe(202);
    const again = await call('POST', '/api/v1/queue', { body: { url: `${sink.url}/ok`, body: { hello: 1 } }, ...idem });
    expect(again.status).toBe(200);
    expect((await call('POST', '/api/v1/queue', { body: { url: `${sink.url}/other` }, ...idem })).body.code).toBe('idempotency_conflict');
    expect((await call('POST', '/api/v1/queue', { body: { url: 'http://10.0.0.1/' } })).body.code).toBe('target_not_allowed');
    expect((await call('POST', '/api/v1/queue', { body: { url: 'ftp://x' } })).body.code).toBe('validation_failed');
    expect((await call('POST', '/api/v1/queue', { raw: 'x', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
    const failing = await call('POST', '/api/v1/queue', {
      body: { url: `${sink.url}/fail`, retry: { max_retries: 0, min_backoff_ms: 0, max_backoff_ms: 0 } },
    });
    const later = await call('POST', '/api/v1/queue', { body: { url: `${sink.url}/later`, delay: '1h', label: 'later' } });
    expect(later.body.status).toBe('scheduled');

    const batch = await call('POST', '/api/v1/queue/batch', {
      body: {
        tasks: [
          { url: `${sink.url}/b1`, delay: 3600 },
          { url: `${sink.url}/b2`, delay: 3600 },
        ],
      },
    });
    expect(batch.body.tasks).toHaveLength(2);
    expect((await call('POST', '/api/v1/queue/batch', { body: { tasks: [{ url: 'nope' }] } })).body.errors[0].path).toBe('tasks.0.url');

    const done = async (id: string, status: string) =>
      waitFor(async () => (await call('GET', '/api/v1/tasks/:id', { params: { id } })).body.status === status, { what: `${id} ${status}` });
    await done(ok.body.id, 'succeeded').catch(async (e) => {
      console.log('DBG', JSON.stringify((await call('GET', '/api/v1/tasks/:id', { params: { id: ok.body.id } })).body));
      throw e;
    });
    await done(failing.body.id, 'failed');
    const task = await call('GET', '/api/v1/tasks/:id', { params: { id: ok.body.id } });
    expect(task.body.last_attempt.outcome).toBe('success');
    const attempts = await call('GET', '/api/v1/tasks/:id/attempts', { params: { id: failing.body.id } });
    expect(attempts.body.data[0]).toMatchObject({ outcome: 'http_error', status_code: 500, response_body: 'down' });
    expect((await call('GET', '/api/v1/tasks/:id', { params: { id: randomUUID() } })).status).toBe(404);

    const page = await call('GET', '/api/v1/tasks', { query: 'limit=2' });
    expect(page.body.next_cursor).toEqual(expect.any(String));
    await call('GET', '/api/v1/tasks', { query: `cursor=${page.body.next_cursor}&status=scheduled&label=later` });
    expect((await call('GET', '/api/v1/tasks', { query: 'cursor=nope' })).status).toBe(400);
    expect((await call('GET', '/api/v1/tasks', { query: 'limit=1000' })).status).toBe(400);

    expect((await call('DELETE', '/api/v1/tasks/:id', { params: { id: later.body.id } })).body.status).toBe('canceled');
    expect((await call('DELETE', '/api/v1/tasks/:id', { params: { id: later.body.id } })).status).toBe(409);
    expect((await call('POST', '/api/v1/tasks/:id/replay', { params: { id: later.body.id } })).status).toBe(202);
    expect((await call('POST', '/api/v1/tasks/:id/replay', { params: { id: ok.body.id } })).status).toBe(409);
  });

  it('schedules: every route', async () => {
    const created = await call('POST', '/api/v1/schedules', {
      body: { name: 'nightly', cron: '0 3 * * *', timezone: 'Europe/Oslo', url: `${sink.url}/s`, body: 'text', retry: { max_retries: 2 } },
    });
    expect(created.status).toBe(201);
    const params = { id: created.body.id };
    expect((await call('POST', '/api/v1/schedules', { body: { name: 'x', cron: 'nope', url: `${sink.url}/s` } })).body.errors[0].path).toBe(
      'cron',
    );
    expect((await call('GET', '/api/v1/schedules')).body.data).toHaveLength(1);
    await call('GET', '/api/v1/schedules/:id', { params });
    expect((await call('PATCH', '/api/v1/schedules/:id', { params, body: { label: 'n', retry: null, queue: 'q1' } })).body.label).toBe('n');
    expect((await call('POST', '/api/v1/schedules/:id/pause', { params })).body.next_run_at).toBeNull();
    expect((await call('POST', '/api/v1/schedules/:id/resume', { params })).body.paused).toBe(false);
    expect((await call('POST', '/api/v1/schedules/:id/trigger', { params })).body.schedule_id).toBe(params.id);
    expect((await call('DELETE', '/api/v1/schedules/:id', { params })).status).toBe(204);
    expect((await call('DELETE', '/api/v1/schedules/:id', { params })).status).toBe(404);
    expect((await call('GET', '/api/v1/schedules/:id', { params })).status).toBe(404);
  });

  it('keys and signing keys', async () => {
    const key = await call('POST', '/api/v1/keys', { body: { role: 'read' } });
    expect(key.status).toBe(201);
    expect((await call('GET', '/api/v1/keys')).body.data.length).toBeGreaterThan(3);
    expect((await call('DELETE', '/api/v1/keys/:id', { params: { id: key.body.id } })).status).toBe(204);
    expect((await call('DELETE', '/api/v1/keys/:id', { params: { id: randomUUID() } })).status).toBe(404);
    expect((await call('GET', '/api/v1/signing-keys')).body.previous).toBeNull();
    expect((await call('POST', '/api/v1/signing-keys/rotate')).body.previous).toMatch(/^whsec_/);
    expect((await call('DELETE', '/api/v1/signing-keys/previous')).status).toBe(204);
  });

  it('circuits and the status page', async () => {
    // A breaker of this team, opened and reset, so every route answers with its full shape.
    const origin = 'https://api.example.com:443';
    await h.sql`insert into circuit_buckets (team_id, origin, bucket, requests, failures) values (${h.team.teamId}, ${origin}, now(), 12, 12)`;
    const opened = await applyEvent(h.sql, h.team.teamId, origin, { type: 'window', requests: 12, failures: 12 }, DEFAULT_BREAKER_SETTINGS);
    expect(opened.after.state).toBe('open');
    await h.sql`insert into circuit_hours (team_id, origin, hour, requests, failures, last_error, last_error_at)
      values (${h.team.teamId}, ${origin}, date_trunc('hour', now()), 12, 12, 'HTTP 503', now())`;
    await h.sql`insert into circuit_endpoints (team_id, origin, path, hour, requests, successes, last_status, last_outcome, last_attempt_at)
      values (${h.team.teamId}, ${origin}, '/hook', date_trunc('hour', now()), 12, 0, 503, 'http_error', now())`;
    expect((await call('GET', '/api/v1/circuits')).body.data.map((c: { origin: string }) => c.origin)).toContain(origin);
    const params = { origin: 'https://api.example.com' };
    expect((await call('GET', '/api/v1/circuits/:origin', { params })).body.origin).toBe(origin);
    expect((await call('GET', '/api/v1/circuits/:origin', { params: { origin: 'nope' } })).status).toBe(400);
    expect((await call('GET', '/api/v1/circuits/:origin', { params: { origin: 'https://other.example' } })).status).toBe(404);
    expect((await call('POST', '/api/v1/circuits/:origin/reset', { params })).body.state).toBe('closed');
    expect((await call('POST', '/api/v1/circuits/:origin/reset', { params: { origin: 'https://other.example' } })).status).toBe(404);
    const url = (await call('PUT', '/api/v1/status-page', { body: { public: true } })).body.public_url;
    expect(url).toMatch(/^\/status\//);
    const token = { params: { token: url.split('/').at(-1) }, key: null };
    expect((await call('GET', '/status/:token', token)).body).toContain(origin);
    expect((await call('PUT', '/api/v1/status-page', { body: { public: false } })).body.public_url).toBeNull();
    expect((await call('GET', '/status/:token', token)).status).toBe(404);
  });

  it('operator API', async () => {
    const team = await call('POST', '/admin/v1/teams', { body: { slug: 'docs-team', name: 'Docs', rate_limit: '10/1s' } });
    expect(team.status).toBe(201);
    expect((await call('POST', '/admin/v1/teams', { body: { slug: 'docs-team', name: 'Again' } })).status).toBe(409);
    expect((await call('GET', '/admin/v1/teams')).body.data.map((t: any) => t.slug)).toContain('docs-team');
    await call('GET', '/admin/v1/teams/:slug', { params: { slug: 'docs-team' } });
    expect((await call('GET', '/admin/v1/teams/:slug', { params: { slug: 'nobody' } })).status).toBe(404);
    expect(
      (await call('PATCH', '/admin/v1/teams/:slug', { params: { slug: 'docs-team' }, body: { rate_limit: null } })).body.rate_limit,
    ).toBeNull();
    expect((await call('PATCH', '/admin/v1/teams/:slug', { params: { slug: 'docs-team' }, body: {} })).status).toBe(400);
  });

  it('health and the document itself', async () => {
    expect((await call('GET', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await call('GET', '/readyz')).body.migrations).toBe('current');
    expect((await call('GET', '/openapi.json')).body).toEqual(JSON.parse(JSON.stringify(doc)));
  });
});

describe('/docs', () => {
  it('is one HTML page that lists every operation and schema, with nothing from elsewhere', async () => {
    const res = await app.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'; style-src 'sha256-/);
    const page = await res.text();
    for (const [p, item] of Object.entries<any>(doc.paths)) {
      for (const m of Object.keys(item)) expect(page).toContain(`<span class="m ${m}">${m.toUpperCase()}</span><code>${p}</code>`);
    }
    for (const name of Object.keys(doc.components.schemas)) expect(page).toContain(`id="schema-${name}"`);
    expect(page).toContain('Idempotency-Key');
    expect(page).not.toMatch(/<script|\ssrc=|(href|src)="https?:/i);
  });
});
