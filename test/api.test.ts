// The public API without a worker: enqueue, batch, idempotency, read, list, cancel, replay,
// and every refusal in docs/api.md §4 (problem+json, nothing stored).
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness } from './helpers/harness.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
const target = 'http://127.0.0.1:9/hook'; // never called: no worker runs in this file

beforeAll(async () => {
  h = await startHarness({ worker: false, maxBodyBytes: 4096 });
});
afterAll(async () => h?.close());

const countTasks = async () => Number((await h.sql`select count(*)::int as n from tasks`)[0]!.n);

describe('enqueue', () => {
  it('accepts a task, stores method, headers and body, and reads it back', async () => {
    const r = await h.api('POST', '/api/v1/queue', {
      url: target,
      method: 'PUT',
      headers: { 'X-Tenant': '42' },
      body: { user_id: '123' },
      retry: { max_retries: 5, min_backoff_ms: 10, max_backoff_ms: 1000 },
      timeout_ms: 5000,
      queue: 'emails',
      label: 'welcome-mail',
    });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ status: 'pending' });
    expect(Object.keys(r.body).sort()).toEqual(['created_at', 'id', 'run_at', 'status']);
    const t = await h.task(r.body.id);
    expect(t).toMatchObject({
      id: r.body.id,
      status: 'pending',
      url: target,
      method: 'PUT',
      headers: { 'x-tenant': '42' },
      body: { user_id: '123' },
      retry: { max_retries: 5, min_backoff_ms: 10, max_backoff_ms: 1000 },
      timeout_ms: 5000,
      queue: 'emails',
      label: 'welcome-mail',
      attempts: 0,
      last_attempt: null,
      finished_at: null,
    });
    expect(t.next_attempt_at).toBe(r.body.run_at);
  });

  it('keeps a string body as given and applies defaults', async () => {
    const id = await h.enqueue({ url: target, body: 'plain <b>text</b>' });
    const t = await h.task(id);
    expect(t).toMatchObject({
      method: 'POST',
      body: 'plain <b>text</b>',
      timeout_ms: 30000,
      retry: { max_retries: 8, min_backoff_ms: 10000, max_backoff_ms: 3600000 },
    });
  });

  it('delay and run_at make a scheduled task; a past run_at runs now', async () => {
    const before = Date.now();
    const d = await h.api('POST', '/api/v1/queue', { url: target, delay: '1h30m' });
    expect(d.status).toBe(202);
    expect(d.body.status).toBe('scheduled');
    const ahead = Date.parse(d.body.run_at) - before;
    expect(ahead).toBeGreaterThan(90 * 60_000 - 5000);
    expect(ahead).toBeLessThan(90 * 60_000 + 5000);

    const secs = await h.api('POST', '/api/v1/queue', { url: target, delay: 120 });
    expect(Date.parse(secs.body.run_at) - before).toBeGreaterThan(115_000);

    const at = new Date(Date.now() + 3_600_000);
    const offset = at.toISOString().replace('Z', '+00:00');
    const r = await h.api('POST', '/api/v1/queue', { url: target, run_at: offset });
    expect(r.body.status).toBe('scheduled');
    expect(Math.abs(Date.parse(r.body.run_at) - at.getTime())).toBeLessThan(2);

    const past = await h.api('POST', '/api/v1/queue', { url: target, run_at: '2020-01-01T00:00:00+01:00' });
    expect(past.status).toBe(202);
    expect(past.body.status).toBe('pending');
    expect(Date.parse(past.body.run_at)).toBeGreaterThan(before - 1000);
  });

  it('ids sort by creation time', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(await h.enqueue({ url: target }));
      await new Promise((r) => setTimeout(r, 2));
    }
    expect([...ids].sort()).toEqual(ids);
  });
});

