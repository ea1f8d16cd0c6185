// Delivery-time SSRF protection through a real undici request and a real server.
// Traffic only ever goes to 127.0.0.1 or ::1: public-looking addresses appear only in resolver
// answers that must be blocked before any socket is opened.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Agent, fetch, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTargetPolicy } from '../shared/targets.ts';
import { createSafeDispatcher, findBlockedError, isBlockedError, type Resolver } from '../worker/dispatcher.ts';

type TestServer = { server: Server; port: number; connections: number; requests: number };

async function startServer(host: string): Promise<TestServer> {
  const state = { connections: 0, requests: 0 } as TestServer;
  state.server = createServer((_req, res) => {
    state.requests++;
    res.end('hello');
  });
  state.server.on('connection', () => state.connections++);
  await new Promise<void>((resolve, reject) => {
    state.server.once('error', reject);
    state.server.listen(0, host, () => resolve());
  });
  state.port = (state.server.address() as AddressInfo).port;
  return state;
}

function stopServer(s: TestServer): Promise<void> {
  s.server.closeAllConnections();
  return new Promise((resolve) => s.server.close(() => resolve()));
}

/** A resolver with a fixed answer that remembers what it was asked. */
function fixedResolver(...addresses: string[]): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = async (hostname: string) => {
    calls.push(hostname);
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolve, { calls });
}

const strict = createTargetPolicy({ allowPrivate: false, allowlist: [] });
const open = createTargetPolicy({ allowPrivate: true, allowlist: [] });

const agents: Agent[] = [];
function dispatcher(...args: Parameters<typeof createSafeDispatcher>): Agent {
  const agent = createSafeDispatcher(...args);
  agents.push(agent);
  return agent;
}

async function expectBlocked(promise: Promise<unknown>, reason: string): Promise<void> {
  const err = await promise.then(
    () => expect.unreachable('request should have been blocked'),
    (e: unknown) => e,
  );
  expect(isBlockedError(err)).toBe(true);
  expect(findBlockedError(err)?.reason).toBe(reason);
}

async function body(res: Awaited<ReturnType<typeof request>>): Promise<string> {
  return res.body.text();
}

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
});

