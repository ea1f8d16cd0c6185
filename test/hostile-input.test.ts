// The fixed corpus of a hostile-input run against the gateway (issue 8): each case was a 500,
// a 202 for a task that could never be sent, or a silent U+FFFD, and must be a 400 that names
// its field and stores nothing. Strings travel as JSON escapes ("\ud800"), as a client sends
// them: JSON.stringify writes a lone surrogate as its escape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../shared/input-rules.ts';
import { type ApiResponse, startHarness } from './helpers/harness.ts';
import { captureLogger } from './helpers/log.ts';

const OPERATOR = 'operator-token-for-hostile-input-tests';
const target = 'http://127.0.0.1:9/never-called'; // no worker runs in this file
const LONE = ['x\ud800', '\udc00y', 'a\ud83d'] as const; // high, low, a pair cut in half

let h: Awaited<ReturnType<typeof startHarness>>;
const log = captureLogger();

beforeAll(async () => {
  h = await startHarness({ operatorToken: OPERATOR, logger: log.logger });
});
afterAll(() => h?.close());

const countTasks = async () => Number((await h.sql`select count(*)::int as n from tasks where team_id = ${h.team.teamId}`)[0]!.n);

/** A 400 validation_failed whose errors name `path`; and the request stored nothing. */
async function refused(r: Promise<ApiResponse> | ApiResponse, path: string, what = path) {
  const res = await r;
  expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(400);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body.code, what).toBe('validation_failed');
  expect(
    res.body.errors.map((e: { path: string }) => e.path),
    what,
  ).toContain(path);
}

