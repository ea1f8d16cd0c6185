// A database of its own for each test file, cloned from the migrated template.

import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { createSql, type Sql } from '../../shared/db.ts';
import { createKey, type Role } from '../../shared/keys.ts';

const TEMPLATE_DB = 'posthorn_test_template';

export type TestDb = { url: string; sql: Sql; drop: () => Promise<void> };

export async function createTestDb(): Promise<TestDb> {
  const server = inject('pgServerUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = createSql(`${server}/postgres`, { max: 1 });
  await admin.unsafe(`create database ${name} template ${TEMPLATE_DB}`);
  const url = `${server}/${name}`;
  const sql = createSql(url, { max: 10 });
  return {
    url,
    sql,
    drop: async () => {
      await sql.end({ timeout: 1 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** A team with one key of each role. */
export async function seedTeam(sql: Sql, slug = `team-${randomBytes(3).toString('hex')}`) {
  const [team] = await sql`insert into teams (slug, name) values (${slug}, ${slug}) returning id`;
  const teamId = String(team!.id);
  const keys = {} as Record<Role, string>;
  for (const role of ['read', 'write', 'admin'] as const) keys[role] = (await createKey(sql, teamId, role, role)).key;
  return { teamId, slug, keys };
}