describe('refusals: problem+json, nothing stored', () => {
  const bad: [string, unknown, string][] = [
    ['url that does not parse', { url: 'not a url' }, 'url'],
    ['missing url', { body: 'x' }, 'url'],
    ['ftp scheme', { url: 'ftp://example.com/x' }, 'url'],
    ['javascript scheme', { url: 'javascript:alert(1)' }, 'url'],
    ['userinfo in url', { url: 'https://user:pw@example.com/' }, 'url'],
    ['header with CR/LF', { url: target, headers: { 'x-a': 'b\r\nx-injected: 1' } }, 'headers.x-a'],
    ['header with NUL', { url: target, headers: { 'x-a': 'b\u0000' } }, 'headers.x-a'],
    ['host header', { url: target, headers: { Host: 'evil' } }, 'headers.Host'],
    ['content-length header', { url: target, headers: { 'content-length': '5' } }, 'headers.content-length'],
    ['connection header', { url: target, headers: { connection: 'close' } }, 'headers.connection'],
    ['transfer-encoding header', { url: target, headers: { 'transfer-encoding': 'chunked' } }, 'headers.transfer-encoding'],
    ['te header', { url: target, headers: { te: 'trailers' } }, 'headers.te'],
    ['upgrade header', { url: target, headers: { upgrade: 'websocket' } }, 'headers.upgrade'],
    ['keep-alive header', { url: target, headers: { 'keep-alive': '5' } }, 'headers.keep-alive'],
    ['trailer header', { url: target, headers: { trailer: 'x' } }, 'headers.trailer'],
    ['proxy-* header', { url: target, headers: { 'Proxy-Authorization': 'x' } }, 'headers.Proxy-Authorization'],
    ['webhook-* header', { url: target, headers: { 'webhook-signature': 'v1,x' } }, 'headers.webhook-signature'],
    ['x-posthorn-* header', { url: target, headers: { 'X-Posthorn-Task-Id': 'x' } }, 'headers.X-Posthorn-Task-Id'],
    ['invalid header name', { url: target, headers: { 'bad header': 'x' } }, 'headers.bad header'],
    ['65 headers', { url: target, headers: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`x-h${i}`, 'v'])) }, 'headers'],
    ['NUL in a body string', { url: target, body: 'a\u0000b' }, 'body'],
    ['NUL inside a JSON body', { url: target, body: { nested: ['ok', 'a\u0000'] } }, 'body.nested.1'],
    ['NUL in label', { url: target, label: 'x\u0000' }, 'label'],
    ['unknown field', { url: target, colour: 'blue' }, 'colour'],
    ['unknown retry field', { url: target, retry: { max_retries: 1, tries: 2 } }, 'retry.tries'],
    ['unknown method', { url: target, method: 'TRACE' }, 'method'],
    ['negative retries', { url: target, retry: { max_retries: -1 } }, 'retry.max_retries'],
    ['retries over 100', { url: target, retry: { max_retries: 101 } }, 'retry.max_retries'],
    ['min backoff over max', { url: target, retry: { min_backoff_ms: 5000, max_backoff_ms: 1000 } }, 'retry.min_backoff_ms'],
    ['timeout 0', { url: target, timeout_ms: 0 }, 'timeout_ms'],
    ['timeout over 15 min', { url: target, timeout_ms: 900_001 }, 'timeout_ms'],
    ['fractional timeout', { url: target, timeout_ms: 1.5 }, 'timeout_ms'],
    ['delay and run_at together', { url: target, delay: 5, run_at: '2030-01-01T00:00:00Z' }, 'run_at'],
    ['delay over 365 days', { url: target, delay: '366d' }, 'delay'],
    ['garbage delay', { url: target, delay: '5 minutes' }, 'delay'],
    ['negative delay', { url: target, delay: -5 }, 'delay'],
    ['run_at without offset', { url: target, run_at: '2030-01-01T00:00:00' }, 'run_at'],
    ['run_at over 365 days', { url: target, run_at: new Date(Date.now() + 400 * 86_400_000).toISOString() }, 'run_at'],
    ['body with GET', { url: target, method: 'GET', body: 'x' }, 'body'],
    ['callback_url not http', { url: target, callback_url: 'file:///etc/passwd' }, 'callback_url'],
    ['empty idempotency key', { url: target, idempotency_key: '' }, 'idempotency_key'],
    ['queue name with spaces', { url: target, queue: 'my queue' }, 'queue'],
    ['body as array of wrong root', [], ''],
  ];

  it.each(bad)('%s → 400 validation_failed naming the field', async (_name, payload, path) => {
    const before = await countTasks();
    const r = await h.api('POST', '/api/v1/queue', payload);
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.body).toMatchObject({ status: 400, code: 'validation_failed', title: expect.any(String), detail: expect.any(String) });
    expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    expect(await countTasks()).toBe(before);
  });

  it('malformed JSON → 400', async () => {
    const before = await countTasks();
    const r = await h.api('POST', '/api/v1/queue', undefined, { raw: '{"url": "http://x.test/",' });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('validation_failed');
    expect(await countTasks()).toBe(before);
  });

  it('a wrong content type → 415', async () => {
    const r = await h.api('POST', '/api/v1/queue', undefined, { raw: `{"url":"${target}"}`, headers: { 'content-type': 'text/plain' } });
    expect(r.status).toBe(415);
    expect(r.body.code).toBe('unsupported_media_type');
    const none = await h.app.request('/api/v1/queue', {
      method: 'POST',
      headers: { authorization: `Bearer ${h.team.keys.admin}` },
      body: `{"url":"${target}"}`,
    });
    expect(none.status).toBe(415);
  });

  it('an oversized request → 413, a task body over POSTHORN_MAX_BODY_BYTES → 413', async () => {
    const before = await countTasks();
    const huge = await h.api('POST', '/api/v1/queue', { url: target, body: 'x'.repeat(200_000) });
    expect(huge.status).toBe(413);
    expect(huge.body.code).toBe('payload_too_large');
    const over = await h.api('POST', '/api/v1/queue', { url: target, body: 'x'.repeat(4097) });
    expect(over.status).toBe(413);
    expect(over.body.code).toBe('payload_too_large');
    const json = await h.api('POST', '/api/v1/queue', { url: target, body: { s: 'x'.repeat(4090) } });
    expect(json.status).toBe(413);
    expect(await countTasks()).toBe(before);
    expect((await h.api('POST', '/api/v1/queue', { url: target, body: 'x'.repeat(4096) })).status).toBe(202);
  });

  it('413 over real HTTP both ways: a declared Content-Length and a chunked body', async () => {
    const server = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' });
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/queue`;
    const headers = { authorization: `Bearer ${h.team.keys.admin}`, 'content-type': 'application/json' };
    // 20 headers of 8000 characters: each field is valid, only the request as a whole is too large.
    const big = JSON.stringify({
      url: target,
      headers: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-h${i}`, 'v'.repeat(8000)])),
    });
    try {
      const before = await countTasks();
      const declared = await fetch(url, { method: 'POST', headers, body: big });
      expect(declared.status).toBe(413);
      expect((await declared.json()).code).toBe('payload_too_large');
      const stream = new ReadableStream({
        start(ctrl) {
          for (let i = 0; i < big.length; i += 16_384) ctrl.enqueue(new TextEncoder().encode(big.slice(i, i + 16_384)));
          ctrl.close();
        },
      });
      const chunked = await fetch(url, { method: 'POST', headers, body: stream, duplex: 'half' } as RequestInit);
      expect(chunked.status).toBe(413);
      expect(await countTasks()).toBe(before);
      const ok = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ url: target, body: 'small' }) });
      expect(ok.status).toBe(202);
    } finally {
      server.close();
    }
  });

  it('no key, a malformed key, an unknown key → 401; a read key cannot write → 403', async () => {
    for (const key of [null, 'nope', `ph_${'a'.repeat(40)}`]) {
      const r = await h.api('POST', '/api/v1/queue', { url: target }, { key });
      expect(r.status).toBe(401);
      expect(r.body.code).toBe('unauthorized');
    }
    const r = await h.api('POST', '/api/v1/queue', { url: target }, { key: h.team.keys.read });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('forbidden');
    expect((await h.api('GET', '/api/v1/tasks', undefined, { key: h.team.keys.read })).status).toBe(200);
  });

  it('bad list parameters and ids are 4xx, never 500', async () => {
    expect((await h.api('GET', '/api/v1/tasks?limit=201')).status).toBe(400);
    expect((await h.api('GET', '/api/v1/tasks?limit=abc')).status).toBe(400);
    expect((await h.api('GET', '/api/v1/tasks?status=done')).status).toBe(400);
    expect((await h.api('GET', '/api/v1/tasks?cursor=%00%ff')).status).toBe(400);
    expect((await h.api('GET', '/api/v1/tasks?bogus=1')).status).toBe(400);
    expect((await h.api('GET', '/api/v1/tasks/not-a-uuid')).status).toBe(404);
    expect((await h.api('GET', '/api/v1/tasks/00000000-0000-7000-8000-000000000000')).status).toBe(404);
    expect((await h.api('DELETE', '/api/v1/tasks/zzz')).status).toBe(404);
    expect((await h.api('POST', '/api/v1/tasks/zzz/replay')).status).toBe(404);
    expect((await h.api('GET', '/api/v1/nothing-here')).status).toBe(404);
  });
});

