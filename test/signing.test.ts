// Signed deliveries (docs/api.md §4 "Delivery"): every request a worker sends carries Standard
// Webhooks headers, and the `standardwebhooks` library (an independent implementation) verifies
// them with the team's whsec_ secret: JSON, text and empty bodies, every retry under the same
// webhook-id, callbacks, and across a rotation (two signatures for 24 h, one after DELETE).
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedTeam } from './helpers/db.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { type Received, startSink } from './helpers/sink.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
let sink: Awaited<ReturnType<typeof startSink>>;

beforeAll(async () => {
  h = await startHarness({ worker: { workerConcurrency: 8 } });
  sink = await startSink((req, nth) => (req.path.startsWith('/flaky') && nth === 1 ? { status: 503 } : { status: 200, body: 'ok' }));
});
afterAll(async () => {
  await h?.close();
  await sink?.close();
});

const fast = { max_retries: 3, min_backoff_ms: 10, max_backoff_ms: 50 };
const signingKeys = async () => (await h.api('GET', '/api/v1/signing-keys')).body;
const hitsFor = (path: string) => sink.received.filter((r) => r.path === path);
const delivered = (path: string, n = 1) =>
  waitFor(() => (hitsFor(path).length >= n ? hitsFor(path) : null), { what: `${n} deliveries to ${path}` }) as Promise<Received[]>;

/** Verifies with the standardwebhooks library; throws WebhookVerificationError on a mismatch. */
function verify(secret: string, r: Received) {
  return new Webhook(secret).verify(r.body, r.headers as Record<string, string>, { jsonParse: false });
}
const signatures = (r: Received) => String(r.headers['webhook-signature']).split(' ');

