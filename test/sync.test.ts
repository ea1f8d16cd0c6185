// PUT /api/v1/sync: schedules, monitors and endpoints by name in one transaction. Idempotent
// (a second identical PUT changes nothing and says so), delete_removed, admin only, and every
// bad document is a 4xx that changes nothing.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncResultSchema } from '../gateway/api/responses.ts';
import { startHarness } from './helpers/harness.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
beforeAll(async () => {
  h = await startHarness({ worker: false, allowPrivate: false });
});
afterAll(async () => {
  await h?.close();
});

const sync = (body: unknown, key?: string) => h.api('PUT', '/api/v1/sync', body, key ? { key } : {});
const empty = { schedules: [], monitors: [], endpoints: [] };

/** Every row of the three tables, as a snapshot to compare before and after. */
async function snapshot() {
  return {
    schedules: await h.sql`select * from schedules order by id`,
    monitors: await h.sql`select * from monitors order by id`,
    endpoints: await h.sql`select * from endpoints order by id`,
  };
}

const doc = {
  schedules: [
    { name: 'nightly-report', cron: '0 3 * * *', timezone: 'Europe/Oslo', url: 'https://example.com/report', body: { full: true } },
    { name: 'ping-5m', cron: '*/5 * * * *', url: 'https://example.com/ping', method: 'GET' },
  ],
  monitors: [
    { name: 'backup', interval_seconds: 86400, grace_seconds: 3600 },
    { name: 'billing-cron', cron: '0 9 * * 1-5', timezone: 'America/New_York' },
  ],
  endpoints: [{ name: 'stripe', forward_url: 'https://example.com/stripe', retry: { max_retries: 3 }, queue: 'webhooks' }],
};

