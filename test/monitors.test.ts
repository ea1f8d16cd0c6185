// Heartbeat monitors: the API, pings without a key, and the overdue logic driven by a clock the
// test passes in (markOverdue(sql, now), recordPing(..., now)): no sleeps. Down and up each
// record exactly one event, also with two "leaders" checking at once or one dying mid-pass.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as shapes from '../gateway/api/responses.ts';
import { markOverdue, recordPing } from '../shared/monitors.ts';
import { describe as describeMessage } from '../worker/notify/messages.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';

let h: Awaited<ReturnType<typeof startHarness>>;

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.close();
});

const create = (body: Record<string, unknown>) => h.api('POST', '/api/v1/monitors', body);
const tokenOf = (m: { ping_url: string }) => m.ping_url.slice('/ping/'.length);
const ping = (m: { ping_url: string }, suffix = '', method = 'GET') => h.app.request(`${m.ping_url}${suffix}`, { method });
const events = async (subject: string) =>
  (await h.sql`select type, data from events where subject = ${subject} order by id`) as unknown as { type: string; data: any }[];
const statusOf = async (id: string) => (await h.api('GET', `/api/v1/monitors/${id}`)).body.status as string;
const at = (iso: string) => new Date(iso);

describe('the API', () => {
  it('creates an interval monitor: status new, an unguessable ping_url, default grace 300 s', async () => {
    const r = await create({ name: 'backup', interval_seconds: 3600 });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ name: 'backup', status: 'new', interval_seconds: 3600, cron: null, grace_seconds: 300, paused: false });
    expect(r.body.ping_url).toMatch(/^\/ping\/[A-Za-z0-9]{24}$/);
    expect(r.body.next_expected_at).not.toBeNull();
    expect(shapes.monitorSchema.parse(r.body)).toEqual(r.body); // exactly the documented fields
    expect((await h.api('GET', '/api/v1/monitors')).body.data.map((m: { id: string }) => m.id)).toContain(r.body.id);
  });

  it('refuses bad input with a 400 naming the field, a taken name with 409; nothing is stored', async () => {
    const before = (await h.sql`select count(*)::int as n from monitors`)[0]!.n;
    for (const [body, path] of [
      [{ name: 'x' }, 'interval_seconds'],
      [{ name: 'x', interval_seconds: 60, cron: '* * * * *' }, 'interval_seconds'],
      [{ name: 'x', cron: '61 * * * *' }, 'cron'],
      [{ name: 'x', cron: '0 9 * * *', timezone: 'Mars/Base' }, 'timezone'],
      [{ name: 'x', interval_seconds: 0 }, 'interval_seconds'],
      [{ name: 'x', interval_seconds: 60, grace_seconds: -1 }, 'grace_seconds'],
      [{ name: 'x', interval_seconds: 60, extra: true }, 'extra'],
      [{ name: '\ud800', interval_seconds: 60 }, 'name'],
    ] as const) {
      const r = await create(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    expect((await create({ name: 'taken', interval_seconds: 60 })).status).toBe(201);
    expect((await create({ name: 'taken', interval_seconds: 60 })).status).toBe(409);
    expect((await h.sql`select count(*)::int as n from monitors`)[0]!.n).toBe(before + 1);
  });

  it('patches timing (interval to cron and back), pauses, deletes; another team sees 404', async () => {
    const m = (await create({ name: 'patchy', interval_seconds: 60 })).body;
    const p = await h.api('PATCH', `/api/v1/monitors/${m.id}`, { cron: '30 2 * * *', timezone: 'Europe/Oslo' });
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ cron: '30 2 * * *', timezone: 'Europe/Oslo', interval_seconds: null });
    expect((await h.api('PATCH', `/api/v1/monitors/${m.id}`, { interval_seconds: 120 })).body).toMatchObject({
      interval_seconds: 120,
      cron: null,
    });
    expect((await h.api('PATCH', `/api/v1/monitors/${m.id}`, { grace_seconds: 'x' })).status).toBe(400);
    expect((await h.api('DELETE', `/api/v1/monitors/${m.id}`, undefined, { key: h.team.keys.read })).status).toBe(403);
    expect((await h.api('DELETE', `/api/v1/monitors/${m.id}`)).status).toBe(204);
    expect((await h.api('GET', `/api/v1/monitors/${m.id}`)).status).toBe(404);
    expect((await h.api('GET', '/api/v1/monitors/not-a-uuid')).status).toBe(404);
  });
});

