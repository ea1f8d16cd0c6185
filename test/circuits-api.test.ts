// /api/v1/circuits and /api/v1/status-page with an in-process worker and a real target: the
// shape of a breaker, one held task's next_attempt_at, team isolation, reset, 4xx not counted,
// refusals as problem+json, and the public page's token (docs/circuits.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCircuits, teamForStatusToken } from '../gateway/api/circuit-queries.ts';
import { seedTeam } from './helpers/db.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { startSink } from './helpers/sink.ts';
import { startTarget } from './helpers/target.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
let target: Awaited<ReturnType<typeof startTarget>>;
let other: Awaited<ReturnType<typeof seedTeam>>;
const path = (origin: string, rest = '') => `/api/v1/circuits/${encodeURIComponent(origin)}${rest}`;

beforeAll(async () => {
  // A long open period: the breaker stays open while the API is looked at.
  h = await startHarness({ worker: { circuit: { openMs: 120_000, maxOpenMs: 600_000, minRequests: 10, failureRate: 0.5 } } });
  target = await startTarget({ mode: 'failing' });
  other = await seedTeam(h.sql);
});
afterAll(async () => {
  await h?.close();
  await target?.close();
});

describe('circuits API', () => {
  let openedAt: string;
  let nextProbeAt: string;

  it('opens after 10 failed attempts and shows the breaker', async () => {
    const tasks = Array.from({ length: 12 }, (_, i) => ({
      url: `${target.url}/hook?n=${i}`,
      retry: { max_retries: 0, min_backoff_ms: 10, max_backoff_ms: 10 },
    }));
    expect((await h.api('POST', '/api/v1/queue/batch', { tasks })).status).toBe(202);
    const list = await waitFor(
      async () => {
        const r = await h.api('GET', '/api/v1/circuits');
        return r.body.data?.[0]?.state === 'open' ? r.body.data : null;
      },
      { timeoutMs: 15_000, what: 'the breaker to open' },
    );
    expect(list).toHaveLength(1);
    const c = list[0];
    expect(Object.keys(c).sort()).toEqual(
      ['endpoints', 'failure_rate', 'failures', 'last_error', 'next_probe_at', 'opened_at', 'origin', 'requests', 'state'].sort(),
    );
    expect(c).toMatchObject({ origin: target.origin, state: 'open', last_error: 'HTTP 503' });
    expect(c.requests).toBeGreaterThanOrEqual(10);
    expect(c.failures).toBe(c.requests);
    expect(c.failure_rate).toBe(1);
    expect(Date.parse(c.next_probe_at) - Date.parse(c.opened_at)).toBe(120_000);
    // The query is not part of an endpoint.
    expect(c.endpoints).toEqual([{ url: `${target.origin}/hook`, last_status: 503, last_attempt_at: expect.any(String), success_rate: 0 }]);
    openedAt = c.opened_at;
    nextProbeAt = c.next_probe_at;

    const one = await h.api('GET', path(target.origin));
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ origin: target.origin, state: 'open' });
    expect(one.body.transitions).toEqual([
      { at: openedAt, from: 'closed', to: 'open', reason: expect.stringMatching(/^\d+ of \d+ attempts failed in the last 60 s$/) },
    ]);
    // The same origin spelled differently is the same breaker.
    expect((await h.api('GET', path(`${target.origin}/`))).body.origin).toBe(target.origin);
  });

  it('holds a new task back untouched: no attempt, nothing sent, next_attempt_at is the probe time', async () => {
    const before = target.hits.length;
    const id = await h.enqueue({ url: `${target.url}/hook`, body: { held: true } });
    await waitFor(async () => (await h.task(id)).next_attempt_at === nextProbeAt, { timeoutMs: 10_000, what: 'the task to be held' });
    const t = await h.task(id);
    expect(t).toMatchObject({ status: 'scheduled', attempts: 0, last_attempt: null });
    const [{ n }] = await h.sql`select count(*)::int as n from task_attempts where task_id = ${id}`;
    expect(n).toBe(0);
    expect(target.hits.length).toBe(before);
    const [row] = await h.sql`select lease_token, locked_by from tasks where id = ${id}`;
    expect(row).toEqual({ lease_token: null, locked_by: null });
  });

  it('another team sees nothing of it', async () => {
    expect((await h.api('GET', '/api/v1/circuits', undefined, { key: other.keys.read })).body).toEqual({ data: [] });
    const r = await h.api('GET', path(target.origin), undefined, { key: other.keys.read });
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect((await h.api('POST', path(target.origin, '/reset'), undefined, { key: other.keys.admin })).status).toBe(404);
  });

  it('refuses what is not an origin', async () => {
    for (const bad of ['nope', 'ftp://x.example:21', 'http://x.example/path', 'http://x.example/?q=1', 'http://u:p@x.example']) {
      const r = await h.api('GET', path(bad));
      expect(r.status, bad).toBe(400);
      expect(r.body.code).toBe('validation_failed');
    }
    // Malformed percent-encoding and an empty segment are refused too, never a 500.
    for (const raw of ['/api/v1/circuits/http%3A%2F%2Fx%E0%A4%A', '/api/v1/circuits/%', '/api/v1/circuits/%20/reset']) {
      const r = await h.api(raw.endsWith('reset') ? 'POST' : 'GET', raw);
      expect([400, 404], raw).toContain(r.status);
      expect(r.headers.get('content-type'), raw).toBe('application/problem+json');
    }
    expect((await h.api('GET', path('https://never.example'))).status).toBe(404);
  });

  it('reset needs an admin, closes it, raises both events and lets the held task run', async () => {
    expect((await h.api('POST', path(target.origin, '/reset'), undefined, { key: h.team.keys.write })).status).toBe(403);
    await target.set('healthy');
    const r = await h.api('POST', path(target.origin, '/reset'));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ state: 'closed', opened_at: null, next_probe_at: null });
    expect(r.body.transitions[0]).toMatchObject({ from: 'open', to: 'closed', reason: 'reset by an admin' });
    const events = await h.sql`select type, subject from events where team_id = ${h.team.teamId} and type like 'circuit.%' order by id`;
    expect(events).toEqual([
      { type: 'circuit.opened', subject: target.origin },
      { type: 'circuit.closed', subject: target.origin },
    ]);
    await waitFor(async () => target.hits.some((x) => x.mode === 'healthy'), { timeoutMs: 10_000, what: 'the held task to be sent' });
    // The history's current hour saw it open.
    const [c] = await listCircuits(h.sql, h.team.teamId);
    expect(c!.state).toBe('closed');
    expect(c!.history).toHaveLength(24);
    expect(c!.history.at(-1)!.state).toBe('open');
    expect(c!.history.at(-1)!.requests).toBeGreaterThanOrEqual(10);
    expect(c!.history.slice(0, -2).every((b) => b.state === 'closed' && b.requests === 0)).toBe(true);
  });

  it('4xx answers do not count as failures', async () => {
    const sink = await startSink(() => ({ status: 404, body: 'no' }));
    try {
      const tasks = Array.from({ length: 15 }, () => ({ url: `${sink.url}/gone` }));
      expect((await h.api('POST', '/api/v1/queue/batch', { tasks })).status).toBe(202);
      const origin = sink.url;
      const c = await waitFor(
        async () => {
          const r = await h.api('GET', path(origin));
          return r.status === 200 && r.body.requests === 15 ? r.body : null;
        },
        { timeoutMs: 15_000, what: '15 attempts counted' },
      );
      expect(c).toMatchObject({ state: 'closed', failures: 0, failure_rate: 0, transitions: [] });
      expect(c.endpoints[0]).toMatchObject({ url: `${origin}/gone`, last_status: 404, success_rate: 0 });
    } finally {
      await sink.close();
    }
  });
});