describe('sync', () => {
  it('creates what is missing, and a second identical PUT changes nothing and says so', async () => {
    const first = await sync(doc);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      changed: true,
      created: { schedules: ['nightly-report', 'ping-5m'], monitors: ['backup', 'billing-cron'], endpoints: ['stripe'] },
      updated: empty,
      unchanged: empty,
      deleted: empty,
    });
    expect(syncResultSchema.parse(first.body)).toEqual(first.body);
    const before = await snapshot();
    const second = await sync(doc);
    expect(second.body).toEqual({
      changed: false,
      created: empty,
      updated: empty,
      unchanged: { schedules: ['nightly-report', 'ping-5m'], monitors: ['backup', 'billing-cron'], endpoints: ['stripe'] },
      deleted: empty,
    });
    expect(await snapshot()).toEqual(before);
    const schedules = (await h.api('GET', '/api/v1/schedules')).body.data;
    expect(schedules.find((s: { name: string }) => s.name === 'nightly-report')).toMatchObject({
      timezone: 'Europe/Oslo',
      body: { full: true },
    });
  });

  it('updates what changed, keeps ids, slugs and tokens, and leaves the rest alone', async () => {
    const before = await snapshot();
    const changed = structuredClone(doc) as any;
    changed.schedules[0]!.cron = '0 4 * * *';
    changed.monitors[0]!.grace_seconds = 60;
    changed.endpoints[0]!.forward_url = 'https://example.com/stripe-v2';
    const r = await sync(changed);
    expect(r.body).toMatchObject({
      changed: true,
      updated: { schedules: ['nightly-report'], monitors: ['backup'], endpoints: ['stripe'] },
      unchanged: { schedules: ['ping-5m'], monitors: ['billing-cron'], endpoints: [] },
    });
    const after = await snapshot();
    expect(after.endpoints.map((e) => [e.id, e.slug])).toEqual(before.endpoints.map((e) => [e.id, e.slug]));
    expect(after.monitors.map((m) => [m.id, m.token])).toEqual(before.monitors.map((m) => [m.id, m.token]));
    expect(after.endpoints[0]!.forward_url).toBe('https://example.com/stripe-v2');
    expect((await sync(changed)).body.changed).toBe(false);
  });

  it('delete_removed deletes unnamed items of the kinds given, and only those kinds', async () => {
    await h.api('POST', '/api/v1/endpoints', { name: 'by-hand', forward_url: 'https://example.com/h' });
    const r = await sync({ monitors: [{ name: 'backup', interval_seconds: 86400, grace_seconds: 60 }], delete_removed: true });
    expect(r.status).toBe(200);
    expect(r.body.deleted).toEqual({ schedules: [], monitors: ['billing-cron'], endpoints: [] });
    expect(r.body.unchanged.monitors).toEqual(['backup']);
    expect((await h.api('GET', '/api/v1/endpoints')).body.data.map((e: { name: string }) => e.name).sort()).toEqual(['by-hand', 'stripe']);
    const all = await sync({ endpoints: [], delete_removed: true });
    expect(all.body.deleted.endpoints.sort()).toEqual(['by-hand', 'stripe']);
    // Without delete_removed nothing is deleted.
    expect((await sync({ schedules: [] })).body.changed).toBe(false);
    expect((await h.api('GET', '/api/v1/schedules')).body.data).toHaveLength(2);
  });

  it('every bad document is a 4xx problem that changes nothing, naming the item', async () => {
    const before = await snapshot();
    const cases: [unknown, number, string | null][] = [
      [{ schedules: [{ name: 'x', cron: 'nope', url: 'https://example.com' }] }, 400, 'schedules.0.cron'],
      [
        {
          monitors: [
            { name: 'a', interval_seconds: 60 },
            { name: 'a', interval_seconds: 60 },
          ],
        },
        400,
        'monitors.1.name',
      ],
      [
        { endpoints: [{ name: 'e', forward_url: 'http://127.0.0.1:1/x' }], monitors: [{ name: 'new-one', interval_seconds: 5 }] },
        400,
        'endpoints.0.forward_url',
      ],
      [{ schedules: [{ name: 's', cron: '* * * * *', url: 'http://localhost/x' }] }, 400, 'schedules.0.url'],
      [{ monitors: [{ name: 'ok', interval_seconds: 60 }], endpoints: [{ name: 'e' }] }, 400, 'endpoints.0.forward_url'],
      [{ widgets: [] }, 400, 'widgets'],
      [{ schedules: 'all' }, 400, 'schedules'],
      [{ delete_removed: 'yes' }, 400, 'delete_removed'],
      [[], 400, null],
    ];
    for (const [body, status, path] of cases) {
      const r = await sync(body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      if (path) expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    expect(
      (await h.api('PUT', '/api/v1/sync', undefined, { raw: '{"monitors": [', headers: { 'content-type': 'application/json' } })).status,
    ).toBe(400);
    expect((await sync(doc, h.team.keys.write)).status).toBe(403);
    expect((await sync(doc, 'ph_wrongwrongwrongwrongwrongwrongwrong')).status).toBe(401);
    expect(await snapshot()).toEqual(before);
  });

  it('a schedule name the team uses twice is a 409 and nothing changes', async () => {
    await h.api('POST', '/api/v1/schedules', { name: 'twin', cron: '* * * * *', url: 'https://example.com/a' });
    await h.api('POST', '/api/v1/schedules', { name: 'twin', cron: '* * * * *', url: 'https://example.com/b' });
    const before = await snapshot();
    const r = await sync({
      schedules: [{ name: 'twin', cron: '0 * * * *', url: 'https://example.com/c' }],
      monitors: [{ name: 'm9', interval_seconds: 9 }],
    });
    expect(r.status).toBe(409);
    expect(await snapshot()).toEqual(before);
  });

  it('docs/sync-example.json is a valid document', async () => {
    const example = JSON.parse(readFileSync(new URL('../docs/sync-example.json', import.meta.url), 'utf8'));
    const r = await sync(example);
    expect(r.status).toBe(200);
    expect((await sync(example)).body.changed).toBe(false);
  });
});
