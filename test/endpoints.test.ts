// Inbound endpoints end to end: the API, /in/<slug> without a key, forwarding through a real
// worker to a real HTTP server (method, exact body bytes, content type, headers under
// x-posthorn-forwarded-*), events with their task, replay, refusals that change nothing.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as shapes from '../gateway/api/responses.ts';
import { pruneEndpointEvents } from '../worker/maintenance/event-pruner.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';

type Got = { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer };

let h: Awaited<ReturnType<typeof startHarness>>;
const got: Got[] = [];
let target: { url: string; close: () => Promise<void> };

async function startRawTarget() {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    got.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
    res.writeHead(req.url!.startsWith('/fail') ? 500 : 200).end('ok');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((ok) => (server.closeAllConnections(), server.close(() => ok()))),
  };
}

beforeAll(async () => {
  h = await startHarness({ worker: { metricsPort: 0 } });
  target = await startRawTarget();
});
afterAll(async () => {
  await h?.close();
  await target?.close();
});

const create = (body: Record<string, unknown>) => h.api('POST', '/api/v1/endpoints', body);
const inbound = (slug: string, init: RequestInit & { query?: string } = {}) =>
  h.app.request(`/in/${slug}${init.query ?? ''}`, { method: 'POST', ...init });
const count = async (table: string) => (await h.sql`select count(*)::int as n from ${h.sql(table)}`)[0]!.n as number;

describe('the API', () => {
  it('creates an endpoint with an unguessable slug and its inbound_url; lists, reads, patches, deletes', async () => {
    const r = await create({ name: 'stripe', forward_url: `${target.url}/stripe`, retry: { max_retries: 2 }, queue: 'hooks' });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ name: 'stripe', enabled: true, queue: 'hooks', forward_url: `${target.url}/stripe` });
    expect(r.body.slug).toMatch(/^[A-Za-z0-9]{24}$/);
    expect(r.body.inbound_url).toBe(`/in/${r.body.slug}`);
    expect(r.body.retry).toEqual({ max_retries: 2, min_backoff_ms: 10_000, max_backoff_ms: 3_600_000 });
    expect(shapes.endpointSchema.parse(r.body)).toEqual(r.body); // exactly the documented fields
    const id = r.body.id;
    expect((await h.api('GET', '/api/v1/endpoints')).body.data.map((e: { id: string }) => e.id)).toContain(id);
    expect((await h.api('GET', `/api/v1/endpoints/${id}`)).body.name).toBe('stripe');
    const p = await h.api('PATCH', `/api/v1/endpoints/${id}`, { enabled: false, queue: null });
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ enabled: false, queue: null, slug: r.body.slug });
    expect((await h.api('DELETE', `/api/v1/endpoints/${id}`)).status).toBe(204);
    expect((await h.api('GET', `/api/v1/endpoints/${id}`)).status).toBe(404);
  });

  it('refuses bad input with a 400 naming the field, a taken name with 409, a read key with 403; nothing is stored', async () => {
    const before = await count('endpoints');
    for (const [body, path] of [
      [{ name: 'x', forward_url: 'ftp://x' }, 'forward_url'],
      [{ name: 'x', forward_url: target.url, colour: 1 }, 'colour'],
      [{ forward_url: target.url }, 'name'],
      [{ name: 'x', forward_url: target.url, queue: 'no spaces' }, 'queue'],
      [{ name: 'x', forward_url: target.url, retry: { max_retries: -1 } }, 'retry.max_retries'],
    ] as const) {
      const r = await create(body);
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    expect((await create({ name: 'dup', forward_url: target.url })).status).toBe(201);
    const dup = await create({ name: 'dup', forward_url: target.url });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('conflict');
    expect((await h.api('POST', '/api/v1/endpoints', { name: 'r', forward_url: target.url }, { key: h.team.keys.read })).status).toBe(403);
    expect(await count('endpoints')).toBe(before + 1);
  });
});

