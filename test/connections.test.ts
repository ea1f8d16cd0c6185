// Connections and success rules (docs/connections.md) with an in-process worker: the API never
// shows a secret, enqueue refuses an unknown connection naming auth.connection, bearer and basic
// reach the target, OAuth2 tokens come from a real token endpoint on 127.0.0.1 (cached, renewed
// near expiry, renewed once on a 401 within the attempt, auth_error and a retry when the
// endpoint fails), a deleted connection fails as auth_error, the tables hold no secret in
// clear, and success rules change the outcome while the attempt still records the response.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretBox, parseSecretKey, secretKeyId } from '../shared/secret-box.ts';
import { startHarness } from './helpers/harness.ts';
import { captureLogger } from './helpers/log.ts';
import { waitFor } from './helpers/net.ts';
import { startOAuthServer } from './helpers/oauth.ts';
import { startSink } from './helpers/sink.ts';
import { uiClient } from './helpers/ui.ts';

const KEY = randomBytes(32).toString('base64');
const CLIENT_SECRET = `cs-${randomBytes(16).toString('hex')}`;
const BEARER = `bt-${randomBytes(16).toString('hex')}`;
const PASSWORD = `pw-${randomBytes(16).toString('hex')}`;

let h: Awaited<ReturnType<typeof startHarness>>;
let oauth: Awaited<ReturnType<typeof startOAuthServer>>;
let sink: Awaited<ReturnType<typeof startSink>>;
const log = captureLogger('debug');

beforeAll(async () => {
  // Local targets are allowed the way an operator would: the allowlist, not "allow private".
  h = await startHarness({
    worker: { workerConcurrency: 16 },
    secretKey: KEY,
    allowPrivate: false,
    allowlist: ['127.0.0.1'],
    logger: log.logger,
  });
  oauth = await startOAuthServer({ clientId: 'posthorn-test', clientSecret: CLIENT_SECRET });
  sink = await startSink((req) => {
    if (req.path.startsWith('/json-false')) return { status: 200, body: '{"ok":false}' };
    if (req.path.startsWith('/json-true')) return { status: 200, body: '{"ok":true}' };
    if (req.path.startsWith('/missing')) return { status: 404, body: 'nope' };
    return { status: 200, body: 'ok' };
  });
});
afterAll(async () => {
  await h?.close();
  await oauth?.close();
  await sink?.close();
});

const fast = { max_retries: 3, min_backoff_ms: 50, max_backoff_ms: 100 };
const finished = (id: string, timeoutMs = 20_000) =>
  waitFor(
    async () => {
      const t = await h.task(id);
      return ['succeeded', 'failed', 'canceled'].includes(t.status) ? t : null;
    },
    { timeoutMs, what: `task ${id} to finish` },
  );
const attempts = async (id: string) => (await h.api('GET', `/api/v1/tasks/${id}/attempts`)).body.data as Record<string, any>[];

