// A burst of 5,000 webhooks to one inbound endpoint over real HTTP, through a gateway with the
// shared rate limiter on: every request answered 202 is stored, with its task (no loss), and
// past the per-endpoint limit requests are refused 429 and stored nowhere.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../gateway/app.ts';
import { createEnqueueBatcher } from '../gateway/enqueue-batcher.ts';
import { createGatewayLimits } from '../gateway/rate-limit.ts';
import { rateLimitSchema } from '../shared/config.ts';
import { startHarness } from './helpers/harness.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await h?.close();
});

/** A real gateway on 127.0.0.1 with the given per-endpoint limit. */
async function gateway(inboundLimit: string) {
  const limits = createGatewayLimits({ sql: h.sql, defaultLimit: null, inboundLimit: rateLimitSchema.parse(inboundLimit) });
  const batcher = createEnqueueBatcher(h.sql);
  const app = createApp({ sql: h.sql, batcher, logger: pino({ level: 'silent' }), maxBodyBytes: 1_048_576, limits });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((ok) => server.once('listening', ok));
  const agent = new Agent({ connections: 64 });
  closers.push(async () => {
    await agent.close();
    await new Promise<void>((ok) => server.close(() => ok()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, agent };
}

async function endpoint(name: string) {
  const r = await h.api('POST', '/api/v1/endpoints', { name, forward_url: 'https://example.com/hook' });
  expect(r.status).toBe(201);
  return r.body as { id: string; slug: string };
}

/** Sends n POSTs with `parallel` in flight; returns the statuses in order. */
async function burst(url: string, agent: Agent, n: number, parallel: number) {
  const statuses: number[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        const i = next++;
        const res = await request(url, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json', 'x-delivery': String(i) },
          body: JSON.stringify({ n: i }),
        });
        await res.body.dump();
        statuses[i] = res.statusCode;
      }
    }),
  );
  return statuses;
}

describe('an inbound burst', () => {
  it('5,000 requests at once are all answered 202 and all stored, each with its task', async () => {
    const g = await gateway(process.env.I16_OFF ? '1000000/1h' : '100000/1m');
    const t0 = Date.now();
    const ep = await endpoint('burst');
    const statuses = await burst(`${g.url}/in/${ep.slug}`, g.agent, 5000, 200);
    console.log('burst ms', Date.now() - t0);
    expect(statuses.filter((s) => s === 202)).toHaveLength(5000);
    const [counts] = await h.sql`
      select count(*)::int as events, count(distinct e.body)::int as bodies, count(t.id)::int as tasks
      from endpoint_events e left join tasks t on t.team_id = e.team_id and t.id = e.task_id
      where e.team_id = ${h.team.teamId} and e.endpoint_id = ${ep.id}`;
    expect(counts).toEqual({ events: 5000, bodies: 5000, tasks: 5000 });
  });

  it('past the per-endpoint limit: 429 with Retry-After, and only the accepted requests are stored', async () => {
    const g = await gateway('20/1m');
    const ep = await endpoint('limited');
    const other = await endpoint('other');
    const statuses = await burst(`${g.url}/in/${ep.slug}`, g.agent, 50, 10);
    expect(statuses.filter((s) => s === 202)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30);
    const refused = await request(`${g.url}/in/${ep.slug}`, { method: 'POST', body: 'x', dispatcher: g.agent });
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    await refused.body.dump();
    // Another endpoint has a count of its own.
    expect((await burst(`${g.url}/in/${other.slug}`, g.agent, 5, 5)).every((s) => s === 202)).toBe(true);
    const [n] = await h.sql`select count(*)::int as n from endpoint_events where endpoint_id = ${ep.id}`;
    expect(n!.n).toBe(20);
  });
});
