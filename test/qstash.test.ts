// The QStash-compatible API (docs/qstash.md) driven by the official `@upstash/qstash` client and
// verified by its official Receiver, against a real gateway socket and a real worker: nothing
// hand-written sits between the client and Posthorn. The one exception is /v2/keys: the client
// has no call for it (its dev-server check GETs it with a Bearer token, as fetch does here).
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Client, QstashError, Receiver } from '@upstash/qstash';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { seedTeam } from './helpers/db.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { type Received, startSink } from './helpers/sink.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
let sink: Awaited<ReturnType<typeof startSink>>;
let server: ReturnType<typeof serve>;
let baseUrl: string;
let client: Client;

beforeAll(async () => {
  h = await startHarness({ worker: { workerConcurrency: 8 } });
  sink = await startSink((req, nth) =>
    req.path.startsWith('/fail') || (req.path === '/flaky' && nth === 1)
      ? { status: 500, body: 'down for maintenance' }
      : { status: 200, body: 'ok' },
  );
  server = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' });
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  client = new Client({ baseUrl, token: h.team.keys.admin, retry: false, enableTelemetry: true });
});
afterAll(async () => {
  await new Promise((ok) => server?.close(ok));
  await h?.close();
  await sink?.close();
});

type Keys = { current: string; next: string };
async function v2Keys(method = 'GET', path = '/v2/keys'): Promise<Keys> {
  const res = await fetch(`${baseUrl}${path}`, { method, headers: { authorization: `Bearer ${h.team.keys.admin}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as Keys;
}

const hitsFor = (path: string) => sink.received.filter((r) => r.path === path);
const delivered = (path: string, n = 1) =>
  waitFor(() => (hitsFor(path).length >= n ? hitsFor(path) : null), { what: `${n} deliveries to ${path}` }) as Promise<Received[]>;

/** The official Receiver's verdict on a delivery the sink got. */
function verify(keys: Keys, r: Received, o: { body?: string; url?: string } = {}) {
  return new Receiver({ currentSigningKey: keys.current, nextSigningKey: keys.next }).verify({
    signature: String(r.headers['upstash-signature']),
    body: o.body ?? r.body,
    url: o.url ?? `${sink.url}${r.path}`,
  });
}

/** The QStash error the client throws, with the body parsed ({"error": "..."}). */
async function qstashError(p: Promise<unknown>): Promise<{ status: number; error: string }> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(QstashError);
  const { status, message } = e as QstashError;
  const body = JSON.parse(message) as { error: string };
  expect(Object.keys(body)).toEqual(['error']);
  return { status: status!, error: body.error };
}

describe('publishing', () => {
  it('publishJSON with a delay: delivered after it, signed for Receiver, with Upstash-Message-Id and Upstash-Retried', async () => {
    const keys = await v2Keys();
    expect(keys.current).toMatch(/^sig_[A-Za-z0-9]{40,}$/);
    expect(keys.next).not.toBe(keys.current);
    const before = Date.now();
    const res = await client.publishJSON({ url: `${sink.url}/delayed`, body: { hello: 'wörld' }, delay: 2, headers: { 'x-tenant': '42' } });
    expect(res.url).toBe(`${sink.url}/delayed`);
    const [got] = await delivered('/delayed');
    expect(got!.at - before).toBeGreaterThanOrEqual(1900); // 2 s on the database's clock
    expect(got!.headers['upstash-message-id']).toBe(res.messageId);
    expect(got!.headers['upstash-retried']).toBe('0');
    expect(got!.headers['x-tenant']).toBe('42');
    expect(got!.headers['content-type']).toBe('application/json');
    expect(JSON.parse(got!.body)).toEqual({ hello: 'wörld' });
    expect(await verify(keys, got!)).toBe(true);
    // Tasks enqueued through /v2 carry both signatures: Standard Webhooks too.
    expect(got!.headers['webhook-id']).toBe(res.messageId);
    expect(got!.headers['webhook-signature']).toMatch(/^v1,/);
  });

  it('a body larger than a claim carries (read by its attempt, worker/task-body.ts) is signed over the bytes sent', async () => {
    const keys = await v2Keys();
    const body = 'grüße ✓ '.repeat(20_000); // ~220 KB of UTF-8, over INLINE_BODY_BYTES
    await client.publish({ url: `${sink.url}/large`, body });
    const [got] = await delivered('/large');
    expect(got!.body).toBe(body);
    expect(await verify(keys, got!)).toBe(true);
  });

  it('reads a message', async () => {
    const res = await client.publish({
      url: `${sink.url}/later`,
      body: 'plain text',
      delay: 3600,
      retries: 2,
      timeout: '20s',
      label: 'nightly',
    });
    const m = await client.messages.get(res.messageId);
    expect(m).toMatchObject({
      messageId: res.messageId,
      url: `${sink.url}/later`,
      method: 'POST',
      body: 'plain text',
      maxRetries: 2,
      label: 'nightly',
    });
    expect(m.notBefore! - Date.now()).toBeGreaterThan(3500_000);
    expect(m.header?.['content-type']?.[0]).toMatch(/^text\/plain/);
    // The same task natively: the delay, retries and timeout mapped onto its fields.
    const task = await h.task(res.messageId);
    expect(task).toMatchObject({ status: 'scheduled', retry: { max_retries: 2 }, timeout_ms: 20_000, label: 'nightly' });
    await client.messages.delete(res.messageId);
    expect((await h.task(res.messageId)).status).toBe('canceled');
    expect((await qstashError(client.messages.delete(res.messageId))).status).toBe(404);
  });

  it('a batch: every message stored, delivered and signed', async () => {
    const keys = await v2Keys();
    const res = await client.batchJSON([
      { url: `${sink.url}/batch-a`, body: { n: 1 } },
      { url: `${sink.url}/batch-b`, body: { n: 2 }, method: 'PUT', headers: { 'x-n': '2' } },
    ]);
    expect(res).toHaveLength(2);
    const [a] = await delivered('/batch-a');
    const [b] = await delivered('/batch-b');
    expect([a!.headers['upstash-message-id'], b!.headers['upstash-message-id']]).toEqual(res.map((r) => r.messageId));
    expect(b!.method).toBe('PUT');
    expect(b!.headers['x-n']).toBe('2');
    expect(await verify(keys, a!)).toBe(true);
    expect(await verify(keys, b!)).toBe(true);
  });

  it('a bad message in a batch stores none of them', async () => {
    const before = (await h.sql`select count(*)::int as n from tasks`)[0]!.n;
    const e = await qstashError(
      client.batchJSON([
        { url: `${sink.url}/batch-ok`, body: {} },
        { url: `${sink.url}/batch-bad`, body: {}, timeout: '2h' },
      ]),
    );
    expect(e.status).toBe(400);
    expect(e.error).toMatch(/^message 1: Upstash-Timeout/);
    expect((await h.sql`select count(*)::int as n from tasks`)[0]!.n).toBe(before);
  });

  it('a destination keeps its query string and its encoded path', async () => {
    const keys = await v2Keys();
    const res = await client.publishJSON({ url: `${sink.url}/q/a%20b?x=1&y=two`, body: { q: true } });
    const [got] = await delivered('/q/a%20b?x=1&y=two');
    expect(got!.headers['upstash-message-id']).toBe(res.messageId);
    expect(await verify(keys, got!)).toBe(true);
  });

  it('a retry says so in Upstash-Retried and is signed afresh; a callback is signed too', async () => {
    const keys = await v2Keys();
    const res = await client.publishJSON({ url: `${sink.url}/flaky`, body: { try: 'again' }, callback: `${sink.url}/callback` });
    await waitFor(async () => (await h.task(res.messageId)).status === 'retrying', { what: 'the first attempt to fail' });
    // The default backoff waits 10 s (docs/retries.md): bring the retry forward.
    await h.sql`update tasks set run_at = now() where id = ${res.messageId} and status = 'retrying'`;
    const [first, second] = await delivered('/flaky', 2);
    expect([first!.headers['upstash-retried'], second!.headers['upstash-retried']]).toEqual(['0', '1']);
    expect(second!.headers['upstash-message-id']).toBe(res.messageId);
    expect(second!.headers['upstash-signature']).not.toBe(first!.headers['upstash-signature']);
    expect(await verify(keys, second!)).toBe(true);
    const [cb] = await delivered('/callback');
    expect(JSON.parse(cb!.body)).toMatchObject({ task_id: res.messageId, status: 'succeeded' });
    expect(await verify(keys, cb!)).toBe(true);
  });

  it("flow-control headers become the task's flow_control", async () => {
    const res = await client.publishJSON({
      url: `${sink.url}/later`,
      body: {},
      delay: 3600,
      flowControl: { key: 'customer-42', parallelism: 2, rate: 30, period: '1m' },
    });
    expect((await h.task(res.messageId)).flow_control).toEqual({ key: 'customer-42', parallelism: 2, rate_per_second: 0.5 });
    expect(await client.messages.get(res.messageId)).toMatchObject({ flowControlKey: 'customer-42', parallelism: 2 });
  });

  it('natively enqueued tasks keep only their Standard Webhooks signature', async () => {
    await h.enqueue({ url: `${sink.url}/native`, body: { x: 1 } });
    const [got] = await delivered('/native');
    expect(got!.headers['webhook-signature']).toMatch(/^v1,/);
    expect(got!.headers['upstash-signature']).toBeUndefined();
    expect(got!.headers['upstash-message-id']).toBeUndefined();
  });
});

describe('queues', () => {
  it('upsert, get, list, pause, resume and delete: the native queue underneath', async () => {
    const q = client.queue({ queueName: 'reports' });
    await q.upsert({ parallelism: 3 });
    expect(await q.get()).toMatchObject({ name: 'reports', parallelism: 3, paused: false, lag: 0 });
    expect((await h.api('GET', '/api/v1/queues/reports')).body).toMatchObject({ parallelism: 3, paused: false });
    await q.pause();
    expect((await q.get()).paused).toBe(true);
    await q.resume();
    expect(await q.get()).toMatchObject({ paused: false, parallelism: 3 });
    expect((await q.list()).map((x) => x.name)).toContain('reports');
    await q.delete();
    expect((await h.api('GET', '/api/v1/queues/reports')).status).toBe(404);
    expect((await qstashError(q.delete())).status).toBe(404);
  });

  it('enqueue into a queue with parallelism 1: one delivery at a time, in the order enqueued', async () => {
    let inFlight = 0;
    let most = 0;
    const serial = await startSink(async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((ok) => setTimeout(ok, 100));
      inFlight--;
      return { status: 200 };
    });
    try {
      const keys = await v2Keys();
      const q = client.queue({ queueName: 'serial' });
      await q.upsert({ parallelism: 1 });
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await q.enqueueJSON({ url: `${serial.url}/job/${i}`, body: { i } })).messageId);
      expect((await client.messages.get(ids[0]!)).queueName).toBe('serial');
      await waitFor(() => serial.received.length >= 5, { what: 'five deliveries' });
      expect(serial.received.map((r) => r.headers['upstash-message-id'])).toEqual(ids);
      expect(most).toBe(1);
      for (const r of serial.received) expect(await verify(keys, r, { url: `${serial.url}${r.path}` })).toBe(true);
    } finally {
      await serial.close();
    }
  });
});

describe('deduplication', () => {
  it('content-based: the same destination, body and headers are one message; the key lives as long as an idempotency key', async () => {
    const msg = { url: `${sink.url}/dedup`, body: { order: 7 }, contentBasedDeduplication: true, delay: 3600 };
    const first = await client.publishJSON(msg);
    const again = await client.publishJSON(msg);
    expect(again.messageId).toBe(first.messageId);
    expect(again.deduplicated).toBe(true);
    expect(first.deduplicated).toBeUndefined();
    const other = await client.publishJSON({ ...msg, body: { order: 8 } });
    expect(other.messageId).not.toBe(first.messageId);
    const otherHeader = await client.publishJSON({ ...msg, headers: { 'x-v': '2' } });
    expect(otherHeader.messageId).not.toBe(first.messageId);
    const otherDestination = await client.publishJSON({ ...msg, url: `${sink.url}/dedup-elsewhere` });
    expect(otherDestination.messageId).not.toBe(first.messageId);
    // Options that are not content (delay, retries, label) do not make another message.
    const otherOptions = await client.publishJSON({ ...msg, delay: 7200, retries: 1, label: 'x' });
    expect(otherOptions).toMatchObject({ messageId: first.messageId, deduplicated: true });
    const [key] = await h.sql<{ ttl_h: number }[]>`
      select extract(epoch from expires_at - now()) / 3600 as ttl_h from idempotency_keys where task_id = ${first.messageId}`;
    expect(Number(key!.ttl_h)).toBeGreaterThan(23.9);
    expect(Number(key!.ttl_h)).toBeLessThanOrEqual(24);
  });

  it('an explicit deduplication id: a duplicate is accepted and not enqueued, even with another body', async () => {
    const first = await client.publishJSON({ url: `${sink.url}/dedup-id`, body: { v: 1 }, deduplicationId: 'invoice-9' });
    const again = await client.publishJSON({ url: `${sink.url}/dedup-id`, body: { v: 2 }, deduplicationId: 'invoice-9' });
    expect(again).toMatchObject({ messageId: first.messageId, deduplicated: true });
    await delivered('/dedup-id');
    const n = await h.sql`select count(*)::int as n from tasks where url = ${`${sink.url}/dedup-id`}`;
    expect(n[0]!.n).toBe(1);
  });
});

describe('the dead-letter queue', () => {
  it('a message that fails for good is listed, with its last response, and deleted', async () => {
    const res = await client.publishJSON({ url: `${sink.url}/fail`, body: { doomed: true }, retries: 0 });
    await waitFor(async () => (await h.task(res.messageId)).status === 'failed', { what: 'the message to fail' });
    const { messages } = await client.dlq.listMessages();
    const entry = messages.find((m) => m.messageId === res.messageId);
    expect(entry).toMatchObject({
      dlqId: res.messageId,
      url: `${sink.url}/fail`,
      responseStatus: 500,
      responseBody: 'down for maintenance',
    });
    const filtered = await client.dlq.listMessages({ filter: { url: `${sink.url}/nothing-here` } });
    expect(filtered.messages).toEqual([]);
    expect(await client.dlq.delete(entry!.dlqId)).toEqual({ deleted: 1 });
    expect((await client.dlq.listMessages()).messages.map((m) => m.dlqId)).not.toContain(res.messageId);
    expect((await qstashError(client.messages.get(res.messageId))).status).toBe(404);
    expect((await qstashError(client.dlq.delete(entry!.dlqId))).status).toBe(404);
  });
});

describe('schedules', () => {
  it('creates a schedule whose ticks are signed deliveries, lists it, and deletes it', async () => {
    const keys = await v2Keys();
    const { scheduleId } = await client.schedules.create({
      destination: `${sink.url}/tick`,
      cron: '* * * * * *', // every second (6 fields, seconds first)
      body: JSON.stringify({ report: 'daily' }),
      retries: 1,
    });
    const [got] = await delivered('/tick');
    expect(got!.headers['upstash-schedule-id']).toBe(scheduleId);
    expect(await verify(keys, got!)).toBe(true);
    const listed = await client.schedules.list();
    expect(listed.find((s) => s.scheduleId === scheduleId)).toMatchObject({
      destination: `${sink.url}/tick`,
      retries: 1,
      isPaused: false,
      body: '{"report":"daily"}',
    });
    await client.schedules.delete(scheduleId);
    expect((await client.schedules.list()).map((s) => s.scheduleId)).not.toContain(scheduleId);
    expect((await qstashError(client.schedules.get(scheduleId))).status).toBe(404);
  });

  it('an Upstash-Schedule-Id of the caller names the schedule; creating it again replaces it; CRON_TZ sets the zone', async () => {
    const first = await client.schedules.create({ destination: `${sink.url}/report`, cron: '0 9 * * *', scheduleId: 'daily-report' });
    expect(first.scheduleId).toBe('daily-report');
    await client.schedules.create({
      destination: `${sink.url}/report2`,
      cron: 'CRON_TZ=Europe/Oslo 0 9 * * *',
      scheduleId: 'daily-report',
    });
    const s = await client.schedules.get('daily-report');
    expect(s).toMatchObject({ scheduleId: 'daily-report', destination: `${sink.url}/report2`, cron: 'CRON_TZ=Europe/Oslo 0 9 * * *' });
    await client.schedules.pause({ schedule: 'daily-report' });
    expect((await client.schedules.get('daily-report')).isPaused).toBe(true);
    await client.schedules.resume({ schedule: 'daily-report' });
    expect((await client.schedules.get('daily-report')).isPaused).toBe(false);
    expect((await client.schedules.list()).filter((x) => x.scheduleId === 'daily-report')).toHaveLength(1);
    await client.schedules.delete('daily-report');
  });
});

describe('signatures', () => {
  it('verify across a key rotation; the key rotated out no longer verifies', async () => {
    const before = await v2Keys();
    const rotated = await v2Keys('POST', '/v2/keys/rotate');
    expect(rotated.current).toBe(before.next);
    expect(rotated.next).not.toBe(before.current);
    expect(await v2Keys()).toEqual(rotated);
    // Delayed past the workers' 2 s key cache, so it is signed with the new current key.
    await client.publishJSON({ url: `${sink.url}/rotated`, body: { after: 'rotation' }, delay: 3 });
    const [got] = await delivered('/rotated');
    expect(await verify(rotated, got!)).toBe(true);
    expect(await verify(before, got!)).toBe(true); // a receiver that has not re-read its keys: via next
    // Once rotated again, the key that signed it is neither current nor next: stale.
    const again = await v2Keys('POST', '/v2/keys/rotate');
    await expect(verify(again, got!)).rejects.toThrow();
  });

  it('a forged or stale signature fails verification', async () => {
    const keys = await v2Keys();
    await client.publishJSON({ url: `${sink.url}/forge`, body: { amount: 10 }, delay: 3 });
    const [got] = await delivered('/forge');
    expect(await verify(keys, got!)).toBe(true);
    await expect(verify(keys, got!, { body: '{"amount":1000}' })).rejects.toThrow(/body hash/);
    await expect(verify(keys, got!, { url: `${sink.url}/elsewhere` })).rejects.toThrow(/subject/);
    const [head, payload, sig] = String(got!.headers['upstash-signature']).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    expect(claims).toMatchObject({ iss: 'Upstash', sub: `${sink.url}/forge` });
    expect(claims.exp - claims.iat).toBe(300);
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: `${sink.url}/elsewhere` })).toString('base64url');
    const tampered = { ...got!, headers: { ...got!.headers, 'upstash-signature': `${head}.${forged}.${sig}` } };
    await expect(verify(keys, tampered, { url: `${sink.url}/elsewhere` })).rejects.toThrow();
    await expect(verify({ current: 'sig_not-the-key', next: 'sig_nor-this' }, got!)).rejects.toThrow();
    // Stale: the same delivery checked ten minutes on, past its 5-minute exp (both keys the
    // signing one, so the error is about time, not about the key).
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 600_000);
      await expect(verify({ current: keys.current, next: keys.current }, got!)).rejects.toThrow(/exp/);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('teams', () => {
  it("another team's key sees none of this team's messages, DLQ or schedules, and its signing keys verify nothing of ours", async () => {
    const other = await seedTeam(h.sql);
    const theirs = new Client({ baseUrl, token: other.keys.admin, retry: false });
    const keys = await v2Keys();
    const res = await client.publishJSON({ url: `${sink.url}/ours`, body: { mine: true } });
    const [got] = await delivered('/ours');
    expect((await qstashError(theirs.messages.get(res.messageId))).status).toBe(404);
    expect((await qstashError(theirs.messages.delete(res.messageId))).status).toBe(404);
    expect((await theirs.dlq.listMessages()).messages).toEqual([]);
    expect(await theirs.schedules.list()).toEqual([]);
    const [k] = await h.sql<{ current_key: string; next_key: string }[]>`
      select current_key, next_key from qstash_signing_keys where team_id = ${other.teamId}`;
    expect(k!.current_key).not.toBe(keys.current);
    await expect(verify({ current: k!.current_key, next: k!.next_key }, got!)).rejects.toThrow();
  });
});

describe("QStash's error shape and what is refused", () => {
  it('answers {"error"} with the status: a wrong token, a URL group, an unsupported option', async () => {
    const stranger = new Client({ baseUrl, token: 'ph_not-a-key-0000000000000000000000000000', retry: false });
    expect(await qstashError(stranger.publishJSON({ url: `${sink.url}/x`, body: {} }))).toMatchObject({ status: 401 });
    const group = await qstashError(client.publishJSON({ urlGroup: 'my-group', body: {} }));
    expect(group.status).toBe(400);
    expect(group.error).toMatch(/URL groups/);
    expect((await qstashError(client.urlGroups.list())).error).toMatch(/URL groups \(topics\) are not supported/);
    const retryDelay = await qstashError(client.publishJSON({ url: `${sink.url}/x`, body: {}, retryDelay: '1000 * retried' }));
    expect(retryDelay).toMatchObject({ status: 400 });
    expect(retryDelay.error).toMatch(/Upstash-Retry-Delay/);
    const badTarget = await qstashError(client.publishJSON({ url: 'ftp://example.com/x', body: {} }));
    expect(badTarget.status).toBe(400);
    const readOnly = new Client({ baseUrl, token: h.team.keys.read, retry: false });
    expect((await qstashError(readOnly.publishJSON({ url: `${sink.url}/x`, body: {} }))).status).toBe(403);
    expect((await qstashError(client.messages.get('no-such-message'))).status).toBe(404);
  });
});

describe('hostile input (raw HTTP, not the client)', () => {
  it('every bad request is a 4xx {"error"} and stores nothing', async () => {
    const before = (await h.sql`select count(*)::int as n from tasks`)[0]!.n;
    const auth = { authorization: `Bearer ${h.team.keys.admin}` };
    const cases: [string, string, Record<string, string>, BodyInit?][] = [
      ['POST', '/v2/publish/', {}],
      ['POST', '/v2/publish/not a url', {}],
      ['POST', '/v2/publish/%E0%A4%A', {}],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-not-before': '999999999999' }],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-delay': '400d' }],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-delay': '-1s' }],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-retries': '1000' }],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-method': 'TRACE' }],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-method': 'GET' }, 'a body'],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-forward-host': 'evil' }],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-forward-upstash-signature': 'x' }],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-callback': 'ftp://x' }],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-deduplication-id': 'x'.repeat(300) }],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-flow-control-key': 'k', 'upstash-flow-control-value': 'speed=9' }],
      ['POST', `/v2/publish/${sink.url}/x`, { 'upstash-something-new': '1' }],
      ['POST', `/v2/publish/${sink.url}/x`, {}, new Uint8Array([0xff, 0xfe, 0x00])],
      ['POST', `/v2/publish/${sink.url}/x`, {}, 'nul \u0000 inside'],
      ['POST', `/v2/enqueue/bad queue/${sink.url}/x`, {}],
      ['POST', '/v2/batch', { 'content-type': 'application/json' }, '[]'],
      ['POST', '/v2/batch', { 'content-type': 'application/json' }, '{"destination": 1}'],
      ['POST', '/v2/batch', { 'content-type': 'application/json' }, '[{"destination": "x", "extra": 1}]'],
      ['POST', '/v2/batch', { 'content-type': 'text/plain' }, '[]'],
      ['POST', `/v2/schedules/${sink.url}/x`, {}],
      ['POST', `/v2/schedules/${sink.url}/x`, { 'upstash-cron': 'every day' }],
      ['POST', `/v2/schedules/${sink.url}/x`, { 'upstash-cron': 'CRON_TZ=Mars/Base 0 9 * * *' }],
      ['POST', `/v2/schedules/${sink.url}/x`, { 'upstash-cron': '0 9 * * *', 'upstash-schedule-id': 'no spaces allowed' }],
      ['POST', `/v2/schedules/${sink.url}/x`, { 'upstash-cron': '0 9 * * *', 'upstash-delay': '10s' }],
      ['POST', '/v2/queues', { 'content-type': 'application/json' }, '{"queueName": "q", "parallelism": 0}'],
      ['GET', '/v2/dlq?count=0', {}],
      ['GET', '/v2/dlq?cursor=nonsense', {}],
      ['GET', '/v2/dlq?fromDate=1', {}],
      ['DELETE', '/v2/messages', {}],
      ['GET', '/v2/queues/bad%20name', {}],
      ['PUT', '/v2/keys', {}],
    ];
    for (const [method, path, headers, body] of cases) {
      const res = await fetch(`${baseUrl}${path}`, { method, headers: { ...auth, ...headers }, body });
      const text = await res.text();
      expect(res.status, `${method} ${path} ${JSON.stringify(headers)} → ${res.status} ${text}`).toBeGreaterThanOrEqual(400);
      expect(res.status, `${method} ${path} → ${text}`).toBeLessThan(500);
      expect(res.headers.get('content-type'), path).toBe('application/json');
      expect(Object.keys(JSON.parse(text)), path).toEqual(['error']);
    }
    expect((await h.sql`select count(*)::int as n from tasks`)[0]!.n).toBe(before);
  });
});
