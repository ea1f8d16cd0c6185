// What only a real socket shows: a client that stalls its body (408 after 10 s, logged as a
// slow client, not as the database being away), and the client address behind a reverse proxy
// (POSTHORN_TRUSTED_PROXIES) for the failed-authentication limit and the logs.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '../gateway/server.ts';
import { ConfigError, parseConfig } from '../shared/config.ts';
import { createTestDb, seedTeam, type TestDb } from './helpers/db.ts';
import { captureLogger } from './helpers/log.ts';

type Gw = Awaited<ReturnType<typeof startGateway>>;
let db: TestDb;
let plain: Gw; // trusts no proxy
let proxied: Gw; // trusts 127.0.0.1: the test plays the proxy
let key: string;
const log = captureLogger('info');

function start(env: Record<string, string>) {
  const config = parseConfig({ PORT: '0', HOST: '127.0.0.1', POSTHORN_RATE_LIMIT: 'off', POSTHORN_ALLOW_PRIVATE_TARGETS: 'true', ...env });
  return startGateway({ ...config, databaseUrl: db.url }, { logger: log.logger });
}

beforeAll(async () => {
  db = await createTestDb();
  key = (await seedTeam(db.sql)).keys.write;
  [plain, proxied] = await Promise.all([start({}), start({ POSTHORN_TRUSTED_PROXIES: '127.0.0.1/32, ::1' })]);
});
afterAll(async () => {
  await Promise.all([plain?.stop(), proxied?.stop()]);
  await db?.drop();
});

/** Sends `raw` over a TCP socket and never more; resolves with the response once the server closes. */
function stalledRequest(baseUrl: string, raw: string): Promise<{ status: number; text: string; ms: number }> {
  const started = Date.now();
  const { port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within 30 s; got: ${text}`));
    }, 30_000);
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      text += d;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(guard);
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text, ms: Date.now() - started });
    });
    socket.write(raw);
  });
}

describe('a stalled request body', () => {
  it('is answered 408 request_timeout after 10 s and logged as a slow client, not as the database', async () => {
    const head = (extra: string) =>
      `POST /api/v1/queue HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\n${extra}\r\n`;
    const [short, chunked] = await Promise.all([
      // Content-Length 100, 10 bytes sent.
      stalledRequest(plain.url, `${head('Content-Length: 100\r\n')}{"url":"ht`),
      // A chunked body that stops after its first chunk; through the proxy, for the log's client.
      stalledRequest(proxied.url, `${head('Transfer-Encoding: chunked\r\nX-Forwarded-For: 198.51.100.9\r\n')}a\r\n{"url":"ht\r\n`),
    ]);
    for (const r of [short, chunked]) {
      expect(r.status, r.text).toBe(408);
      expect(r.text).toContain('"code":"request_timeout"');
      expect(r.text.toLowerCase()).toContain('application/problem+json');
      // Not the 503 at 4.5 s it was: the client had its 10 s.
      expect(r.ms).toBeGreaterThanOrEqual(9_500);
    }
    const lines = log.records();
    const slow = lines.filter((l) => /slow client/.test(l.msg));
    expect(slow).toHaveLength(2);
    expect(slow.map((l) => l.client).sort()).toEqual(['127.0.0.1', '198.51.100.9']);
    expect(lines.some((l) => /database/.test(l.msg))).toBe(false);
    // The gateway still serves.
    const ok = await fetch(`${plain.url}/api/v1/queue`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'http://127.0.0.1:9/x' }),
    });
    expect(ok.status).toBe(202);
  });
});

describe('POSTHORN_TRUSTED_PROXIES', () => {
  const fail = (gw: Gw, xff?: string) =>
    fetch(`${gw.url}/api/v1/tasks`, {
      headers: { authorization: 'Bearer ph_wrongwrongwrongwrongwrongwrongwrong', ...(xff ? { 'x-forwarded-for': xff } : {}) },
    }).then((r) => r.status);

  it('behind a trusted proxy, failed authentications count per client named by X-Forwarded-For', async () => {
    for (let i = 0; i < 20; i++) expect(await fail(proxied, '203.0.113.5')).toBe(401);
    expect(await fail(proxied, '203.0.113.5')).toBe(429);
    // Another client behind the same proxy is not blocked by the first one's failures.
    expect(await fail(proxied, '203.0.113.6')).toBe(401);
    // Read from the right: what the client wrote itself (left of the proxy's entry) is not believed.
    expect(await fail(proxied, '203.0.113.6, 203.0.113.5')).toBe(429);
    expect(await fail(proxied, '203.0.113.5, 203.0.113.6')).toBe(401);
    // A trusted hop in the chain is skipped: the client is the rightmost untrusted entry.
    expect(await fail(proxied, '203.0.113.5, 127.0.0.1')).toBe(429);
  });

  it('without it, X-Forwarded-For is ignored: the TCP peer is the client', async () => {
    for (let i = 0; i < 20; i++) expect(await fail(plain, `192.0.2.${i}`)).toBe(401);
    expect(await fail(plain, '192.0.2.200')).toBe(429);
  });

  it('is parsed once at start: addresses and CIDR ranges, anything else stops the process', () => {
    expect(parseConfig({ POSTHORN_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.7,fd00::/8, ::1' }).trustedProxies).toHaveLength(4);
    expect(parseConfig({}).trustedProxies).toEqual([]);
    for (const bad of ['10.0.0.0/33', 'proxy.local', '10.0.0.0/8;1.2.3.4']) {
      expect(() => parseConfig({ POSTHORN_TRUSTED_PROXIES: bad }), bad).toThrow(/POSTHORN_TRUSTED_PROXIES/);
    }
  });
});

describe('POSTHORN_RATE_LIMIT bounds', () => {
  it('count 1 to 1,000,000 and a window of 1 s to 1 h', () => {
    for (const bad of ['1/99999999999999999h', '1000001/1s', '1/999ms', '1/2h', '0/1m']) {
      expect(() => parseConfig({ POSTHORN_RATE_LIMIT: bad }), bad).toThrow(ConfigError);
    }
    expect(parseConfig({ POSTHORN_RATE_LIMIT: '1000000/1h' }).rateLimit).toMatchObject({ points: 1_000_000, windowMs: 3_600_000 });
    expect(parseConfig({ POSTHORN_RATE_LIMIT: '1/1s' }).rateLimit).toMatchObject({ points: 1, windowMs: 1000 });
  });
});
