// One request's bad row never fails another's enqueue, even in the same multi-row INSERT
// (docs/api.md, errors). The rows are poisoned past validation (which refuses them first), so
// this is the second wall: the group commit writing a failed statement's rows again in halves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGroupCommit } from '../shared/group-commit.ts';
import { seedTeam } from './helpers/db.ts';
import { startHarness } from './helpers/harness.ts';

describe('createGroupCommit isolate', () => {
  const refuses = (bad: Set<number>) => async (items: number[]) => {
    writes.push(items.length);
    if (items.some((i) => bad.has(i))) throw Object.assign(new Error('refused'), { code: '22P02' });
    return items.map((i) => i * 10);
  };
  let writes: number[] = [];

  it('fails only the items that fail alone; the others get their results', async () => {
    writes = [];
    const g = createGroupCommit(refuses(new Set([7, 90])), { maxBatch: 500, lanes: 1, isolate: () => true });
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => g.add(i)));
    const rejected = results.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
    expect(rejected).toEqual([7, 90]);
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') expect(r.value).toBe(i * 10);
    });
    // Halving: well under one statement per item.
    expect(writes.length).toBeLessThan(30);
  });

  it('without isolate (or for errors it does not blame on a row) the whole batch fails, as before', async () => {
    writes = [];
    const g = createGroupCommit(refuses(new Set([3])), { maxBatch: 500, lanes: 1, isolate: () => false });
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => g.add(i)));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(writes).toEqual([10]);
  });
});

describe('enqueue group commit', () => {
  let h: Awaited<ReturnType<typeof startHarness>>;
  let teamB: string;
  let keyB: string;
  const target = 'http://127.0.0.1:9/never-called';

  beforeAll(async () => {
    h = await startHarness({
      // Team B's rows are poisoned after validation: a lone surrogate escape in the label
      // (jsonb refuses it, 22P02) or year 0000 (timestamptz refuses it, 22008).
      wrapBatcher: (inner) => ({
        ...inner,
        enqueue: (t, signal) =>
          inner.enqueue(
            t.team_id !== teamB ? t : t.label === 'odd' ? { ...t, label: 'x\ud800' } : { ...t, run_at: '0000-01-01T00:00:00Z' },
            signal,
          ),
      }),
    });
    const b = await seedTeam(h.sql);
    teamB = b.teamId;
    keyB = b.keys.write;
  });
  afterAll(() => h?.close());

  it('200 valid enqueues of team A with 10 poisoned of team B: 200 stored and 202, 10 refused with 400, nothing else stored', async () => {
    const valid = Array.from({ length: 200 }, (_, i) => h.api('POST', '/api/v1/queue', { url: target, label: `a-${i}` }));
    const poisoned = Array.from({ length: 10 }, (_, i) =>
      h.api('POST', '/api/v1/queue', { url: target, label: i % 2 ? 'odd' : 'even' }, { key: keyB }),
    );
    const [a, b] = await Promise.all([Promise.all(valid), Promise.all(poisoned)]);
    expect(a.map((r) => r.status)).toEqual(Array(200).fill(202));
    expect(b.map((r) => r.status)).toEqual(Array(10).fill(400));
    expect(b.every((r) => r.body.code === 'validation_failed')).toBe(true);
    const stored = await h.sql`select team_id::text as team, count(*)::int as n from tasks group by team_id`;
    expect(stored).toEqual([{ team: h.team.teamId, n: 200 }]);
    const ids = new Set(a.map((r) => r.body.id));
    const rows = await h.sql`select id from tasks where team_id = ${h.team.teamId}`;
    expect(rows.every((r) => ids.has(r.id))).toBe(true);
  });
});