describe('/in/<slug>', () => {
  it('stores a binary POST, answers 202, and forwards method, exact bytes, content type, query and headers', async () => {
    const ep = (await create({ name: 'bin', forward_url: `${target.url}/bin?fixed=1` })).body;
    const bytes = Buffer.from([0xef, 0xbb, 0xbf, 0x00, 0xff, 0xfe, 0x80, 0x41, 0x0a, 0xc3]); // BOM, NUL, invalid UTF-8
    const r = await inbound(ep.slug, {
      method: 'PUT',
      body: bytes,
      query: '?a=1&b=two',
      headers: {
        'content-type': 'application/octet-stream',
        'x-signature': 'sig-123',
        connection: 'keep-alive, x-hop',
        'x-hop': 'drop me',
      },
    });
    expect(r.status).toBe(202);
    const accepted = (await r.json()) as { id: string; task_id: string };
    expect(shapes.inboundAcceptedSchema.parse(accepted)).toEqual(accepted);
    const delivered = await waitFor(() => got.find((g) => g.url.startsWith('/bin')), { what: 'the forwarded request' });
    expect(delivered.method).toBe('PUT');
    expect(delivered.url).toBe('/bin?fixed=1&a=1&b=two');
    expect(delivered.body.equals(bytes)).toBe(true);
    expect(delivered.headers['content-type']).toBe('application/octet-stream');
    expect(delivered.headers['x-posthorn-forwarded-x-signature']).toBe('sig-123');
    expect(delivered.headers['x-posthorn-forwarded-content-type']).toBe('application/octet-stream');
    expect(delivered.headers['x-posthorn-forwarded-x-hop']).toBeUndefined();
    expect(delivered.headers['x-posthorn-forwarded-connection']).toBeUndefined();
    expect(delivered.headers['x-posthorn-forwarded-host']).toBeUndefined();
    expect(delivered.headers['x-posthorn-task-id']).toBe(accepted.task_id);
    const [stored] = await h.sql`select body from endpoint_events where id = ${accepted.id}`;
    expect(Buffer.from(stored!.body).equals(bytes)).toBe(true);
    // Signed over the exact bytes sent. (The standardwebhooks npm library decodes a Buffer as
    // UTF-8 before it verifies, so it cannot check a binary body; the HMAC is computed here.)
    const { current } = (await h.api('GET', '/api/v1/signing-keys')).body;
    const hd = delivered.headers as Record<string, string>;
    const mac = createHmac('sha256', Buffer.from(current.slice('whsec_'.length), 'base64'))
      .update(`${hd['webhook-id']}.${hd['webhook-timestamp']}.`)
      .update(bytes)
      .digest('base64');
    expect(hd['webhook-signature']).toBe(`v1,${mac}`);
    await waitFor(async () => (await h.task(accepted.task_id)).status === 'succeeded', { what: 'the forwarding task to succeed' });
    const task = await h.task(accepted.task_id);
    expect(task).toMatchObject({ body_encoding: 'base64', body: bytes.toString('base64'), method: 'PUT', label: 'inbound' });
  });

  it('keeps a text body exactly, with the endpoint retry policy and queue on the task', async () => {
    const ep = (await create({ name: 'txt', forward_url: `${target.url}/txt`, retry: { max_retries: 1, min_backoff_ms: 5 }, queue: 'inq' }))
      .body;
    const text = '{"z": 1,   "a": "ünï"}\n';
    const r = await inbound(ep.slug, { body: text, headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect(r.status).toBe(202);
    const { task_id } = (await r.json()) as { task_id: string };
    const delivered = await waitFor(() => got.find((g) => g.url === '/txt'));
    expect(delivered.body.toString('utf8')).toBe(text);
    expect(delivered.headers['content-type']).toBe('application/json; charset=utf-8');
    const task = await h.task(task_id);
    expect(task).toMatchObject({ queue: 'inq', retry: { max_retries: 1, min_backoff_ms: 5 }, body: text });
    expect(task.body_encoding).toBeUndefined();
  });

  it('an unknown or disabled slug is 404 and stores nothing; a body over the limit is 413', async () => {
    const ep = (await create({ name: 'off', forward_url: target.url, enabled: false })).body;
    const before = await count('endpoint_events');
    for (const slug of [ep.slug, 'nosuchslugnosuchslug1234', 'bad%00slug']) {
      const r = await inbound(slug, { body: 'x' });
      expect(r.status).toBe(404);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
    }
    const on = (await create({ name: 'big', forward_url: target.url })).body;
    const big = await inbound(on.slug, { body: Buffer.alloc(1_048_577, 1) });
    expect(big.status).toBe(413);
    expect(await count('endpoint_events')).toBe(before);
  });

  it('lists events newest first with their forwarding task, pages with a cursor, and replays one', async () => {
    const ep = (await create({ name: 'list', forward_url: `${target.url}/fail-list`, retry: { max_retries: 0 } })).body;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(((await (await inbound(ep.slug, { body: `n${i}` })).json()) as { id: string }).id);
    const page1 = await h.api('GET', `/api/v1/endpoints/${ep.id}/events?limit=2`);
    expect(page1.status).toBe(200);
    expect(page1.body.data.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1]]);
    expect(shapes.endpointEventListSchema.parse(page1.body)).toEqual(page1.body);
    expect(page1.body.data[0]).toMatchObject({ method: 'POST', body: 'n2', body_size: 2, task: { id: expect.any(String) } });
    const page2 = await h.api('GET', `/api/v1/endpoints/${ep.id}/events?limit=2&cursor=${page1.body.next_cursor}`);
    expect(page2.body.data.map((e: { id: string }) => e.id)).toEqual([ids[0]]);
    expect(page2.body.next_cursor).toBeNull();
    // The target answers 500 and there are no retries: the task fails; a replay sends it again.
    const first = page2.body.data[0];
    await waitFor(async () => (await h.task(first.task_id)).status === 'failed', { what: 'the forward to fail' });
    const replay = await h.api('POST', `/api/v1/endpoints/${ep.id}/events/${first.id}/replay`);
    expect(replay.status).toBe(202);
    expect(replay.body.id).not.toBe(first.task_id);
    expect(shapes.eventReplayedSchema.parse(replay.body)).toEqual(replay.body);
    const again = await h.api('GET', `/api/v1/endpoints/${ep.id}/events?limit=200`);
    expect(again.body.data.find((e: { id: string }) => e.id === first.id).task_id).toBe(replay.body.id);
    await waitFor(() => got.filter((g) => g.url === '/fail-list' && g.body.toString() === 'n0').length >= 2);
    expect((await h.api('POST', `/api/v1/endpoints/${ep.id}/events/${ep.id}/replay`)).status).toBe(404);
    expect((await h.api('GET', `/api/v1/endpoints/${ep.id}/events?cursor=nonsense`)).status).toBe(400);
  });

  it("another team's endpoint is a 404 for this team's key", async () => {
    const ep = (await create({ name: 'mine', forward_url: target.url })).body;
    const [other] = await h.sql`insert into teams (slug, name) values ('other-team', 'o') returning id`;
    const { createKey } = await import('../shared/keys.ts');
    const key = (await createKey(h.sql, String(other!.id), 'k', 'admin')).key;
    for (const [m, p] of [
      ['GET', `/api/v1/endpoints/${ep.id}`],
      ['DELETE', `/api/v1/endpoints/${ep.id}`],
      ['GET', `/api/v1/endpoints/${ep.id}/events`],
    ] as const)
      expect((await h.api(m, p, undefined, { key })).status).toBe(404);
  });

  it('events older than the retention are pruned; newer ones stay', async () => {
    const ep = (await create({ name: 'prune', forward_url: target.url, enabled: true })).body;
    const { id } = (await (await inbound(ep.slug, { body: 'old' })).json()) as { id: string };
    const now = Date.now();
    expect(await pruneEndpointEvents(h.sql, 1, now)).toBe(0);
    expect(await pruneEndpointEvents(h.sql, 1, now + 3_600_001)).toBeGreaterThanOrEqual(1);
    expect(await h.sql`select 1 from endpoint_events where id = ${id}`).toHaveLength(0);
  });
});
