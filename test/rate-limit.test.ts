// Rate limits shared through PostgreSQL by two real gateway processes (docs/api.md §2): a burst
// spread over both gets exactly the configured number through (within 10%), then 429
// rate_limited with Retry-After and RateLimit-*; limits are per key and per team; a team's
// own limit set through the operator API applies; and a brute-force run of bad keys from one
// address is throttled after 20 failures while a valid key from that address still works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { type Gateway, type HttpResponse, spawnGateway } from './helpers/gateway.ts';
import { waitFor } from './helpers/net.ts';
import { killAll } from './helpers/proc.ts';

const OPERATOR = 'operator-token-for-rate-limit-tests';
const target = 'http://127.0.0.1:9/never-called'; // no worker runs in this file

let db: TestDb;
let gws: Gateway[];
const op = (method: string, path: string, body?: unknown) => gws[0]!.request(method, `/admin/v1${path}`, { key: OPERATOR, body });

async function newTeam(slug: string, rateLimit?: string) {
  const r = await op('POST', '/teams', { slug, name: slug, ...(rateLimit ? { rate_limit: rateLimit } : {}) });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.admin_key as string;
}

/** n requests, `inFlight` at a time, alternating between the gateways. */
async function burst(n: number, inFlight: number, send: (gw: Gateway, i: number) => Promise<HttpResponse>) {
  const out: HttpResponse[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await send(gws[i % gws.length]!, i);
      }
    }),
  );
  return out;
}

beforeAll(async () => {
  db = await createTestDb();
  // A default far above what these tests send: only the limits they set bite.
  gws = await Promise.all(
    [0, 1].map(() =>
      spawnGateway(db.url, { POSTHORN_OPERATOR_TOKEN: OPERATOR, POSTHORN_RATE_LIMIT: '100000/1s', POSTHORN_LOG_LEVEL: 'warn' }),
    ),
  );
});

afterAll(async () => {
  await Promise.all((gws ?? []).map((g) => g.stop()));
  await killAll();
  await db?.drop();
});

describe('per-key limit shared by two gateways', () => {
  it('a burst across both gateways gets the configured 60 per window through, then 429 with Retry-After and RateLimit-*', async () => {
    // A 20 s window: the whole burst falls inside one window even on a slow machine.
    const key = await newTeam('burst', '60/20s');
    const rs = await burst(180, 12, (gw, i) =>
      gw.request('POST', '/api/v1/queue', { key, body: { url: target, delay: '1h', label: `b${i}` } }),
    );
    const ok = rs.filter((r) => r.status === 202);
    const limited = rs.filter((r) => r.status === 429);
    expect(ok.length + limited.length).toBe(180);
    expect(ok.length).toBeGreaterThanOrEqual(54);
    expect(ok.length).toBeLessThanOrEqual(66);
    // Both gateways let some through: the count is shared, not per process.
    expect(new Set(rs.map((r, i) => (r.status === 202 ? i % 2 : -1)).filter((x) => x >= 0)).size).toBe(2);

    const refused = limited[0]!;
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.body).toMatchObject({ status: 429, code: 'rate_limited' });
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
    expect(refused.headers.get('ratelimit-limit')).toBe('60');
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(refused.headers.get('ratelimit-reset'))).toBeLessThanOrEqual(20);
    const passed = ok[0]!;
    expect(passed.headers.get('ratelimit-limit')).toBe('60');
    expect(Number(passed.headers.get('ratelimit-remaining'))).toBeLessThan(60);
    // A refused request changed nothing: exactly the accepted tasks exist.
    const [{ n }] = (await db.sql`select count(*)::int as n from tasks where label like 'b%'`) as unknown as [{ n: number }];
    expect(n).toBe(ok.length);
  });

  it('the count is per key: a second key of the same team, and another team, are not held back', async () => {
    const admin = await newTeam('per-key', '5/20s');
    const first = await burst(8, 4, (gw) => gw.request('GET', '/api/v1/tasks?limit=1', { key: admin }));
    expect(first.filter((r) => r.status === 200)).toHaveLength(5);
    expect(first.filter((r) => r.status === 429)).toHaveLength(3);
    // Key management is limited like everything else...
    expect((await gws[0]!.request('POST', '/api/v1/keys', { key: admin, body: { role: 'read' } })).status).toBe(429);
    // ...so make the second key from the shell's side of things: the database.
    const { createKey } = await import('../shared/keys.ts');
    const [team] = await db.sql`select id from teams where slug = 'per-key'`;
    const second = (await createKey(db.sql, String(team!.id), 'second', 'read')).key;
    for (const gw of gws) expect((await gw.request('GET', '/api/v1/tasks?limit=1', { key: second })).status).toBe(200);
    const other = await newTeam('per-key-other');
    expect((await gws[1]!.request('GET', '/api/v1/tasks?limit=1', { key: other })).status).toBe(200);
  });

  it("a team's limit changed through the operator API applies on every gateway within 5 s", async () => {
    const key = await newTeam('patched');
    const before = await gws[1]!.request('GET', '/api/v1/tasks?limit=1', { key });
    expect(before.headers.get('ratelimit-limit')).toBe('100000');
    expect((await op('PATCH', '/teams/patched', { rate_limit: '3/20s' })).status).toBe(200);
    for (const gw of gws) {
      await waitFor(async () => (await gw.request('GET', '/api/v1/tasks?limit=1', { key })).headers.get('ratelimit-limit') === '3', {
        timeoutMs: 5000,
        intervalMs: 100,
        what: 'the new limit on every gateway',
      });
    }
    const rs = await burst(6, 1, (gw) => gw.request('GET', '/api/v1/tasks?limit=1', { key }));
    expect(rs.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(3);
  });
});

describe('failed authentication per client address', () => {
  // Last in this file: it leaves 127.0.0.1 throttled for unknown keys on both gateways.
  it('20 bad keys in a minute, then 429 for unknown keys from that address; valid keys still pass', async () => {
    const valid = await newTeam('brute');
    const guess = (i: number) => `ph_${String(i).padStart(40, 'x')}`;
    const rs: HttpResponse[] = [];
    for (let i = 0; i < 30; i++) rs.push(await gws[i % 2]!.request('GET', '/api/v1/tasks', { key: guess(i) }));
    const statuses = rs.map((r) => r.status);
    // Counted across both gateways: 20 failures, then throttled.
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
    expect(statuses.slice(20)).toEqual(Array(10).fill(429));
    const throttled = rs[29]!;
    expect(throttled.body.code).toBe('rate_limited');
    const retryAfter = Number(throttled.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // Any request that does not authenticate is refused from that address now...
    for (const gw of gws) {
      expect((await gw.request('GET', '/api/v1/tasks', { key: guess(99) })).status).toBe(429);
      expect((await gw.request('GET', '/api/v1/tasks', { key: 'not-even-a-key' })).status).toBe(429);
      expect((await gw.request('GET', '/admin/v1/teams', { key: 'wrong-operator-token' })).status).toBe(429);
    }
    // ...but a valid key from the same address is not affected.
    for (const gw of gws) {
      expect((await gw.request('GET', '/api/v1/tasks', { key: valid })).status).toBe(200);
      expect((await gw.request('POST', '/api/v1/queue', { key: valid, body: { url: target, delay: '1h' } })).status).toBe(202);
    }
  });
});
