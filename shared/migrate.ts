// Numbered plain-SQL migrations (migrations/NNN_name.sql), each applied in its own
// transaction. A session advisory lock serialises concurrent migrators (several
// `posthorn migrate` or `start` at once) so each file runs exactly once.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from './db.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));
const MIGRATION_LOCK = 7_312_001; // arbitrary, constant: pg_advisory_lock key for migrations

type Migration = { version: number; name: string; sql: string };

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .map((f) => ({ version: Number(f.split('_')[0]), name: f, sql: readFileSync(path.join(dir, f), 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

export async function migrate(sql: Sql): Promise<{ applied: string[] }> {
  const applied: string[] = [];
  for (const m of listMigrations()) {
    await sql.begin(async (tx) => {
      // The transaction-scoped lock serialises migrators; the check after it sees the winner's commit.
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx`create table if not exists posthorn_migrations (
        version int primary key, name text not null, applied_at timestamptz not null default now())`;
      const [done] = await tx`select 1 from posthorn_migrations where version = ${m.version}`;
      if (done) return;
      await tx.unsafe(m.sql);
      await tx`insert into posthorn_migrations (version, name) values (${m.version}, ${m.name})`;
      applied.push(m.name);
    });
  }
  return { applied };
}

/** True when every migration file has been applied: /readyz is 503 until then. */
let latestVersion: number | undefined;

export async function migrationsCurrent(sql: Sql): Promise<boolean> {
  latestVersion ??= listMigrations().at(-1)?.version ?? 0;
  const [row] = await sql`select to_regclass('posthorn_migrations') is not null as present`;
  if (!row!.present) return false;
  const [v] = await sql`select coalesce(max(version), 0)::int as v from posthorn_migrations`;
  return (v!.v as number) >= latestVersion;
}