describe('1. strings that PostgreSQL refuses are a 400 naming the field, before the database', () => {
  it('lone surrogates and NUL in every string field of a task', async () => {
    const before = await countTasks();
    for (const bad of [...LONE, 'a\0b']) {
      await refused(h.api('POST', '/api/v1/queue', { url: `${target}/${bad}` }), 'url', `url ${JSON.stringify(bad)}`);
      await refused(h.api('POST', '/api/v1/queue', { url: target, label: bad }), 'label');
      await refused(h.api('POST', '/api/v1/queue', { url: target, queue: bad }), 'queue');
      await refused(h.api('POST', '/api/v1/queue', { url: target, body: bad }), 'body');
      await refused(h.api('POST', '/api/v1/queue', { url: target, body: { a: [1, { b: bad }] } }), 'body.a.1.b');
      await refused(h.api('POST', '/api/v1/queue', { url: target, body: { [`k${bad}`]: 1 } }), `body.k${bad}`);
      await refused(h.api('POST', '/api/v1/queue', { url: target, headers: { 'x-a': bad } }), 'headers.x-a');
      await refused(h.api('POST', '/api/v1/queue', { url: target, idempotency_key: bad }), 'idempotency_key');
      await refused(h.api('POST', '/api/v1/queue', { url: target, callback_url: `${target}?${bad}` }), 'callback_url');
      const tasks = Array.from({ length: 20 }, () => ({ url: target }));
      tasks[17] = { url: target, label: bad } as any;
      await refused(h.api('POST', '/api/v1/queue/batch', { tasks }), 'tasks.17.label');
    }
    expect(await countTasks()).toBe(before);
  });

  it('run_at outside 1970..9999 (year 0000 failed the whole group commit)', async () => {
    for (const at of ['0000-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '9999-12-31T23:00:00-05:00']) {
      await refused(h.api('POST', '/api/v1/queue', { url: target, run_at: at }), 'run_at', at);
      await refused(h.api('POST', '/api/v1/queue/batch', { tasks: [{ url: target }, { url: target, run_at: at }] }), 'tasks.1.run_at', at);
    }
    // The edges themselves: 1970 is in range (a past run_at runs now).
    expect((await h.api('POST', '/api/v1/queue', { url: target, run_at: '1970-01-01T00:00:00Z' })).status).toBe(202);
  });

  it('schedules: name, label and notify on POST and PATCH', async () => {
    const base = { name: 'nightly', cron: '0 3 * * *', url: target };
    for (const bad of [...LONE, 'a\0b']) {
      await refused(h.api('POST', '/api/v1/schedules', { ...base, name: `n${bad}` }), 'name');
      await refused(h.api('POST', '/api/v1/schedules', { ...base, label: bad }), 'label');
      await refused(h.api('POST', '/api/v1/schedules', { ...base, notify: { email: bad } }), 'notify.email');
    }
    const created = await h.api('POST', '/api/v1/schedules', base);
    expect(created.status).toBe(201);
    const path = `/api/v1/schedules/${created.body.id}`;
    for (const bad of LONE) {
      await refused(h.api('PATCH', path, { name: bad }), 'name');
      await refused(h.api('PATCH', path, { label: bad }), 'label');
      await refused(h.api('PATCH', path, { notify: { webhook: bad } }), 'notify.webhook');
    }
    // Nothing changed, and nothing was stored as U+FFFD.
    const now = await h.api('GET', path);
    expect(now.body).toMatchObject({ name: 'nightly', notify: null });
    expect(JSON.stringify(now.body)).not.toContain('\ufffd');
  });

  it('names of keys and teams', async () => {
    for (const bad of LONE) {
      await refused(h.api('POST', '/api/v1/keys', { name: bad, role: 'read' }), 'name');
      const op = { key: null, headers: { authorization: `Bearer ${OPERATOR}` } };
      await refused(h.api('POST', '/admin/v1/teams', { slug: 'ok-slug', name: bad }, op), 'name');
      await refused(h.api('PATCH', `/admin/v1/teams/${h.team.slug}`, { name: bad }, op), 'name');
    }
    const names = await h.sql`select name from api_keys union all select name from teams`;
    expect(names.some((r) => String(r.name).includes('\ufffd'))).toBe(false);
  });
});

describe('2. deep JSON', () => {
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  it('5,000 levels is a 400, not a stack overflow', async () => {
    for (const depth of [4000, 5000, 100_000]) {
      const r = await h.api('POST', '/api/v1/queue', undefined, { raw: `{"url":"${target}","body":${nested(depth)}}` });
      expect(r.status, `depth ${depth}`).toBe(400);
      expect(r.body.detail).toMatch(/at most 64 levels/);
    }
    const r = await h.api('POST', '/api/v1/queue/batch', undefined, { raw: `{"tasks":${nested(10_000)}}` });
    expect(r.status).toBe(400);
  });

  it('64 levels are accepted, 65 are not; brackets inside strings do not count', async () => {
    // The task object is level 1, so its body may nest 63 more.
    const at = (depth: number) => `{"url":"${target}","body":${nested(depth - 1)}}`;
    expect((await h.api('POST', '/api/v1/queue', undefined, { raw: at(MAX_JSON_DEPTH) })).status).toBe(202);
    expect((await h.api('POST', '/api/v1/queue', undefined, { raw: at(MAX_JSON_DEPTH + 1) })).status).toBe(400);
    const r = await h.api('POST', '/api/v1/queue', { url: target, body: `${'['.repeat(500)}\\"{` });
    expect(r.status).toBe(202);
  });
});

describe('3. query parameters follow the body rules', () => {
  it('NUL in a list filter is a 400 naming the parameter', async () => {
    for (const q of ['label=a%00b', 'queue=a%00b', 'cursor=%00', 'status=%00']) {
      const name = q.split('=')[0]!;
      await refused(h.api('GET', `/api/v1/tasks?${q}`), name, q);
    }
    expect((await h.api('GET', '/api/v1/tasks?label=plain')).status).toBe(200);
  });
});

describe('4. header values that can never be sent', () => {
  it('non-ASCII and control characters are refused at enqueue', async () => {
    for (const v of ['ключ☃', 'a\x01b', 'a\x7fb', 'é', 'a\r\nx-b: c']) {
      await refused(h.api('POST', '/api/v1/queue', { url: target, headers: { 'x-a': v } }), 'headers.x-a', JSON.stringify(v));
    }
    const ok = await h.api('POST', '/api/v1/queue', { url: target, headers: { 'x-a': 'visible ASCII, space\tand tab ~' } });
    expect(ok.status).toBe(202);
  });
});

describe('6. rate limits are bounded', () => {
  const op = { key: null, headers: { authorization: `Bearer ${OPERATOR}` } };
  it('absurd windows and counts are a 400 on the operator API; the bounds themselves pass', async () => {
    for (const limit of ['1/99999999999999999h', '1000001/1s', '0/1s', '1/999ms', '1/2h', '1/61m', `${'9'.repeat(30)}/1s`]) {
      await refused(h.api('POST', '/admin/v1/teams', { slug: 'bounded', name: 'b', rate_limit: limit }, op), 'rate_limit', limit);
      await refused(h.api('PATCH', `/admin/v1/teams/${h.team.slug}`, { rate_limit: limit }, op), 'rate_limit', limit);
    }
    for (const limit of ['1000000/1h', '1/1s', '1/1000ms', '1/60m']) {
      const r = await h.api('PATCH', `/admin/v1/teams/${h.team.slug}`, { rate_limit: limit }, op);
      expect(r.status, limit).toBe(200);
    }
    expect((await h.api('PATCH', `/admin/v1/teams/${h.team.slug}`, { rate_limit: null }, op)).status).toBe(200);
  });
});

describe('9. a known path with a method it does not serve', () => {
  it('is 405 method_not_allowed with Allow, everywhere in the app', async () => {
    const id = '01890000-0000-7000-8000-000000000000';
    const cases: [string, string, string][] = [
      ['PUT', '/api/v1/queue', 'POST'],
      ['GET', '/api/v1/queue/batch', 'POST'],
      ['POST', `/api/v1/tasks/${id}`, 'DELETE, GET, HEAD'],
      ['PUT', '/api/v1/tasks', 'GET, HEAD'],
      ['GET', `/api/v1/tasks/${id}/replay`, 'POST'],
      ['PUT', '/api/v1/schedules', 'GET, HEAD, POST'],
      ['DELETE', '/healthz', 'GET, HEAD'],
      ['POST', '/openapi.json', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await h.api(method, path);
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.body.code).toBe('method_not_allowed');
      expect(r.headers.get('allow'), `${method} ${path}`).toBe(allow);
    }
    const op = { key: null, headers: { authorization: `Bearer ${OPERATOR}` } };
    const r = await h.api('DELETE', '/admin/v1/teams', undefined, op);
    expect([r.status, r.headers.get('allow')]).toEqual([405, 'GET, HEAD, POST']);
    // Unknown paths stay 404, and served methods are served.
    expect((await h.api('PUT', '/api/v1/nothing-here')).status).toBe(404);
    expect((await h.api('GET', '/nothing')).status).toBe(404);
    expect((await h.api('GET', '/healthz')).status).toBe(200);
  });
});

describe('5. the error paths log no part of a task', () => {
  const secret = 'Bearer target-secret-9f8e7d6c5b4a';
  const withHarness = async (poison: (t: any) => any, run: (hh: Awaited<ReturnType<typeof startHarness>>) => Promise<void>) => {
    const hh = await startHarness({
      logger: log.logger,
      wrapBatcher: (inner) => ({ ...inner, enqueue: (t, s) => inner.enqueue(poison(t), s) }),
    });
    try {
      await run(hh);
    } finally {
      await hh.close();
    }
  };

  it('a value PostgreSQL refuses is a 400, logged by code: the error quotes the row it was parsing', async () => {
    // Past validation: jsonb refuses the lone surrogate escape, and its error's "where" quotes
    // the JSON just before it: here the task's authorization header.
    await withHarness(
      (t) => ({ ...t, headers: { ...t.headers, 'x-z': 'x\ud800' } }),
      async (hh) => {
        const r = await hh.api('POST', '/api/v1/queue', { url: target, headers: { authorization: secret }, body: { card: secret } });
        expect(r.status).toBe(400);
      },
    );
    expect(log.text()).not.toContain('target-secret');
    expect(log.records().some((l) => l.err?.type === 'PostgresError' && l.err?.code === '22P02')).toBe(true);
    await withHarness(
      (t) => ({ ...t, run_at: '0000-01-01T00:00:00Z' }),
      async (hh) => expect((await hh.api('POST', '/api/v1/queue', { url: target, headers: { authorization: secret } })).status).toBe(400),
    );
    expect(log.records().some((l) => l.err?.code === '22008')).toBe(true);
    expect(log.text()).not.toContain('target-secret');
  });

  it('any other database error is the 500 path, logged by code and constraint only', async () => {
    // A team that does not exist: the INSERT fails on its foreign key.
    await withHarness(
      (t) => ({ ...t, team_id: '999999999' }),
      async (hh) => {
        const r = await hh.api('POST', '/api/v1/queue', { url: target, headers: { authorization: secret }, body: { card: secret } });
        expect(r.status).toBe(500);
      },
    );
    const line = log.records().find((l) => l.msg === 'unhandled error' && l.err?.code === '23503');
    expect(line?.err).toEqual({
      type: 'PostgresError',
      code: '23503',
      severity: 'ERROR',
      constraint: expect.any(String),
      table: 'tasks',
      routine: expect.any(String),
    });
    expect(log.text()).not.toContain('target-secret');
  });
});