describe('signed deliveries', () => {
  it('a JSON delivery verifies with the team secret; webhook-id is the task id', async () => {
    const { current, previous } = await signingKeys();
    expect(current).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(previous).toBeNull();
    const id = await h.enqueue({ url: `${sink.url}/json`, body: { user_id: '123', note: 'grüße ✓' } });
    const [got] = await delivered('/json');
    expect(got!.headers['webhook-id']).toBe(id);
    expect(Math.abs(Number(got!.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(signatures(got!)).toHaveLength(1);
    expect(signatures(got!)[0]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    verify(current, got!);
    expect(new Webhook(current).verify(got!.body, got!.headers as Record<string, string>)).toEqual({ user_id: '123', note: 'grüße ✓' });
  });

  it('a tampered body, id or timestamp, or another secret, does not verify', async () => {
    const { current } = await signingKeys();
    await h.enqueue({ url: `${sink.url}/tamper`, body: 'exact bytes' });
    const [got] = await delivered('/tamper');
    verify(current, got!);
    expect(() => verify(current, { ...got!, body: 'exact bytes ' })).toThrow();
    expect(() => verify(current, { ...got!, headers: { ...got!.headers, 'webhook-id': 'another' } })).toThrow();
    const ts = String(Number(got!.headers['webhook-timestamp']) + 1);
    expect(() => verify(current, { ...got!, headers: { ...got!.headers, 'webhook-timestamp': ts } })).toThrow();
    const other = await seedTeam(h.sql);
    const [row] = await h.sql`select current_secret from team_signing_keys where team_id = ${other.teamId}`;
    expect(row!.current_secret).not.toBe(current);
    expect(() => verify(row!.current_secret, got!)).toThrow();
  });

  it('text and empty bodies are signed exactly as sent (GET signs the empty string)', async () => {
    const { current } = await signingKeys();
    await h.enqueue({ url: `${sink.url}/text`, body: 'plain <b>text</b> ünïcode' });
    await h.enqueue({ url: `${sink.url}/empty`, method: 'GET' });
    const [text] = await delivered('/text');
    const [empty] = await delivered('/empty');
    expect(text!.body).toBe('plain <b>text</b> ünïcode');
    verify(current, text!);
    expect(empty!.body).toBe('');
    verify(current, empty!);
  });

  it('every attempt of a retried task carries the same webhook-id, each signed afresh', async () => {
    const { current } = await signingKeys();
    const id = await h.enqueue({ url: `${sink.url}/flaky`, body: { n: 1 }, retry: fast });
    const hits = await delivered('/flaky', 2);
    expect(hits.map((r) => r.headers['webhook-id'])).toEqual([id, id]);
    for (const r of hits) verify(current, r);
  });

  it('callbacks are signed too', async () => {
    const { current } = await signingKeys();
    await h.enqueue({ url: `${sink.url}/with-callback`, callback_url: `${sink.url}/callback` });
    const [cb] = await delivered('/callback');
    expect(cb!.headers['webhook-id']).not.toBe(hitsFor('/with-callback')[0]!.headers['webhook-id']);
    verify(current, cb!);
  });
});

describe('rotation', () => {
  it('rotate: the new key signs and the previous one keeps signing next to it; DELETE previous stops it', async () => {
    const old = (await signingKeys()).current;
    const rotated = await h.api('POST', '/api/v1/signing-keys/rotate');
    expect(rotated.status).toBe(200);
    const { current, previous, rotated_at, previous_expires_at } = rotated.body;
    expect(current).not.toBe(old);
    expect(previous).toBe(old);
    const hours = (Date.parse(previous_expires_at) - Date.parse(rotated_at)) / 3_600_000;
    expect(hours).toBeCloseTo(24, 5);
    expect(await signingKeys()).toEqual(rotated.body);

    // Workers pick the rotation up within their 2 s cache: wait for a two-signature delivery.
    let n = 0;
    const both = (await waitFor(
      async () => {
        await h.enqueue({ url: `${sink.url}/rotated-${++n}`, body: { n } });
        const [got] = await delivered(`/rotated-${n}`);
        return signatures(got!).length === 2 ? got! : null;
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'a delivery signed by both keys' },
    ))!;
    verify(current, both); // receivers that switched already
    verify(old, both); // receivers that have not yet
    const [first, second] = signatures(both);
    expect(
      new Webhook(current).sign(String(both.headers['webhook-id']), new Date(Number(both.headers['webhook-timestamp']) * 1000), both.body),
    ).toBe(first);
    expect(
      new Webhook(old).sign(String(both.headers['webhook-id']), new Date(Number(both.headers['webhook-timestamp']) * 1000), both.body),
    ).toBe(second);

    expect((await h.api('DELETE', '/api/v1/signing-keys/previous')).status).toBe(204);
    expect((await signingKeys()).previous).toBeNull();
    const single = (await waitFor(
      async () => {
        await h.enqueue({ url: `${sink.url}/after-delete-${++n}`, body: { n } });
        const [got] = await delivered(`/after-delete-${n}`);
        return signatures(got!).length === 1 ? got! : null;
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'a delivery signed by the current key only' },
    ))!;
    verify(current, single);
    expect(() => verify(old, single)).toThrow();
  });

  it('a previous key past its 24 h no longer signs and is not shown', async () => {
    await h.api('POST', '/api/v1/signing-keys/rotate');
    await h.sql`update team_signing_keys set previous_expires_at = now() - interval '1 second' where team_id = ${h.team.teamId}`;
    const keys = await signingKeys();
    expect(keys.previous).toBeNull();
    // Once the workers' cache has the new current key, the expired previous one is not with it.
    const bySecret = (secret: string, r: Received) => {
      try {
        verify(secret, r);
        return true;
      } catch {
        return false;
      }
    };
    let n = 0;
    const got = (await waitFor(
      async () => {
        await h.enqueue({ url: `${sink.url}/expired-${++n}` });
        const [r] = await delivered(`/expired-${n}`);
        return bySecret(keys.current, r!) ? r! : null;
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'a delivery signed with the new current key' },
    ))!;
    expect(signatures(got)).toHaveLength(1);
  });

  it('signing keys need the admin role', async () => {
    for (const role of ['read', 'write'] as const) {
      for (const [method, path] of [
        ['GET', '/api/v1/signing-keys'],
        ['POST', '/api/v1/signing-keys/rotate'],
        ['DELETE', '/api/v1/signing-keys/previous'],
      ] as const) {
        const r = await h.api(method, path, undefined, { key: h.team.keys[role] });
        expect(r.status, `${role} ${method} ${path}`).toBe(403);
        expect(r.body.code).toBe('forbidden');
      }
    }
  });
});
