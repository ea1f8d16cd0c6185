// Property: whatever a client sends to POST /api/v1/queue (and /queue/batch), the gateway never
// answers 5xx, a 400 names a field, and a refused request stores nothing. Task requests are
// generated valid (arbitraries mirroring taskInputSchema in shared/schemas.ts), then one field
// is replaced with a hostile string, number, date, type or nesting. Bounded: 300 runs with a
// fixed seed (fast-check prints the seed and the shrunk counterexample when it fails; pass it
// back as { seed, path } to replay). The cases it found are kept in test/hostile-input.test.ts.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METHODS } from '../shared/schemas.ts';
import { startHarness } from './helpers/harness.ts';

const SEED = 20261130;
const RUNS = 300;
const target = 'http://127.0.0.1:9/never-called'; // no worker runs in this file

let h: Awaited<ReturnType<typeof startHarness>>;
beforeAll(async () => {
  h = await startHarness({ maxBodyBytes: 64 * 1024 });
});
afterAll(() => h?.close());

// --- valid task requests ------------------------------------------------------------------
const nameArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}$/);
const jsonLeaf = fc.oneof(fc.string({ maxLength: 20, unit: 'grapheme' }), fc.integer(), fc.boolean(), fc.constant(null));
const bodyArb = fc.oneof(
  fc.string({ maxLength: 50, unit: 'grapheme' }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(jsonLeaf, fc.array(jsonLeaf, { maxLength: 3 })), { maxKeys: 4 }),
);
const headerNameArb = fc.stringMatching(/^x-[a-z0-9-]{1,12}$/);
const headerValueArb = fc.stringMatching(/^[\x20-\x7e]{0,30}$/);
const futureIso = fc
  .integer({ min: 0, max: 300 * 86_400 })
  .map((s) => new Date(Date.now() + s * 1000).toISOString().replace(/\.\d+Z$/, 'Z'));

const validTask = fc
  .record(
    {
      url: fc.constantFrom(target, `${target}?a=1`, 'https://example.com/hook'),
      method: fc.constantFrom(...METHODS.filter((m) => m !== 'GET' && m !== 'HEAD')),
      headers: fc.dictionary(headerNameArb, headerValueArb, { maxKeys: 3 }),
      body: bodyArb,
      timing: fc.oneof(
        fc.constant({}),
        fc.record({ delay: fc.constantFrom(0, 30, '90s', '5m', '1h30m') }),
        fc.record({ run_at: futureIso }),
      ),
      retry: fc.record({
        max_retries: fc.integer({ min: 0, max: 100 }),
        min_backoff_ms: fc.integer({ min: 0, max: 60_000 }),
        max_backoff_ms: fc.integer({ min: 60_000, max: 3_600_000 }),
      }),
      timeout_ms: fc.integer({ min: 1, max: 900_000 }),
      idempotency_key: fc.uuid(),
      queue: nameArb,
      label: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }),
    },
    { requiredKeys: ['url', 'method'] },
  )
  .map(({ timing, ...t }) => ({ ...t, ...timing }) as Record<string, unknown>);