describe('pings and the overdue check (the clock passed in)', () => {
  it('new → up on the first ping; down only after expected time plus grace; up again on the next ping', async () => {
    const m = (await create({ name: 'nightly', interval_seconds: 600, grace_seconds: 60 })).body;
    const token = tokenOf(m);
    // A new monitor never goes down, however late it is.
    expect((await markOverdue(h.sql, at('2099-01-01T00:00:00Z'))).down).not.toContain(m.id);
    const t0 = at('2030-01-01T00:00:00Z');
    expect(await recordPing(h.sql, { token, kind: 'success', method: 'GET', userAgent: 'cron' }, t0)).toMatchObject({
      status: 'up',
      previous: 'new',
    });
    const row = (await h.api('GET', `/api/v1/monitors/${m.id}`)).body;
    expect(row).toMatchObject({ status: 'up', last_ping_at: '2030-01-01T00:00:00.000Z', next_expected_at: '2030-01-01T00:10:00.000Z' });
    // Due at 00:10, late from 00:11 (grace 60 s).
    expect((await markOverdue(h.sql, at('2030-01-01T00:10:59.999Z'))).down).not.toContain(m.id);
    expect(await statusOf(m.id)).toBe('up');
    expect((await markOverdue(h.sql, at('2030-01-01T00:11:00Z'))).down).toContain(m.id);
    expect(await statusOf(m.id)).toBe('down');
    expect((await markOverdue(h.sql, at('2030-01-01T05:00:00Z'))).down).not.toContain(m.id);
    expect((await events(m.id)).map((e) => e.type)).toEqual(['monitor.down']);
    expect((await events(m.id))[0]!.data).toMatchObject({
      monitor_name: 'nightly',
      reason: 'late',
      last_ping_at: '2030-01-01T00:00:00.000Z',
    });
    await recordPing(h.sql, { token, kind: 'success', method: 'POST', userAgent: null }, at('2030-01-01T06:00:00Z'));
    expect(await statusOf(m.id)).toBe('up');
    await recordPing(h.sql, { token, kind: 'success', method: 'POST', userAgent: null }, at('2030-01-01T06:05:00Z'));
    expect((await events(m.id)).map((e) => e.type)).toEqual(['monitor.down', 'monitor.up']);
  });

  it('/fail is down at once (one event, reason fail), a later ping brings it up; pings are listed newest first', async () => {
    const m = (await create({ name: 'failing', interval_seconds: 60 })).body;
    expect((await ping(m)).status).toBe(200);
    const f = await ping(m, '/fail', 'POST');
    expect(f.status).toBe(200);
    expect(await f.json()).toEqual(shapes.pingedSchema.parse({ ok: true, status: 'down' }));
    expect((await ping(m, '/fail')).status).toBe(200);
    expect((await events(m.id)).map((e) => [e.type, e.data.reason])).toEqual([['monitor.down', 'fail']]);
    expect((await ping(m, '', 'POST')).status).toBe(200);
    expect((await events(m.id)).map((e) => e.type)).toEqual(['monitor.down', 'monitor.up']);
    const pings = await h.api('GET', `/api/v1/monitors/${m.id}/pings`);
    expect(shapes.monitorPingListSchema.parse(pings.body)).toEqual(pings.body);
    expect(pings.body.data.map((p: { kind: string; method: string }) => `${p.kind}/${p.method}`)).toEqual([
      'success/POST',
      'fail/GET',
      'fail/POST',
      'success/GET',
    ]);
  });

  it('an unknown token is 404, a paused monitor 410 (problem+json), and neither records anything', async () => {
    const m = (await create({ name: 'paused', interval_seconds: 60, paused: true })).body;
    const r = await ping(m);
    expect(r.status).toBe(410);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect((await h.app.request('/ping/AAAAAAAAAAAAAAAAAAAAAAAA')).status).toBe(404);
    expect((await h.app.request('/ping/bad%00token/fail')).status).toBe(404);
    expect((await h.api('GET', `/api/v1/monitors/${m.id}/pings`)).body.data).toEqual([]);
    // Resumed, it waits for a ping like a new one.
    expect((await h.api('PATCH', `/api/v1/monitors/${m.id}`, { paused: false })).body.status).toBe('new');
  });

  it('a cron monitor expects its next tick in its time zone', async () => {
    const m = (await create({ name: 'oslo-9', cron: '0 9 * * *', timezone: 'Europe/Oslo', grace_seconds: 0 })).body;
    await recordPing(h.sql, { token: tokenOf(m), kind: 'success', method: 'GET', userAgent: null }, at('2030-06-01T07:00:05Z'));
    // 09:00 in Oslo in June is 07:00 UTC.
    expect((await h.api('GET', `/api/v1/monitors/${m.id}`)).body.next_expected_at).toBe('2030-06-02T07:00:00.000Z');
    expect((await markOverdue(h.sql, at('2030-06-02T06:59:59Z'))).down).not.toContain(m.id);
    expect((await markOverdue(h.sql, at('2030-06-02T07:00:00Z'))).down).toContain(m.id);
  });

  it('two leaders checking at once send one down; a leader that dies mid-pass loses none', async () => {
    const a = (await create({ name: 'race', interval_seconds: 60, grace_seconds: 0 })).body;
    await recordPing(h.sql, { token: tokenOf(a), kind: 'success', method: 'GET', userAgent: null }, at('2031-01-01T00:00:00Z'));
    const late = at('2031-01-01T00:02:00Z');
    const [x, y] = await Promise.all([markOverdue(h.sql, late), markOverdue(h.sql, late)]);
    expect([...x.down, ...y.down].filter((id) => id === a.id)).toHaveLength(1);
    expect((await events(a.id)).map((e) => e.type)).toEqual(['monitor.down']);

    // A leader's pass that took the row and died before commit: rolled back, nothing sent.
    const b = (await create({ name: 'dies', interval_seconds: 60, grace_seconds: 0 })).body;
    await recordPing(h.sql, { token: tokenOf(b), kind: 'success', method: 'GET', userAgent: null }, at('2031-01-01T00:00:00Z'));
    const dying = h.sql.begin(async (tx) => {
      await tx`update monitors set status = 'down' where id = ${b.id}`; // holds the row lock, like a pass in progress
      // The other leader meanwhile skips the locked row instead of waiting or marking it twice.
      expect((await markOverdue(h.sql, late)).down).not.toContain(b.id);
      throw new Error('the old leader died');
    });
    await expect(dying).rejects.toThrow('died');
    expect(await statusOf(b.id)).toBe('up');
    expect((await markOverdue(h.sql, late)).down).toContain(b.id);
    expect((await events(b.id)).map((e) => e.type)).toEqual(['monitor.down']);
  });

  it('the overdue select is an index scan of monitors_overdue', async () => {
    await h.sql`set enable_seqscan = off`;
    const plan = await h.sql.unsafe(
      `explain select team_id, id from monitors where status = 'up' and not paused and down_at <= now() order by down_at limit 1000`,
    );
    await h.sql`reset enable_seqscan`;
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain('monitors_overdue');
  });
});