async function createOAuth(name: string) {
  const r = await h.api('POST', '/api/v1/connections', {
    name,
    type: 'oauth2_client_credentials',
    token_url: oauth.tokenUrl,
    client_id: 'posthorn-test',
    client_secret: CLIENT_SECRET,
    scope: 'read write',
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
}

describe('secret box', () => {
  it('opens what it sealed only with the same row, and old keys only as previous keys', () => {
    const k1 = parseSecretKey(randomBytes(32).toString('base64')) as Buffer;
    const k2 = parseSecretKey(randomBytes(32).toString('base64')) as Buffer;
    const sealed = createSecretBox(k1).seal('s3cret', 'connection:1:a');
    expect(sealed).not.toContain('s3cret');
    expect(sealed.startsWith(`phs1.${secretKeyId(k1)}.`)).toBe(true);
    expect(createSecretBox(k1).open(sealed, 'connection:1:a')).toBe('s3cret');
    expect(() => createSecretBox(k1).open(sealed, 'connection:2:a')).toThrow(/does not open/);
    expect(() => createSecretBox(k2).open(sealed, 'connection:1:a')).toThrow(/POSTHORN_SECRET_KEY_PREVIOUS/);
    expect(createSecretBox(k2, [k1]).open(sealed, 'connection:1:a')).toBe('s3cret');
    expect(typeof parseSecretKey('c2hvcnQ=')).toBe('string');
  });
});

describe('connections API', () => {
  it('stores each type and never returns a secret', async () => {
    const o = await createOAuth('crm');
    const b = await h.api('POST', '/api/v1/connections', { name: 'bearer-api', type: 'bearer', token: BEARER });
    const basic = await h.api('POST', '/api/v1/connections', { name: 'basic-api', type: 'basic', username: 'u', password: PASSWORD });
    expect(b.status).toBe(201);
    expect(basic.status).toBe(201);
    expect(o).toMatchObject({ name: 'crm', type: 'oauth2_client_credentials', token_url: oauth.tokenUrl, client_id: 'posthorn-test' });
    const list = await h.api('GET', '/api/v1/connections');
    const one = await h.api('GET', '/api/v1/connections/crm');
    const everything = JSON.stringify([o, b.body, basic.body, list.body, one.body]);
    for (const secret of [CLIENT_SECRET, BEARER, PASSWORD]) expect(everything).not.toContain(secret);
    expect(list.body.data.map((c: any) => c.name)).toEqual(['basic-api', 'bearer-api', 'crm']);
    expect(one.body.id).toBe(o.id);
  });

  it('refuses bad input, taken names, fields of another type and forbidden token URLs', async () => {
    const dup = await h.api('POST', '/api/v1/connections', { name: 'crm', type: 'bearer', token: 'x' });
    expect(dup.status).toBe(409);
    const bad = await h.api('POST', '/api/v1/connections', { name: 'x', type: 'bearer', token: 'a\nb' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe('token');
    const unknownType = await h.api('POST', '/api/v1/connections', { name: 'x', type: 'api_key', token: 'a' });
    expect(unknownType.status).toBe(400);
    const forbidden = await h.api('POST', '/api/v1/connections', {
      name: 'meta',
      type: 'oauth2_client_credentials',
      token_url: 'http://169.254.169.254/token',
      client_id: 'a',
      client_secret: 'b',
    });
    expect(forbidden.status).toBe(400);
    expect(forbidden.body.code).toBe('target_not_allowed');
    expect(forbidden.body.errors[0].path).toBe('token_url');
    const foreign = await h.api('PATCH', '/api/v1/connections/bearer-api', { client_secret: 'z' });
    expect(foreign.status).toBe(400);
    const write = await h.api('GET', '/api/v1/connections', undefined, { key: h.team.keys.write });
    expect(write.status).toBe(403);
  });

  it('PATCH changes a secret without showing it; DELETE is 204 then 404', async () => {
    await h.api('POST', '/api/v1/connections', { name: 'tmp', type: 'basic', username: 'a', password: 'old-password' });
    const p = await h.api('PATCH', '/api/v1/connections/tmp', { password: 'new-password-123', username: 'b' });
    expect(p.status).toBe(200);
    expect(p.body.username).toBe('b');
    expect(JSON.stringify(p.body)).not.toContain('new-password-123');
    expect((await h.api('DELETE', '/api/v1/connections/tmp')).status).toBe(204);
    expect((await h.api('DELETE', '/api/v1/connections/tmp')).status).toBe(404);
  });

  it('without POSTHORN_SECRET_KEY, connections are refused with a clear error', async () => {
    const bare = await startHarness();
    try {
      const r = await bare.api('POST', '/api/v1/connections', { name: 'x', type: 'bearer', token: 'abc' });
      expect(r.status).toBe(409);
      expect(r.body.detail).toMatch(/POSTHORN_SECRET_KEY/);
    } finally {
      await bare.close();
    }
  });

  it('enqueue refuses an unknown connection with 400 naming auth.connection', async () => {
    const one = await h.api('POST', '/api/v1/queue', { url: `${sink.url}/x`, auth: { connection: 'nope' } });
    expect(one.status).toBe(400);
    expect(one.body.errors).toEqual([{ path: 'auth.connection', message: expect.stringContaining('nope') }]);
    const batch = await h.api('POST', '/api/v1/queue/batch', {
      tasks: [
        { url: `${sink.url}/x`, auth: { connection: 'crm' } },
        { url: `${sink.url}/x`, auth: { connection: 'nope' } },
      ],
    });
    expect(batch.status).toBe(400);
    expect(batch.body.errors.map((e: any) => e.path)).toEqual(['tasks.1.auth.connection']);
    const sched = await h.api('POST', '/api/v1/schedules', {
      name: 's',
      cron: '0 0 * * *',
      url: `${sink.url}/x`,
      auth: { connection: 'nope' },
    });
    expect(sched.status).toBe(400);
    expect(sched.body.errors[0].path).toBe('auth.connection');
    const both = await h.api('POST', '/api/v1/queue', {
      url: `${sink.url}/x`,
      auth: { connection: 'crm' },
      headers: { Authorization: 'x' },
    });
    expect(both.status).toBe(400);
    const [{ n }] = await h.sql`select count(*)::int as n from tasks where url = ${`${sink.url}/x`}`;
    expect(n).toBe(0);
    const okSched = await h.api('POST', '/api/v1/schedules', {
      name: 's',
      cron: '0 0 * * *',
      url: `${sink.url}/x`,
      auth: { connection: 'crm' },
    });
    expect(okSched.status).toBe(201);
    expect(okSched.body.auth).toEqual({ connection: 'crm' });
  });
});

describe('delivery with connections', () => {
  it('bearer and basic connections reach the target as authorization', async () => {
    const b = await h.enqueue({ url: `${sink.url}/bearer`, auth: { connection: 'bearer-api' } });
    const c = await h.enqueue({ url: `${sink.url}/basic`, auth: { connection: 'basic-api' } });
    expect((await finished(b)).status).toBe('succeeded');
    expect((await finished(c)).status).toBe('succeeded');
    expect(sink.received.find((r) => r.path === '/bearer')!.headers.authorization).toBe(`Bearer ${BEARER}`);
    expect(sink.received.find((r) => r.path === '/basic')!.headers.authorization).toBe(
      `Basic ${Buffer.from(`u:${PASSWORD}`).toString('base64')}`,
    );
    expect((await h.task(b)).auth).toEqual({ connection: 'bearer-api' });
  });

  it('OAuth2: 20 tasks make one token request, and the token is cached sealed', async () => {
    const before = oauth.state.tokenRequests;
    const r = await h.api('POST', '/api/v1/queue/batch', {
      tasks: Array.from({ length: 20 }, (_, i) => ({ url: `${oauth.url}/api/${i}`, auth: { connection: 'crm' } })),
    });
    expect(r.status).toBe(202);
    for (const t of r.body.tasks) expect((await finished(t.id)).status).toBe('succeeded');
    expect(oauth.state.tokenRequests - before).toBe(1);
    const form = oauth.state.tokenForms.at(-1)!;
    expect(form.get('grant_type')).toBe('client_credentials');
    expect(form.get('scope')).toBe('read write');
    const conn = (await h.api('GET', '/api/v1/connections/crm')).body;
    expect(Date.parse(conn.token_cached_until)).toBeGreaterThan(Date.now() + 3000 * 1000);
  });

  it('a token near its expiry is replaced: expires_in 61 s is used for 1 s', async () => {
    oauth.state.expiresIn = 61;
    try {
      expect((await h.api('PATCH', '/api/v1/connections/crm', { scope: 'read' })).status).toBe(200); // drops the cached token
      // ...and the worker's own memory of it lasts 2 s (MEMORY_TTL_MS in worker/connections/credentials.ts).
      await new Promise((r) => setTimeout(r, 2100));
      const first = await h.enqueue({ url: `${oauth.url}/api/short-1`, auth: { connection: 'crm' } });
      expect((await finished(first)).status).toBe('succeeded');
      const after1 = oauth.state.tokenRequests;
      await waitFor(async () => {
        const [row] = await h.sql`select usable_until < now() as past from connection_tokens`;
        return row?.past === true;
      });
      await new Promise((r) => setTimeout(r, 2100)); // the worker's own 2 s memory of it
      const second = await h.enqueue({ url: `${oauth.url}/api/short-2`, auth: { connection: 'crm' } });
      expect((await finished(second)).status).toBe('succeeded');
      expect(oauth.state.tokenRequests).toBe(after1 + 1);
      expect(oauth.state.accepted.at(-1)).not.toBe(oauth.state.accepted.at(-2));
    } finally {
      oauth.state.expiresIn = 3600;
    }
  });

  it('a 401 renews the token once and repeats the request within the same attempt', async () => {
    const warm = await h.enqueue({ url: `${oauth.url}/api/warm`, auth: { connection: 'crm' } });
    await finished(warm);
    oauth.revokeAll();
    const tokensBefore = oauth.state.tokenRequests;
    const rejectedBefore = oauth.state.apiRejected;
    const id = await h.enqueue({ url: `${oauth.url}/api/after-revoke`, auth: { connection: 'crm' }, retry: { max_retries: 0 } });
    const t = await finished(id);
    expect(t.status).toBe('succeeded');
    expect(t.attempts).toBe(1);
    expect(oauth.state.tokenRequests).toBe(tokensBefore + 1);
    expect(oauth.state.apiRejected).toBe(rejectedBefore + 1);
  });

  it('a 401 whose renewal fails is auth_error with the token endpoint status', async () => {
    const warm = await h.enqueue({ url: `${oauth.url}/api/warm-2`, auth: { connection: 'crm' } });
    expect((await finished(warm)).status).toBe('succeeded');
    oauth.revokeAll();
    oauth.state.failWith = 503;
    try {
      const id = await h.enqueue({ url: `${oauth.url}/api/renew-fails`, auth: { connection: 'crm' }, retry: { max_retries: 0 } });
      expect((await finished(id)).status).toBe('failed');
      expect((await attempts(id))[0]).toMatchObject({ outcome: 'auth_error', status_code: 503 });
    } finally {
      oauth.state.failWith = null;
    }
  });

  it('a failing token endpoint gives auth_error with its status, and a retry that succeeds', async () => {
    await createOAuth('crm-flaky');
    oauth.state.failWith = 500;
    const id = await h.enqueue({
      url: `${oauth.url}/api/flaky`,
      auth: { connection: 'crm-flaky' },
      retry: { ...fast, min_backoff_ms: 1000, max_backoff_ms: 1000 },
    });
    await waitFor(async () => (await attempts(id)).length >= 1);
    oauth.state.failWith = null;
    const t = await finished(id);
    expect(t.status).toBe('succeeded');
    const a = await attempts(id);
    expect(a[0]).toMatchObject({
      outcome: 'auth_error',
      status_code: 500,
      error: expect.stringMatching(/token endpoint answered HTTP 500/),
    });
    expect(a.at(-1)).toMatchObject({ outcome: 'success', status_code: 200 });
  });

  it('a connection deleted after enqueue fails the attempt as auth_error, retried per the policy', async () => {
    await h.api('POST', '/api/v1/connections', { name: 'doomed', type: 'bearer', token: 'x-token' });
    const id = await h.enqueue({
      url: `${sink.url}/doomed`,
      auth: { connection: 'doomed' },
      delay: 1,
      retry: { max_retries: 1, min_backoff_ms: 50, max_backoff_ms: 50 },
    });
    expect((await h.api('DELETE', '/api/v1/connections/doomed')).status).toBe(204);
    const t = await finished(id);
    expect(t.status).toBe('failed');
    const a = await attempts(id);
    expect(a).toHaveLength(2);
    for (const x of a)
      expect(x).toMatchObject({
        outcome: 'auth_error',
        status_code: null,
        error: expect.stringContaining('connection "doomed" does not exist'),
      });
    expect(sink.received.some((r) => r.path === '/doomed')).toBe(false);
  });

  it('the database holds no secret and no token in clear, and the log none either', async () => {
    const dump = JSON.stringify([
      await h.sql`select * from connections`,
      await h.sql`select * from connection_tokens`,
      await h.sql`select * from task_attempts`,
      await h.sql`select * from tasks`,
    ]);
    expect(oauth.tokens().length).toBeGreaterThan(2);
    for (const secret of [CLIENT_SECRET, BEARER, PASSWORD, ...oauth.tokens()]) expect(dump).not.toContain(secret);
    expect(dump).toContain('phs1.');
    for (const secret of [CLIENT_SECRET, BEARER, PASSWORD, ...oauth.tokens()]) expect(log.text()).not.toContain(secret);
  });
});

describe('success rules', () => {
  it('body_contains and status lists change the outcome; the attempt keeps the response', async () => {
    const rule = { body_contains: '"ok":true' };
    const no = await h.enqueue({
      url: `${sink.url}/json-false`,
      success: rule,
      retry: { max_retries: 1, min_backoff_ms: 20, max_backoff_ms: 20 },
    });
    const yes = await h.enqueue({ url: `${sink.url}/json-true`, success: rule });
    const status = await h.enqueue({ url: `${sink.url}/plain`, success: { status: [201, 204] }, retry: { max_retries: 0 } });
    const klass = await h.enqueue({ url: `${sink.url}/plain2`, success: { status: '2xx' } });
    const missing = await h.enqueue({ url: `${sink.url}/missing`, success: { status: [200] }, retry: fast });
    const found = await h.enqueue({ url: `${sink.url}/missing`, success: { status: [404] } });
    expect((await finished(yes)).status).toBe('succeeded');
    expect((await finished(klass)).status).toBe('succeeded');
    expect((await finished(found)).status).toBe('succeeded');
    const n = await finished(no);
    expect(n.status).toBe('failed');
    const na = await attempts(no);
    // A 200 outside the rule is retried (only non-retryable 4xx are not).
    expect(na).toHaveLength(2);
    expect(na[0]).toMatchObject({
      outcome: 'http_error',
      status_code: 200,
      response_body: '{"ok":false}',
      error: expect.stringMatching(/body_contains/),
    });
    expect((await attempts(status))[0]).toMatchObject({
      outcome: 'http_error',
      status_code: 200,
      error: expect.stringMatching(/201, 204/),
    });
    expect((await finished(missing)).status).toBe('failed');
    expect(await attempts(missing)).toHaveLength(1); // 404 is not retried
    expect((await h.task(no)).success).toEqual(rule);
  });

  it('refuses empty and malformed rules', async () => {
    for (const success of [{}, { status: [] }, { status: '6xx' }, { status: [700] }, { body_contains: '' }, { status: '2xx', extra: 1 }]) {
      const r = await h.api('POST', '/api/v1/queue', { url: `${sink.url}/x`, success });
      expect(r.status, JSON.stringify(success)).toBe(400);
    }
  });
});

describe('web UI', () => {
  it('lists connections without any secret, for admins only, and deletes one', async () => {
    await h.api('POST', '/api/v1/connections', { name: 'ui-doomed', type: 'bearer', token: 'ui-secret-token-123' });
    const ui = uiClient(h.app);
    expect((await ui.signIn(h.team.keys.admin)).status).toBe(303);
    const page = await ui.get('/ui/connections');
    expect(page.status).toBe(200);
    expect(page.text).toContain('crm');
    expect(page.text).toContain(oauth.tokenUrl);
    for (const secret of [CLIENT_SECRET, BEARER, PASSWORD, 'ui-secret-token-123', ...oauth.tokens()])
      expect(page.text).not.toContain(secret);
    const id = (await h.api('GET', '/api/v1/connections/ui-doomed')).body.id;
    const del = await ui.post(`/ui/connections/${id}/delete`, { _csrf: await ui.csrf('/ui/connections') });
    expect(del.status).toBe(303);
    expect((await h.api('GET', '/api/v1/connections/ui-doomed')).status).toBe(404);
    const reader = uiClient(h.app);
    await reader.signIn(h.team.keys.read);
    expect((await reader.get('/ui/connections')).text).not.toContain('crm-flaky');
  });
});
