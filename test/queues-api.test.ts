// /api/v1/queues (docs/api.md §6, docs/queues.md) without workers: create, replace, read with
// counts per status and the oldest pending age, list, delete; roles, team isolation, bad
// input as problem+json; flow_control stored and shown on the task; the counts read an index.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedTeam } from './helpers/db.ts';
import { startHarness } from './helpers/harness.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
let other: Awaited<ReturnType<typeof seedTeam>>;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  other = await seedTeam(h.sql);
});
afterAll(async () => h?.close());

describe('queues API', () => {
  it('creates, replaces, reads and deletes a queue', async () => {
    const put = await h.api('PUT', '/api/v1/queues/emails', { parallelism: 2, rate_per_second: 10 });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body).toMatchObject({ name: 'emails', parallelism: 2, rate_per_second: 10, paused: false, configured: true });
    expect(put.body.counts).toEqual({ scheduled: 0, pending: 0, running: 0, retrying: 0, succeeded: 0, failed: 0, canceled: 0 });
    expect(put.body.oldest_pending_age_ms).toBeNull();

    // Replace: a field left out is no limit.
    const again = await h.api('PUT', '/api/v1/queues/emails', { paused: true });
    expect(again.body).toMatchObject({ parallelism: null, rate_per_second: null, paused: true });
    expect(again.body.created_at).toBe(put.body.created_at);

    const list = await h.api('GET', '/api/v1/queues');
    expect(list.status).toBe(200);
    expect(list.body.data.map((q: { name: string }) => q.name)).toEqual(['emails']);
    expect(list.body.next_cursor).toBeNull();

    expect((await h.api('DELETE', '/api/v1/queues/emails')).status).toBe(204);
    expect((await h.api('DELETE', '/api/v1/queues/emails')).status).toBe(404);
    expect((await h.api('GET', '/api/v1/queues/emails')).status).toBe(404);
  });

  it('counts tasks per status and the oldest pending age', async () => {
    await h.api('PUT', '/api/v1/queues/reports', { parallelism: 1 });
    const url = 'http://127.0.0.1:9/x';
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await h.enqueue({ url, queue: 'reports' }));
    await h.enqueue({ url, queue: 'reports', delay: '1h' });
    await h.enqueue({ url, queue: 'elsewhere' });
    // Make the oldest one look 5 s overdue, another failed, another retrying.
    await h.sql`update tasks set run_at = now() - interval '5 seconds' where id = ${ids[0]!}`;
    await h.sql`update tasks set status = 'failed', finished_at = now() where id = ${ids[1]!}`;
    await h.sql`update tasks set status = 'retrying', run_at = now() + interval '1 minute' where id = ${ids[2]!}`;
    const r = await h.api('GET', '/api/v1/queues/reports');
    expect(r.status).toBe(200);
    expect(r.body.counts).toEqual({ scheduled: 1, pending: 1, running: 0, retrying: 1, succeeded: 0, failed: 1, canceled: 0 });
    expect(r.body.oldest_pending_age_ms).toBeGreaterThanOrEqual(5000);
    expect(r.body.oldest_pending_age_ms).toBeLessThan(60_000);

    // A name tasks use but with no settings: shown without limits.
    const loose = await h.api('GET', '/api/v1/queues/elsewhere');
    expect(loose.status).toBe(200);
    expect(loose.body).toMatchObject({ configured: false, parallelism: null, rate_per_second: null, paused: false, created_at: null });
    expect(loose.body.counts.pending).toBe(1);
    // Listed are the configured ones only.
    expect((await h.api('GET', '/api/v1/queues')).body.data.map((q: { name: string }) => q.name)).toEqual(['reports']);
  });

  it('reads the counts from an index, not the table', async () => {
    const plan = await h.sql.begin(async (tx) => {
      await tx`set local enable_seqscan = off`;
      const rows = await tx`
        explain select queue, status, count(*) from tasks where team_id = ${h.team.teamId} and queue = any(${['reports']}::text[]) group by queue, status`;
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    expect(plan).toContain('tasks_queue_status');
    expect(plan).not.toMatch(/Seq Scan/);
  });

  it('keeps teams apart and checks roles', async () => {
    await h.api('PUT', '/api/v1/queues/mine', { parallelism: 3 });
    expect((await h.api('GET', '/api/v1/queues/mine', undefined, { key: other.keys.admin })).status).toBe(404);
    expect((await h.api('DELETE', '/api/v1/queues/mine', undefined, { key: other.keys.admin })).status).toBe(404);
    expect((await h.api('GET', '/api/v1/queues', undefined, { key: other.keys.admin })).body.data).toEqual([]);
    // Another team's queue of the same name is its own.
    const theirs = await h.api('PUT', '/api/v1/queues/mine', { parallelism: 7 }, { key: other.keys.write });
    expect(theirs.body.parallelism).toBe(7);
    expect((await h.api('GET', '/api/v1/queues/mine')).body.parallelism).toBe(3);

    expect((await h.api('PUT', '/api/v1/queues/mine', { paused: true }, { key: h.team.keys.read })).status).toBe(403);
    expect((await h.api('DELETE', '/api/v1/queues/mine', undefined, { key: h.team.keys.read })).status).toBe(403);
    expect((await h.api('GET', '/api/v1/queues/mine', undefined, { key: h.team.keys.read })).status).toBe(200);
  });

  it('refuses bad input with problem+json and changes nothing', async () => {
    const bad: [string, unknown][] = [
      ['/api/v1/queues/ok', { parallelism: 0 }],
      ['/api/v1/queues/ok', { parallelism: 1.5 }],
      ['/api/v1/queues/ok', { rate_per_second: 0 }],
      ['/api/v1/queues/ok', { rate_per_second: -1 }],
      ['/api/v1/queues/ok', { paused: 'yes' }],
      ['/api/v1/queues/ok', { parallelism: 1, extra: true }],
      ['/api/v1/queues/ok', [1]],
      ['/api/v1/queues/bad%20name', { parallelism: 1 }],
      [`/api/v1/queues/${'x'.repeat(65)}`, { parallelism: 1 }],
    ];
    for (const [path, body] of bad) {
      const r = await h.api('PUT', path, body);
      expect(r.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.body.code).toBe('validation_failed');
    }
    expect((await h.api('GET', '/api/v1/queues/a%20b')).status).toBe(400);
    expect((await h.api('PUT', '/api/v1/queues/ok', undefined, { raw: '{"parallelism":' })).status).toBe(400);
    const [{ n }] = await h.sql`select count(*)::int as n from queues where name in ('ok', 'bad name')`;
    expect(n).toBe(0);
  });

  it('stores flow_control on the task, keeps the latest limits per key, and refuses bad values', async () => {
    const url = 'http://127.0.0.1:9/x';
    const id = await h.enqueue({ url, flow_control: { key: 'customer-42', parallelism: 2, rate_per_second: 5 } });
    const t = await h.task(id);
    expect(t.flow_control).toEqual({ key: 'customer-42', parallelism: 2, rate_per_second: 5 });
    expect((await h.task(await h.enqueue({ url }))).flow_control).toBeNull();
    await h.enqueue({ url, flow_control: { key: 'customer-42', parallelism: 1 } });
    const [k] = await h.sql`select parallelism, rate_per_second from flow_keys where team_id = ${h.team.teamId} and key = 'customer-42'`;
    expect(k).toEqual({ parallelism: 1, rate_per_second: null });
    for (const fc of [
      { parallelism: 1 },
      { key: '' },
      { key: 'k', parallelism: 0 },
      { key: 'k', rate_per_second: 0 },
      { key: 'k', x: 1 },
    ]) {
      const r = await h.api('POST', '/api/v1/queue', { url, flow_control: fc });
      expect(r.status, JSON.stringify(fc)).toBe(400);
      expect(r.body.errors[0].path).toMatch(/^flow_control/);
    }
  });
});