describe('batch', () => {
  it('stores up to 1000 tasks in order', async () => {
    const tasks = Array.from({ length: 1000 }, (_, i) => ({ url: `${target}?n=${i}`, label: `b${i}` }));
    const r = await h.api('POST', '/api/v1/queue/batch', { tasks });
    expect(r.status).toBe(202);
    expect(r.body.tasks).toHaveLength(1000);
    const t17 = await h.task(r.body.tasks[17].id);
    expect(t17.url).toBe(`${target}?n=17`);
    expect(r.body.tasks[999]).toMatchObject({ status: 'pending', run_at: expect.any(String) });
  });

  it('is atomic: one bad task refuses the batch and stores nothing, naming tasks.N.field', async () => {
    const before = await countTasks();
    const tasks = Array.from({ length: 20 }, () => ({ url: target }));
    tasks[17] = { url: 'gopher://x' };
    const r = await h.api('POST', '/api/v1/queue/batch', { tasks });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([{ path: 'tasks.17.url', message: expect.any(String) }]);
    expect(await countTasks()).toBe(before);
  });

  it('refuses more than 1000, none, and unknown fields', async () => {
    const many = Array.from({ length: 1001 }, () => ({ url: target }));
    expect((await h.api('POST', '/api/v1/queue/batch', { tasks: many })).status).toBe(400);
    expect((await h.api('POST', '/api/v1/queue/batch', { tasks: [] })).status).toBe(400);
    expect((await h.api('POST', '/api/v1/queue/batch', { tasks: [{ url: target }], extra: 1 })).status).toBe(400);
  });
});

