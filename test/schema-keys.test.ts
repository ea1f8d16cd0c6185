// Keys a distributed PostgreSQL (Citus) can shard by team (migration 014, docs/scaling.md),
// checked in the catalog of the migrated database: every table with a team_id column is a team
// table, and its primary key and every unique index (constraint or not, partial or not) must
// have team_id among its key columns; a foreign key to a team table must carry team_id to the
// referenced team_id. Generic: it reads whatever tables the migrations made, so a table added
// later is held to the same rule without touching this file. Citus itself is not installed
// here; this is the part of its rules that can be checked without it.
//
// The check is also run against tables made wrong on purpose (inside a rolled-back
// transaction), so it is known to catch each kind of mistake. And migration 014 is applied to a
// database holding data written by the migrations before it, to show that it converts in place.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createSql, type Queryable, type Sql } from '../shared/db.ts';
import { uuidv7 } from '../shared/ids.ts';
import { listMigrations, migrate } from '../shared/migrate.ts';
import { createTestDb, seedTeam, type TestDb } from './helpers/db.ts';

/**
 * Small shared tables that would be Citus reference tables (one copy on every node), so the
 * rule does not apply to their keys, and a foreign key may point at them without team_id.
 * Each must exist (a stale entry fails the test).
 */
const REFERENCE_TABLES: Record<string, string> = {
  teams: 'the teams themselves: every team table points at it; one row per team',
  api_keys:
    'found by key_hash on every request before the team is known, so key_hash stays unique on its own; a few rows per team, written only when a key is made or revoked',
  status_pages: 'the public status page is found by its token before the team is known; one row per team at most',
};

type Violation = { table: string; kind: 'unique' | 'foreign key'; name: string; why: string };

/** Every key of the current schema that breaks the rule; empty when all is well. */
async function keyViolations(sql: Queryable): Promise<Violation[]> {
  const refs = Object.keys(REFERENCE_TABLES);
  const unique = await sql<{ table: string; name: string }[]>`
    with team_tables as (
      select c.oid, c.relname, a.attnum as team_att from pg_class c
      join pg_namespace n on n.oid = c.relnamespace and n.nspname = current_schema()
      join pg_attribute a on a.attrelid = c.oid and a.attname = 'team_id' and not a.attisdropped
      where c.relkind in ('r', 'p') and c.relname <> all(${refs}::text[])
    )
    select t.relname as table, ic.relname as name
    from team_tables t
    join pg_index i on i.indrelid = t.oid and i.indisunique
    join pg_class ic on ic.oid = i.indexrelid
    where not exists (
      select 1 from unnest(i.indkey::int2[]) with ordinality as k(attnum, pos)
      where k.pos <= i.indnkeyatts and k.attnum = t.team_att)
    order by 1, 2`;
  const fks = await sql<{ table: string; name: string; target: string; from_team: boolean; to_team: boolean; paired: boolean }[]>`
    with cols as (
      select c.oid, c.relname,
        (select a.attnum from pg_attribute a where a.attrelid = c.oid and a.attname = 'team_id' and not a.attisdropped) as team_att
      from pg_class c join pg_namespace n on n.oid = c.relnamespace and n.nspname = current_schema()
    )
    select f.relname as table, k.conname as name, p.relname as target,
      f.team_att is not null as from_team, p.team_att is not null as to_team,
      exists (
        select 1 from unnest(k.conkey, k.confkey) as m(from_att, to_att)
        where m.from_att = f.team_att and m.to_att = p.team_att) as paired
    from pg_constraint k
    join cols f on f.oid = k.conrelid
    join cols p on p.oid = k.confrelid
    where k.contype = 'f'
    order by 1, 2`;
  const out: Violation[] = unique.map((u) => ({
    table: u.table,
    kind: 'unique',
    name: u.name,
    why: 'a primary key or unique index without team_id: put team_id first',
  }));
  for (const k of fks) {
    const fromRef = refs.includes(k.table);
    const toRef = refs.includes(k.target);
    if (toRef) continue; // anything may point at a reference table
    if (fromRef) out.push({ ...k, kind: 'foreign key', why: `a reference table cannot point at ${k.target}, which is sharded` });
    else if (!k.to_team) out.push({ ...k, kind: 'foreign key', why: `${k.target} has no team_id and is not a reference table` });
    else if (!k.from_team) out.push({ ...k, kind: 'foreign key', why: `points at team table ${k.target} but has no team_id` });
    else if (!k.paired) out.push({ ...k, kind: 'foreign key', why: `does not carry team_id to ${k.target}.team_id` });
  }
  return out.map(({ table, kind, name, why }) => ({ table, kind, name, why }));
}

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.drop();
});