describe('notifications', () => {
  it('monitor.down says late or failed, monitor.up says it checked in, with a link to /ui/monitors', () => {
    const msg = (type: string, data: Record<string, unknown>) =>
      describeMessage({ kind: 'event', type, subject: 'm-1', occurred_at: '2030-01-01T00:00:00Z', data }, 'https://ph.example');
    expect(msg('monitor.down', { monitor_name: 'nightly', reason: 'late', last_ping_at: '2030-01-01T00:00:00.000Z' }).lines[0]).toBe(
      'Monitor "nightly" missed its check-in (last ping 2030-01-01T00:00:00.000Z).',
    );
    expect(msg('monitor.down', { monitor_name: 'nightly', reason: 'fail' }).lines[0]).toBe('Monitor "nightly" reported a failure.');
    const up = msg('monitor.up', { monitor_name: 'nightly' });
    expect(up.lines[0]).toBe('Monitor "nightly" checked in again.');
    expect(up.link?.url).toBe('https://ph.example/ui/monitors');
  });
});

describe('with a leader', () => {
  it("the leader's checker marks a late monitor down on its own", async () => {
    const w = await startHarness({ worker: { metricsPort: 0 } });
    try {
      await waitFor(() => w.worker!.elector.isLeader(), { what: 'the worker to lead' });
      const m = (await w.api('POST', '/api/v1/monitors', { name: 'quick', interval_seconds: 1, grace_seconds: 0 })).body;
      expect((await w.app.request(m.ping_url)).status).toBe(200);
      await waitFor(async () => (await w.api('GET', `/api/v1/monitors/${m.id}`)).body.status === 'down', {
        what: 'the monitor to go down',
      });
      const ev = await w.sql`select type from events where subject = ${m.id}`;
      expect(ev.map((e) => e.type)).toEqual(['monitor.down']);
    } finally {
      await w.close();
    }
  });
});
