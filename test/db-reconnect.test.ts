// What must come back by itself when the database goes away and returns (docs/reliability.md):
// LISTEN (postgres.js issues it again on every close of its connection) and the leader's lock session (worker/maintenance/elector.ts). The
// database goes away for this file's pool only, through a TCP proxy the test cuts and restores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createElector, LEADER_LOCK } from '../worker/maintenance/elector.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { waitFor } from './helpers/net.ts';
import { poolViaProxy } from './helpers/tcp-proxy.ts';

let db: TestDb;
let via: Awaited<ReturnType<typeof poolViaProxy>>;

beforeAll(async () => {
  db = await createTestDb();
  via = await poolViaProxy(db.url);
});

afterAll(async () => {
  await via?.close();
  await db?.drop();
});

const outage = async (ms: number) => {
  await via.proxy.down();
  await new Promise((r) => setTimeout(r, ms));
  await via.proxy.up();
};

describe('after the database was away', () => {
  it('LISTEN is back: notifications arrive again and onlisten runs (the producer claims what it missed)', async () => {
    const got: string[] = [];
    let listens = 0;
    const sub = await via.sql.listen(
      'i21_test_channel',
      (p) => got.push(p),
      () => listens++,
    );
    expect(listens).toBe(1);
    await db.sql.notify('i21_test_channel', 'before');
    await waitFor(() => got.includes('before'), { what: 'the first notification' });
    // Longer than one reconnect: LISTEN fails while the database is away, and is tried again.
    await outage(1500);
    await waitFor(() => listens === 2, { timeoutMs: 10_000, what: 'LISTEN issued again' });
    await db.sql.notify('i21_test_channel', 'after');
    await waitFor(() => got.includes('after'), { timeoutMs: 5000, what: 'a notification after the outage' });
    // Twice in a row: it keeps coming back.
    await outage(300);
    await waitFor(() => listens === 3, { timeoutMs: 10_000, what: 'LISTEN issued again' });
    await db.sql.notify('i21_test_channel', 'again');
    await waitFor(() => got.includes('again'), { timeoutMs: 5000, what: 'a notification after the second outage' });
    await sub.unlisten();
  });

  it('the leader gives its lock up with its session and takes it again on a new one, without a crash', async () => {
    let elected = 0;
    let demoted = 0;
    const elector = createElector({ sql: via.sql, onElected: () => void elected++, onDemoted: () => void demoted++ });
    const held = async () =>
      (await db.sql`select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = ${LEADER_LOCK} and granted`)[0]!.n;
    try {
      expect(await elector.runOnce()).toBe(true);
      expect(await held()).toBe(1);
      // Away and back between two pings: the pool of one reconnects by itself, to a session
      // that holds no lock. The ping must notice (postgres.js's reserve() threw an uncaught
      // TypeError here instead, killing the process).
      await outage(200);
      await waitFor(async () => (await held()) === 0, { what: 'the old session (and its lock) gone' });
      expect(await elector.runOnce()).toBe(false);
      expect(demoted).toBe(1);
      // Down during a round: demoted already, the round fails quietly.
      await via.proxy.down();
      expect(await elector.runOnce()).toBe(false);
      await via.proxy.up();
      expect(await elector.runOnce()).toBe(true);
      expect(elected).toBe(2);
      expect(await held()).toBe(1);
    } finally {
      await elector.stop();
    }
    expect(await held()).toBe(0);
  });
});