describe('idempotency', () => {
  it('the same key replays the first response with 200; a different request conflicts', async () => {
    const task = { url: target, body: { order: 123 }, idempotency_key: 'order-123' };
    const first = await h.api('POST', '/api/v1/queue', task);
    expect(first.status).toBe(202);
    const again = await h.api('POST', '/api/v1/queue', task);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    const viaHeader = await h.api(
      'POST',
      '/api/v1/queue',
      { url: target, body: { order: 123 } },
      { headers: { 'Idempotency-Key': 'order-123' } },
    );
    expect(viaHeader.status).toBe(200);
    expect(viaHeader.body.id).toBe(first.body.id);

    const other = await h.api('POST', '/api/v1/queue', { ...task, body: { order: 124 } });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('idempotency_conflict');
    const n = await h.sql`select count(*)::int as n from tasks where idempotency_key = 'order-123'`;
    expect(n[0]!.n).toBe(1);
  });

  it('concurrent requests with one key make one task', async () => {
    const task = { url: target, idempotency_key: 'race-1' };
    const results = await Promise.all(Array.from({ length: 10 }, () => h.api('POST', '/api/v1/queue', task)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 202]);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
  });

  it('a key older than 24 h is free again', async () => {
    const first = await h.api('POST', '/api/v1/queue', { url: target, idempotency_key: 'old-key' });
    await h.sql`update idempotency_keys set expires_at = now() - interval '1 second' where key = 'old-key'`;
    const second = await h.api('POST', '/api/v1/queue', { url: target, body: 'different', idempotency_key: 'old-key' });
    expect(second.status).toBe(202);
    expect(second.body.id).not.toBe(first.body.id);
  });

  it('header and field that differ → 400', async () => {
    const r = await h.api('POST', '/api/v1/queue', { url: target, idempotency_key: 'a' }, { headers: { 'idempotency-key': 'b' } });
    expect(r.status).toBe(400);
  });
});