describe('safe dispatcher over IPv4', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer('127.0.0.1');
  });
  afterAll(() => stopServer(srv));
  afterEach(() => {
    srv.connections = 0;
    srv.requests = 0;
  });

  it('blocks a name that resolves to loopback, without opening a connection', async () => {
    const resolve = fixedResolver('127.0.0.1');
    const d = dispatcher(strict, { resolve });
    await expectBlocked(request(`http://evil.test:${srv.port}/`, { dispatcher: d }), '127.0.0.1 is a loopback address');
    expect(resolve.calls).toEqual(['evil.test']);
    await sleep(50);
    expect(srv.connections).toBe(0);
  });

  it('allows the same name when the address is allowlisted', async () => {
    const policy = createTargetPolicy({ allowPrivate: false, allowlist: ['127.0.0.1/32'] });
    const d = dispatcher(policy, { resolve: fixedResolver('127.0.0.1') });
    const res = await request(`http://evil.test:${srv.port}/`, { dispatcher: d });
    expect(res.statusCode).toBe(200);
    expect(await body(res)).toBe('hello');
    expect(srv.requests).toBe(1);
  });

  it('allows the same name when the name is allowlisted', async () => {
    const policy = createTargetPolicy({ allowPrivate: false, allowlist: ['EVIL.test.'] });
    const d = dispatcher(policy, { resolve: fixedResolver('127.0.0.1') });
    const res = await request(`http://evil.test:${srv.port}/`, { dispatcher: d });
    expect(res.statusCode).toBe(200);
    await body(res);
  });

  it('blocks a mixed answer (public + loopback) instead of picking the public one', async () => {
    const d = dispatcher(strict, { resolve: fixedResolver('93.184.216.34', '127.0.0.1') });
    await expectBlocked(request(`http://mixed.test:${srv.port}/`, { dispatcher: d }), '127.0.0.1 is a loopback address');
    await sleep(50);
    expect(srv.connections).toBe(0);
  });

  it('blocks an IPv4-mapped loopback answer', async () => {
    const d = dispatcher(strict, { resolve: fixedResolver('::ffff:127.0.0.1') });
    const err = await request(`http://mapped.test:${srv.port}/`, { dispatcher: d }).catch((e: unknown) => e);
    expect(isBlockedError(err)).toBe(true);
    expect(findBlockedError(err)?.reason).toContain('IPv4-mapped form of 127.0.0.1');
    expect(srv.connections).toBe(0);
  });

  it('blocks an IP literal (no lookup happens for it) and allows it with allowPrivate', async () => {
    const resolve = fixedResolver('93.184.216.34');
    const blocked = dispatcher(strict, { resolve });
    await expectBlocked(request(`http://127.0.0.1:${srv.port}/`, { dispatcher: blocked }), '127.0.0.1 is a loopback address');
    expect(resolve.calls).toEqual([]);
    await sleep(50);
    expect(srv.connections).toBe(0);

    const res = await request(`http://127.0.0.1:${srv.port}/`, { dispatcher: dispatcher(open) });
    expect(res.statusCode).toBe(200);
    await body(res);
    expect(srv.connections).toBe(1);
  });

  it('with allowPrivate, names resolve and connect normally', async () => {
    const d = dispatcher(open, { resolve: fixedResolver('127.0.0.1') });
    const res = await request(`http://anything.test:${srv.port}/`, { dispatcher: d });
    expect(res.statusCode).toBe(200);
    await body(res);
  });

  it('with allowPrivate and the default resolver, localhost works', async () => {
    const res = await request(`http://localhost:${srv.port}/`, { dispatcher: dispatcher(open) });
    expect(res.statusCode).toBe(200);
    await body(res);
  });

  it('is found through the cause chain when fetch wraps it', async () => {
    const d = dispatcher(strict, { resolve: fixedResolver('10.0.0.1') });
    const err = await fetch(`http://wrapped.test:${srv.port}/`, { dispatcher: d }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError); // "fetch failed"
    expect(isBlockedError(err)).toBe(true);
    expect(findBlockedError(err)?.reason).toBe('10.0.0.1 is a private address');
    expect(findBlockedError(new Error('x'))).toBeUndefined();
  });

  it('keeps connections alive: two requests, one connection, one lookup', async () => {
    const resolve = fixedResolver('127.0.0.1');
    const policy = createTargetPolicy({ allowPrivate: false, allowlist: ['127.0.0.0/8'] });
    const d = dispatcher(policy, { resolve });
    for (let i = 0; i < 2; i++) {
      const res = await request(`http://pooled.test:${srv.port}/`, { dispatcher: d });
      await body(res);
      // undici frees the socket a moment after the body ends; a request sent in the same tick
      // opens a second connection even with a plain Agent.
      await sleep(10);
    }
    expect(srv.requests).toBe(2);
    expect(srv.connections).toBe(1);
    expect(resolve.calls).toEqual(['pooled.test']);
  });

  it('falls back to the next checked address when one refuses', async () => {
    // Nothing listens on 127.0.0.2 at this port, so the first address is refused.
    const d = dispatcher(open, { resolve: fixedResolver('127.0.0.2', '127.0.0.1') });
    const res = await request(`http://fallback.test:${srv.port}/`, { dispatcher: d });
    expect(res.statusCode).toBe(200);
    await body(res);
  });

  it('an empty answer is a network error, not a block', async () => {
    const d = dispatcher(strict, { resolve: fixedResolver() });
    const err = await request(`http://empty.test:${srv.port}/`, { dispatcher: d }).catch((e: unknown) => e);
    expect(isBlockedError(err)).toBe(false);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOTFOUND');
  });

  it('a resolver that hangs times out as a connect timeout', async () => {
    const hang: Resolver = () => new Promise(() => {});
    const d = dispatcher(strict, { resolve: hang, connectTimeoutMs: 100 });
    const err = await request(`http://slow.test:${srv.port}/`, { dispatcher: d }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('UND_ERR_CONNECT_TIMEOUT');
    expect(isBlockedError(err)).toBe(false);
  });
});

async function canListenOnIPv6Loopback(): Promise<boolean> {
  try {
    await stopServer(await startServer('::1'));
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!(await canListenOnIPv6Loopback()))('safe dispatcher over IPv6 (::1)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer('::1');
  });
  afterAll(() => stopServer(srv));

  it('blocks the [::1] literal with 0 connections, allows it with allowPrivate', async () => {
    await expectBlocked(request(`http://[::1]:${srv.port}/`, { dispatcher: dispatcher(strict) }), '::1 is a loopback address');
    await sleep(50);
    expect(srv.connections).toBe(0);

    const res = await request(`http://[::1]:${srv.port}/`, { dispatcher: dispatcher(open) });
    expect(res.statusCode).toBe(200);
    await body(res);
    expect(srv.connections).toBe(1);
  });

  it('blocks a name resolving to ::1, allows it when ::1/128 is allowlisted', async () => {
    await expectBlocked(
      request(`http://six.test:${srv.port}/`, { dispatcher: dispatcher(strict, { resolve: fixedResolver('::1') }) }),
      '::1 is a loopback address',
    );
    const policy = createTargetPolicy({ allowPrivate: false, allowlist: ['::1/128'] });
    const res = await request(`http://six.test:${srv.port}/`, { dispatcher: dispatcher(policy, { resolve: fixedResolver('::1') }) });
    expect(res.statusCode).toBe(200);
    await body(res);
  });

  it('blocks a mixed answer of public IPv6 and ::1', async () => {
    const d = dispatcher(strict, { resolve: fixedResolver('2606:4700::1111', '::1') });
    await expectBlocked(request(`http://mixed6.test:${srv.port}/`, { dispatcher: d }), '::1 is a loopback address');
  });
});