// --- hostile values -----------------------------------------------------------------------
const nested = (depth: number, leaf: unknown = 1): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
};
const hostileString = fc.oneof(
  fc.constantFrom(
    '\ud800',
    'x\udfff',
    'a\ud83d',
    '\0',
    'a\0b',
    '\x01',
    '\x7f',
    'ключ☃',
    '\u2028',
    '',
    '%00',
    "'; drop table tasks; --",
    'x'.repeat(5000),
    'http://[::1',
    'file:///etc/passwd',
    'http://user:pw@example.com/',
    '0000-01-01T00:00:00Z',
    '9999-12-31T23:59:59-05:00',
    '1969-12-31T23:59:59Z',
    '2026-02-30T00:00:00Z',
    '+275760-09-13T00:00:00Z',
    '99999999999999999999',
    '1/99999999999999999h',
  ),
  fc.string({ maxLength: 20, unit: 'binary' }), // any code units, lone surrogates included
);
const hostileNumber = fc.oneof(
  fc.constantFrom(-1, 0, -0, 1.5, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308, Number.MAX_SAFE_INTEGER),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const hostileValue = fc.oneof(
  hostileString,
  hostileNumber,
  fc.constantFrom(null, true, [], {}, [1, 2], { nested: { x: '\ud800' } }),
  fc.constantFrom(10, 63, 64, 65, 200, 2000).map((d) => nested(d)),
);
const FIELDS = [
  'url',
  'method',
  'headers',
  'body',
  'delay',
  'run_at',
  'retry',
  'timeout_ms',
  'idempotency_key',
  'queue',
  'label',
  'callback_url',
  'failure_callback_url',
  'unknown_field',
] as const;

/** One field replaced; headers, retry and body also get a hostile value one level inside. */
const mutation = fc.oneof(
  fc.record({ field: fc.constantFrom(...FIELDS), value: hostileValue, inside: fc.constant(null as string | null) }),
  fc.record({ field: fc.constant('headers'), inside: headerNameArb, value: hostileValue }),
  fc.record({
    field: fc.constant('retry'),
    inside: fc.constantFrom('max_retries', 'min_backoff_ms', 'max_backoff_ms'),
    value: hostileValue,
  }),
  fc.record({ field: fc.constant('body'), inside: fc.constantFrom('a', 'ключ', '\ud800'), value: hostileValue }),
);

function mutate(task: Record<string, unknown>, m: { field: string; inside: string | null; value: unknown }) {
  const t = structuredClone(task);
  if (m.inside === null) t[m.field] = m.value;
  else {
    const parent = t[m.field] && typeof t[m.field] === 'object' ? (t[m.field] as Record<string, unknown>) : {};
    t[m.field] = { ...parent, [m.inside]: m.value };
  }
  return t;
}

const countTasks = async () => Number((await h.sql`select count(*)::int as n from tasks`)[0]!.n);

describe('hostile task requests', () => {
  it(`never 5xx; a 400 names a field; nothing stored when refused (${RUNS} runs, seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(validTask, mutation, fc.boolean(), async (task, m, asBatch) => {
        const hostile = mutate(task, m);
        // A fresh idempotency key per run: a key seen before would (rightly) be a 409 or a replay.
        if (typeof hostile.idempotency_key === 'string' && m.field !== 'idempotency_key') hostile.idempotency_key = randomUUID();
        const before = await countTasks();
        const r = asBatch
          ? await h.api('POST', '/api/v1/queue/batch', { tasks: [{ url: target }, hostile] })
          : await h.api('POST', '/api/v1/queue', hostile);
        const after = await countTasks();
        const what = `${r.status} ${JSON.stringify(r.body)?.slice(0, 300)}`;
        expect(r.status, what).toBeLessThan(500);
        expect([200, 202, 400, 409, 413], what).toContain(r.status);
        if (r.status >= 400) {
          expect(r.headers.get('content-type'), what).toMatch(/^application\/problem\+json/);
          expect(after, `refused but stored: ${what}`).toBe(before);
        } else if (r.status === 202) {
          // A batch stores both tasks, unless the hostile one's idempotency key was seen before (a replay).
          expect(after - before, what).toBeGreaterThanOrEqual(1);
          expect(after - before, what).toBeLessThanOrEqual(asBatch ? 2 : 1);
        } else expect(after, what).toBe(before); // 200: an idempotent replay
        if (r.status === 400) {
          const paths: string[] = r.body.errors.map((e: { path: string }) => e.path);
          expect(paths.length, what).toBeGreaterThan(0);
          // Every refusal names a field, except JSON nested past the limit, which is refused
          // from the raw text before there is a field to name.
          if (!/at most 64 levels/.test(r.body.detail)) {
            expect(
              paths.every((p) => p !== ''),
              what,
            ).toBe(true);
            if (asBatch)
              expect(
                paths.some((p) => p.startsWith('tasks.1.')),
                what,
              ).toBe(true);
          }
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  });
});