describe('keys shardable by team_id', () => {
  it('the migrated schema has no key without team_id outside the reference tables', async () => {
    expect(await keyViolations(db.sql)).toEqual([]);
    // The rule was checked against something: the hot tables are team tables with team_id first.
    const [pk] = await db.sql`
      select pg_get_indexdef(i.indexrelid) as def from pg_index i
      where i.indrelid = 'tasks'::regclass and i.indisprimary`;
    expect(pk!.def).toContain('(team_id, id)');
  });

  it('every reference table named as an exception exists', async () => {
    const rows = await db.sql`select relname from pg_class where relkind = 'r' and relname = any(${Object.keys(REFERENCE_TABLES)}::text[])`;
    expect(rows.map((r) => r.relname).sort()).toEqual(Object.keys(REFERENCE_TABLES).sort());
  });

  it('catches each kind of key that cannot be sharded (tables made wrong on purpose, rolled back)', async () => {
    const found = await db.sql
      .begin(async (tx) => {
        await tx.unsafe(`
          create table zz_parent (id uuid primary key, team_id bigint not null);            -- key without team_id
          create table zz_good (team_id bigint, id uuid, code text, primary key (team_id, id));
          create unique index zz_good_code on zz_good (code) where code is not null;          -- partial unique without it
          create table zz_child (team_id bigint, good_id uuid, foreign key (team_id, good_id) references zz_good (team_id, id));
          create table zz_loose (x bigint, good_id uuid, foreign key (x, good_id) references zz_good (team_id, id));  -- no team_id
          create table zz_swapped (team_id bigint, other bigint, good_id uuid,
            foreign key (other, good_id) references zz_good (team_id, id));                   -- team_id not carried
          create table zz_global (id int primary key);
          create table zz_points (team_id bigint, g int references zz_global (id), primary key (team_id, g));
          create table zz_team_ref (team_id bigint primary key references teams (id));       -- fine: teams is a reference table`);
        const v = await keyViolations(tx);
        throw Object.assign(new Error('rollback'), { v });
      })
      .catch((e: { v?: Violation[] }) => {
        if (!e.v) throw e;
        return e.v;
      });
    expect(found.filter((v) => v.table.startsWith('zz_')).map((v) => [v.table, v.kind, v.name])).toEqual([
      ['zz_good', 'unique', 'zz_good_code'],
      ['zz_parent', 'unique', 'zz_parent_pkey'],
      ['zz_loose', 'foreign key', 'zz_loose_x_good_id_fkey'],
      ['zz_points', 'foreign key', 'zz_points_g_fkey'],
      ['zz_swapped', 'foreign key', 'zz_swapped_other_good_id_fkey'],
    ]);
    const [gone] = await db.sql`select to_regclass('zz_parent') is null as gone`;
    expect(gone!.gone).toBe(true);
  });
});

