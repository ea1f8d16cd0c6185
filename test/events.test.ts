// The event outbox commits and rolls back with the change that causes it.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { recordEvents } from '../shared/events.ts';
import { createTestDb, seedTeam, type TestDb } from './helpers/db.ts';

let db: TestDb;
let teamId: string;
beforeAll(async () => {
  db = await createTestDb();
  teamId = (await seedTeam(db.sql)).teamId;
});
afterAll(() => db.drop());

test('events written in a transaction that commits are stored, undispatched, in order', async () => {
  await db.sql.begin(async (tx) => {
    await recordEvents(tx as never, [
      { teamId, type: 'task.failed', subject: 'https://a.example:443', data: { task_id: 't1' } },
      { teamId, type: 'schedule.failed', subject: 's1' },
    ]);
  });
  const rows = await db.sql`select team_id::text, type, subject, data, dispatched_at from events order by id`;
  expect(rows.map((r) => [r.team_id, r.type, r.subject, r.data, r.dispatched_at])).toEqual([
    [teamId, 'task.failed', 'https://a.example:443', { task_id: 't1' }, null],
    [teamId, 'schedule.failed', 's1', {}, null],
  ]);
});

test('events of a transaction that rolls back are gone with it', async () => {
  const before = (await db.sql`select count(*)::int as n from events`)[0]!.n;
  await expect(
    db.sql.begin(async (tx) => {
      await recordEvents(tx as never, [{ teamId, type: 'circuit.opened', subject: 'https://b.example:443' }]);
      throw new Error('the state change failed');
    }),
  ).rejects.toThrow('the state change failed');
  expect((await db.sql`select count(*)::int as n from events`)[0]!.n).toBe(before);
});