describe('status page', () => {
  it('publishes an unguessable URL, answers the same one again, and revokes it', async () => {
    expect((await h.api('PUT', '/api/v1/status-page', { public: true }, { key: h.team.keys.read })).status).toBe(403);
    for (const bad of [{}, { public: 'yes' }, { public: true, extra: 1 }]) {
      const r = await h.api('PUT', '/api/v1/status-page', bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
    const a = await h.api('PUT', '/api/v1/status-page', { public: true });
    expect(a.status).toBe(200);
    expect(a.body.public_url).toMatch(/^\/status\/[A-Za-z0-9_-]{43}$/);
    const b = await h.api('PUT', '/api/v1/status-page', { public: true });
    expect(b.body.public_url).toBe(a.body.public_url);
    const token = a.body.public_url.split('/').at(-1);
    expect(await teamForStatusToken(h.sql, token)).toBe(h.team.teamId);
    expect(await teamForStatusToken(h.sql, `${token.slice(0, -1)}A`)).toBe(token.endsWith('A') ? h.team.teamId : null);
    expect(await teamForStatusToken(h.sql, 'short')).toBeNull();
    const off = await h.api('PUT', '/api/v1/status-page', { public: false });
    expect(off.body).toEqual({ public_url: null });
    expect(await teamForStatusToken(h.sql, token)).toBeNull();
  });
});
