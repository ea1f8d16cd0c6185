// Bodies larger than a claim carries (INLINE_BODY_BYTES, worker/claim.ts): the claim leaves them
// out and the attempt reads them under its lease (worker/task-body.ts). They must arrive byte for
// byte, text and binary (body_encoding base64), with content-type and content-length as for any
// body, signed over the bytes sent; and a claim whose lease is gone reads nothing to send.
import { createHmac, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskInputSchema } from '../shared/schemas.ts';
import { secretBytes } from '../shared/signing.ts';
import { buildTask, insertTasks, taskTraceparent } from '../shared/tasks.ts';
import { INLINE_BODY_BYTES } from '../worker/claim.ts';
import { rescueExpiredLeases } from '../worker/maintenance/rescuer.ts';
import { claimTasks } from '../worker/producer.ts';
import { LEASE_LOST, loadBody } from '../worker/task-body.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { type Received, startSink } from './helpers/sink.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
let sink: Awaited<ReturnType<typeof startSink>>;

beforeAll(async () => {
  h = await startHarness({ worker: { workerConcurrency: 8 } });
  sink = await startSink();
});
afterAll(async () => {
  await h?.close();
  await sink?.close();
});

const delivered = (path: string) =>
  waitFor(() => sink.received.find((r) => r.path === path) ?? null, { what: `a delivery to ${path}` }) as Promise<Received>;
const currentSecret = async () => (await h.api('GET', '/api/v1/signing-keys')).body.current as string;

/** Text of `bytes` UTF-8 bytes or a little more: 1-, 2- and 4-byte characters, so no chunk edge is safe. */
const multiByteText = (bytes: number) => 'aé😀'.repeat(Math.ceil(bytes / 7));

/** Inserts a task with a base64 body, as gateway/inbound.ts stores bytes that are not text. */
async function enqueueBinary(url: string, bytes: Buffer) {
  const task = buildTask(taskInputSchema.parse({ url, body: bytes.toString('base64') }), {
    teamId: h.team.teamId,
    traceparent: taskTraceparent(undefined),
  });
  await insertTasks(h.sql, [{ ...task, body_encoding: 'base64' }]);
  return task.id;
}

describe('bodies over INLINE_BODY_BYTES', () => {
  it('a claim carries small bodies and leaves large ones out, with their size', async () => {
    await h.worker!.producer.stop();
    try {
      const small = await h.enqueue({ url: `${sink.url}/never`, body: 'x'.repeat(INLINE_BODY_BYTES) });
      const large = await h.enqueue({ url: `${sink.url}/never`, body: 'é'.repeat(INLINE_BODY_BYTES) });
      const claimed = await claimTasks(h.sql, { workerId: 'by-hand', limit: 2, leaseMs: 60_000 });
      const byId = Object.fromEntries(claimed.map((t) => [t.id, t]));
      expect(byId[small]!.body).toBe('x'.repeat(INLINE_BODY_BYTES));
      expect(byId[small]!.body_bytes).toBeNull();
      expect(byId[large]!.body).toBeNull();
      expect(byId[large]!.body_bytes).toBe(2 * INLINE_BODY_BYTES);
      expect(await loadBody(h.sql, byId[large]!)).toEqual(Buffer.from('é'.repeat(INLINE_BODY_BYTES)));
      await h.sql`update tasks set status = 'canceled', finished_at = now() where id in (${small}, ${large})`;
    } finally {
      await h.worker!.producer.start();
    }
  });

  it('a large text body is sent byte for byte with its content-type and length, and its signature verifies', async () => {
    const body = multiByteText(3 * INLINE_BODY_BYTES);
    const id = await h.enqueue({ url: `${sink.url}/text`, body });
    const got = await delivered('/text');
    expect(got.raw.equals(Buffer.from(body))).toBe(true);
    expect(got.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(got.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(got.headers['webhook-id']).toBe(id);
    new Webhook(await currentSecret()).verify(got.body, got.headers as Record<string, string>, { jsonParse: false });
    await waitFor(async () => (await h.task(id)).status === 'succeeded', { what: 'the task succeeded' });
  });

  it('a large binary body (base64) is sent as its bytes and signed over them', async () => {
    const bytes = randomBytes(2 * INLINE_BODY_BYTES + 3);
    const id = await enqueueBinary(`${sink.url}/binary`, bytes);
    const got = await delivered('/binary');
    expect(got.raw.equals(bytes)).toBe(true);
    expect(got.headers['content-length']).toBe(String(bytes.length));
    // standardwebhooks verifies text only (it decodes the payload), so the HMAC is checked here:
    // HMAC-SHA256 over "<id>.<timestamp>." and the bytes, keyed with the secret (docs/api.md §4).
    const ts = String(got.headers['webhook-timestamp']);
    const mac = createHmac('sha256', secretBytes(await currentSecret()))
      .update(`${id}.${ts}.`)
      .update(bytes)
      .digest('base64');
    expect(String(got.headers['webhook-signature'])).toBe(`v1,${mac}`);
  });

  it('a claim whose lease was lost reads no body: nothing to send', async () => {
    await h.worker!.producer.stop();
    try {
      const id = await h.enqueue({ url: `${sink.url}/lost`, body: 'y'.repeat(INLINE_BODY_BYTES + 1) });
      const [ghost] = await claimTasks(h.sql, { workerId: 'ghost', limit: 1, leaseMs: 1 });
      expect(ghost!.id).toBe(id);
      await new Promise((r) => setTimeout(r, 20));
      expect(await rescueExpiredLeases(h.sql)).toBe(1);
      expect(await loadBody(h.sql, ghost!)).toBe(LEASE_LOST);
      // The task runs again under a lease of its own, and that attempt reads and sends the body.
      const [rerun] = await claimTasks(h.sql, { workerId: 'live', limit: 1, leaseMs: 60_000 });
      expect(await loadBody(h.sql, rerun!)).toEqual(Buffer.from('y'.repeat(INLINE_BODY_BYTES + 1)));
      expect(await loadBody(h.sql, ghost!)).toBe(LEASE_LOST);
      await h.sql`update tasks set status = 'canceled', finished_at = now() where id = ${id}`;
    } finally {
      await h.worker!.producer.start();
    }
    expect(sink.received.filter((r) => r.path === '/lost')).toEqual([]);
  });
});