describe('list, cancel, replay', () => {
  it('lists newest first with cursor pagination and filters', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await h.enqueue({ url: target, label: 'page-test', queue: i % 2 ? 'odd' : 'even' }));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/api/v1/tasks?label=page-test&limit=3${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await h.api('GET', q);
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.data.map((t: { id: string }) => t.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const odd = await h.api('GET', '/api/v1/tasks?label=page-test&queue=odd');
    expect(odd.body.data).toHaveLength(3);
    const scheduled = await h.api('GET', '/api/v1/tasks?status=scheduled&limit=200');
    expect(scheduled.body.data.every((t: { status: string }) => t.status === 'scheduled')).toBe(true);
    expect(scheduled.body.data.length).toBeGreaterThan(0);
  });

  it('cancels a task before it runs; a finished task answers 409', async () => {
    const id = await h.enqueue({ url: target, delay: '10m' });
    const r = await h.api('DELETE', `/api/v1/tasks/${id}`);
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('canceled');
    expect(r.body.finished_at).not.toBeNull();
    const again = await h.api('DELETE', `/api/v1/tasks/${id}`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('conflict');
  });

  it('replays a canceled task with a fresh set of retries; pending tasks cannot be replayed', async () => {
    const id = await h.enqueue({ url: target, delay: '10m' });
    expect((await h.api('POST', `/api/v1/tasks/${id}/replay`)).status).toBe(409);
    await h.api('DELETE', `/api/v1/tasks/${id}`);
    const r = await h.api('POST', `/api/v1/tasks/${id}/replay`);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ id, status: 'pending' });
    expect((await h.task(id)).finished_at).toBeNull();
  });

  it('another team sees none of it: 404 for read, cancel, replay, attempts; empty list', async () => {
    const id = await h.enqueue({ url: target, delay: '10m' });
    const [other] = await h.sql`insert into teams (slug, name) values ('other', 'Other') returning id`;
    const { createKey } = await import('../shared/keys.ts');
    const key = (await createKey(h.sql, String(other!.id), 'x', 'admin')).key;
    for (const [m, p] of [
      ['GET', `/api/v1/tasks/${id}`],
      ['GET', `/api/v1/tasks/${id}/attempts`],
      ['DELETE', `/api/v1/tasks/${id}`],
      ['POST', `/api/v1/tasks/${id}/replay`],
    ] as const) {
      expect((await h.api(m, p, undefined, { key })).status).toBe(404);
    }
    expect((await h.api('GET', '/api/v1/tasks', undefined, { key })).body.data).toEqual([]);
    expect((await h.task(id)).status).toBe('scheduled');
  });
});

describe('health and contract', () => {
  it('/healthz, /readyz and /openapi.json answer', async () => {
    expect((await h.app.request('/healthz')).status).toBe(200);
    const ready = await h.app.request('/readyz');
    expect(ready.status).toBe(200);
    const doc = await (await h.app.request('/openapi.json')).json();
    expect(doc.openapi).toMatch(/^3\./);
    const input = doc.components.schemas.TaskInput;
    expect(input.required).toEqual(['url']);
    expect(input.properties.method.enum).toEqual(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']);
    expect(input.additionalProperties).toBe(false);
  });
});
