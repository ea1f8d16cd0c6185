// Outbound safety end to end (docs/api.md §6): the gateway refuses literal private targets, and the
// worker blocks names that resolve to them at delivery, without opening a socket. Every
// connection here could only ever go to 127.0.0.1: the test's resolver maps names there.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTargetPolicy } from '../shared/targets.ts';
import { createSafeDispatcher, type Resolver } from '../worker/dispatcher.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { startSink } from './helpers/sink.ts';

let sink: Awaited<ReturnType<typeof startSink>>;
let port: number;
const asked: string[] = [];
// Every name resolves to loopback: a rebinding attacker's best case.
const resolve: Resolver = async (host) => {
  asked.push(host);
  return [{ address: '127.0.0.1', family: 4 }];
};

beforeAll(async () => {
  sink = await startSink((req) =>
    req.path === '/redirect' ? { status: 307, headers: { location: `http://127.0.0.1:${port}/inside` } } : { status: 200 },
  );
  port = Number(new URL(sink.url).port);
});
afterAll(async () => sink?.close());

async function harness(allowlist: string[]) {
  const policy = createTargetPolicy({ allowPrivate: false, allowlist });
  return startHarness({ allowPrivate: false, allowlist, dispatcher: createSafeDispatcher(policy, { resolve }), worker: {} });
}

describe('default deny', () => {
  let h: Awaited<ReturnType<typeof startHarness>>;
  beforeAll(async () => {
    h = await harness([]);
  });
  afterAll(async () => h?.close());
  afterEach(() => (asked.length = 0));

  it.each([
    'http://127.0.0.1/x',
    'http://2130706433/x',
    'http://0x7f.1/x',
    'http://[::1]/x',
    'http://[::ffff:127.0.0.1]/x',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.0.0.1/',
    'http://localhost:8080/',
    'http://api.localhost/',
  ])('refuses %s at enqueue with 400 target_not_allowed, storing nothing', async (url) => {
    const before = (await h.sql`select count(*)::int as n from tasks`)[0]!.n;
    const r = await h.api('POST', '/api/v1/queue', { url });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('target_not_allowed');
    expect(r.body.errors[0].path).toBe('url');
    expect((await h.sql`select count(*)::int as n from tasks`)[0]!.n).toBe(before);
  });

  it('refuses a private callback_url too', async () => {
    const r = await h.api('POST', '/api/v1/queue', { url: 'https://example.com/', callback_url: 'http://192.168.1.1/cb' });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].path).toBe('callback_url');
  });

  it('a name that resolves to loopback is blocked at delivery: outcome blocked, not retried, no connection', async () => {
    const connectionsBefore = sink.connections;
    const id = await h.enqueue({
      url: `http://rebind.example:${port}/secret`,
      retry: { max_retries: 3, min_backoff_ms: 10, max_backoff_ms: 10 },
    });
    const t = await waitFor(async () => {
      const t = await h.task(id);
      return t.status === 'failed' ? t : null;
    });
    expect(t.attempts).toBe(1);
    const a = (await h.api('GET', `/api/v1/tasks/${id}/attempts`)).body.data;
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ outcome: 'blocked', status_code: null });
    expect(a[0].error).toMatch(/loopback/);
    expect(asked).toContain('rebind.example');
    expect(sink.connections).toBe(connectionsBefore);
    expect(sink.received.filter((r) => r.path === '/secret')).toHaveLength(0);
  });
});

describe('allowlist', () => {
  let h: Awaited<ReturnType<typeof startHarness>>;
  beforeAll(async () => {
    h = await harness(['127.0.0.1/32']);
  });
  afterAll(async () => h?.close());

  it('an allowlisted CIDR is delivered to', async () => {
    const id = await h.enqueue({ url: `http://127.0.0.1:${port}/allowed` });
    await waitFor(async () => (await h.task(id)).status === 'succeeded');
    expect(sink.received.some((r) => r.path === '/allowed')).toBe(true);
  });

  it('a redirect is not followed, even to an allowed address', async () => {
    const id = await h.enqueue({ url: `http://127.0.0.1:${port}/redirect` });
    const t = await waitFor(async () => {
      const t = await h.task(id);
      return t.status === 'failed' ? t : null;
    });
    expect(t.last_attempt).toMatchObject({ outcome: 'http_error', status_code: 307 });
    expect(sink.received.some((r) => r.path === '/inside')).toBe(false);
  });

  it('an endless response is cut off after 10 MiB; 64 KiB are kept', async () => {
    let sent = 0;
    let clientGone = false;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 97);
      // Bounded "endless": stops by itself at 64 MiB, long after the worker should hang up.
      const pump = () => {
        while (sent < 64 * 1024 * 1024 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => (clientGone = true));
      pump();
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const id = await h.enqueue({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/stream` });
      const t = await waitFor(async () => {
        const t = await h.task(id);
        return t.status === 'succeeded' || t.status === 'failed' ? t : null;
      });
      const [a] = (await h.api('GET', `/api/v1/tasks/${id}/attempts`)).body.data;
      expect(a.response_truncated).toBe(true);
      expect(a.response_body).toHaveLength(64 * 1024);
      expect(a.error).toMatch(/cut off after 10485760 bytes/);
      expect(t.status).toBe('succeeded');
      await waitFor(() => clientGone);
      expect(sent).toBeLessThan(32 * 1024 * 1024);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('an address outside the allowlist is still refused', async () => {
    expect((await h.api('POST', '/api/v1/queue', { url: 'http://127.0.0.2/' })).body.code).toBe('target_not_allowed');
  });
});