describe('migration 014 converts existing data in place', () => {
  it('keeps every row, fills notification_windows.team_id from its channel, and the new keys cascade', async () => {
    const server = inject('pgServerUrl');
    const name = `k_${uuidv7().replaceAll('-', '').slice(-12)}`;
    const admin = createSql(`${server}/postgres`, { max: 1 });
    await admin.unsafe(`create database ${name}`);
    const sql: Sql = createSql(`${server}/${name}`, { max: 2 });
    try {
      // Every migration before 014, the way migrate() applies them.
      await sql`create table posthorn_migrations (version int primary key, name text not null, applied_at timestamptz not null default now())`;
      for (const m of listMigrations().filter((m) => m.version < 14))
        await sql.begin(async (tx) => {
          await tx.unsafe(m.sql);
          await tx`insert into posthorn_migrations (version, name) values (${m.version}, ${m.name})`;
        });
      const a = await seedTeam(sql, 'team-a');
      const b = await seedTeam(sql, 'team-b');
      const rows = await seed(sql, [a.teamId, b.teamId]);

      const { applied } = await migrate(sql);
      expect(applied[0]).toMatch(/^014_/);
      expect(await keyViolations(sql)).toEqual([]);
      for (const [table, n] of Object.entries(rows)) {
        const [c] = await sql.unsafe(`select count(*)::int as n from ${table}`);
        expect(c!.n, table).toBe(n);
      }
      const windows = await sql`select w.team_id::text as team_id, c.team_id::text as channel_team from notification_windows w
        join channels c on c.team_id = w.team_id and c.id = w.channel_id`;
      expect(windows.length).toBe(2);
      for (const w of windows) expect(w.team_id).toBe(w.channel_team);

      // The cascades run on the new foreign keys: a task takes its attempts, a channel its
      // deliveries and windows, and nothing of the other team.
      await sql`delete from tasks where team_id = ${a.teamId}`;
      await sql`delete from channels where team_id = ${a.teamId}`;
      const left = await sql`
        select (select count(*)::int from task_attempts where team_id = ${a.teamId}) as a_attempts,
               (select count(*)::int from task_attempts where team_id = ${b.teamId}) as b_attempts,
               (select count(*)::int from channel_deliveries where team_id = ${a.teamId}) as a_deliveries,
               (select count(*)::int from notification_windows where team_id = ${b.teamId}) as b_windows`;
      expect(left[0]).toEqual({ a_attempts: 0, b_attempts: 2, a_deliveries: 0, b_windows: 1 });
    } finally {
      await sql.end({ timeout: 1 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });
});

/** Rows in every table migration 014 changes, per team; returns the count expected in each. */
async function seed(sql: Sql, teams: string[]): Promise<Record<string, number>> {
  for (const team of teams) {
    const task = uuidv7();
    const schedule = uuidv7();
    const channel = uuidv7();
    await sql`
      insert into tasks (id, team_id, status, url, method, run_at, max_retries, min_backoff_ms, max_backoff_ms, timeout_ms,
        attempts, schedule_id, scheduled_for, finished_at)
      values (${task}, ${team}, 'succeeded', 'http://127.0.0.1:9/x', 'POST', now(), 0, 0, 0, 1000, 2, ${schedule}, now(), now())`;
    for (const attempt of [1, 2])
      await sql`
        insert into task_attempts (task_id, attempt, team_id, started_at, finished_at, duration_ms, outcome)
        values (${task}, ${attempt}, ${team}, now(), now(), 1, 'success')`;
    await sql`insert into schedules (id, team_id, name, cron, template) values (${schedule}, ${team}, 's', '* * * * *', '{}')`;
    await sql`insert into events (team_id, type, subject) values (${team}, 'task.failed', 'x')`;
    await sql`insert into circuit_transitions (team_id, origin, from_state, to_state, reason) values (${team}, 'http://x:80', 'closed', 'open', 'r')`;
    await sql`insert into channels (id, team_id, type, target, events) values (${channel}, ${team}, 'webhook', 'http://x/', '{task.failed}')`;
    await sql`
      insert into channel_deliveries (id, channel_id, team_id, kind, message, next_attempt_at)
      values (${uuidv7()}, ${channel}, ${team}, 'test', '{}', now())`;
    await sql`insert into notification_windows (channel_id, type, subject, opened_at) values (${channel}, 'task.failed', 'x', now())`;
  }
  const n = teams.length;
  return {
    tasks: n,
    task_attempts: 2 * n,
    schedules: n,
    events: n,
    circuit_transitions: n,
    channels: n,
    channel_deliveries: n,
    notification_windows: n,
  };
}
