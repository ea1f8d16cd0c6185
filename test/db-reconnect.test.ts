// What must come back by itself when the database goes away and returns (docs/reliability.md):
// transactions that were under way, LISTEN (postgres.js issues it again on every close of its connection) and the leader's lock session (worker/maintenance/elector.ts). The
// database goes away for this file's pool only, through a TCP proxy the test cuts and restores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql } from '../shared/db.ts';
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
    // Counted in this file's database only: other files' leaders hold the same lock id on the shared server.
    const held = async () =>
      (
        await db.sql`select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = ${LEADER_LOCK} and granted
          and database = (select oid from pg_database where datname = current_database())`
      )[0]!.n;
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
    // The server ends the session a moment after the client closed it.
    await waitFor(async () => (await held()) === 0, { what: 'the lock released with the session' });
  });

  // postgres.js 3.4.9 sent begin()'s own ROLLBACK on the dead connection, and the write threw
  // from a timer: an uncaught TypeError that ended the process (vitest fails the run on it).
  // patches/apply.mjs fixes it at install.
  it('a transaction whose connection dies mid-query rejects; the process lives and the pool works again', async () => {
    const own = createSql(db.url, { max: 1 }); // one connection: the next query reuses the one that died
    try {
      let pid = 0;
      const tx = own.begin(async (t) => {
        [{ pid }] = await t<{ pid: number }[]>`select pg_backend_pid() as pid`;
        await t`select pg_sleep(5)`;
      });
      const outcome = tx.then(
        () => 'committed',
        (e: { code?: string }) => e.code,
      );
      await waitFor(() => pid !== 0, { what: 'the transaction under way' });
      await db.sql`select pg_terminate_backend(${pid})`;
      expect(await outcome).toBe('CONNECTION_CLOSED');
      await new Promise((r) => setTimeout(r, 50)); // where the uncaught TypeError came
      // The next session's first query is not failed with the old one's error (57P01).
      expect((await own<{ n: number }[]>`select 1 as n`)[0]!.n).toBe(1);
      expect(await own.begin(async (t) => (await t<{ n: number }[]>`select 2 as n`)[0]!.n)).toBe(2);
    } finally {
      await own.end({ timeout: 1 });
    }
  });

  it('a transaction cut off by the network mid-query rejects, and the pool works once the network is back', async () => {
    let started = false;
    const tx = via.sql.begin(async (t) => {
      await t`select 1`;
      started = true;
      await t`select pg_sleep(5)`;
    });
    const outcome = tx.then(
      () => 'committed',
      (e: { code?: string }) => e.code ?? 'error',
    );
    await waitFor(() => started, { what: 'the transaction under way' });
    await outage(200);
    expect(await outcome).not.toBe('committed');
    await new Promise((r) => setTimeout(r, 50));
    expect(await via.sql.begin(async (t) => (await t<{ n: number }[]>`select 3 as n`)[0]!.n)).toBe(3);
  });
});
