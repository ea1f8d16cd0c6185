// API keys: "ph_" + 40 base62 characters (≈238 bits). Only their SHA-256 is stored; a key is
// shown once, when it is made. SHA-256 (not a slow KDF) is right here: the key is random and
// long, so there is nothing to brute-force, and auth stays one index lookup per request.
import { hash } from 'node:crypto';
import type { Queryable, Sql } from './db.ts';
import { randomBase62, uuidv7 } from './ids.ts';

export type Role = 'read' | 'write' | 'admin';
export const ROLES: Role[] = ['read', 'write', 'admin'];

export const generateKey = () => `ph_${randomBase62(40)}`;
// crypto.hash is the one-shot form: no Hash object per request (the gateway hashes every
// request's key before its cache lookup, gateway/auth.ts).
export const hashKey = (key: string): Buffer => hash('sha256', key, 'buffer');

export async function createKey(sql: Queryable, teamId: string, name: string, role: Role, key = generateKey()) {
  const id = uuidv7();
  const [row] = await sql<{ id: string; name: string; role: Role; created_at: Date }[]>`
    insert into api_keys (id, team_id, name, role, key_hash)
    values (${id}, ${teamId}, ${name}, ${role}, ${hashKey(key)})
    returning id, name, role, created_at`;
  return { ...row!, key };
}

/**
 * On an empty database, team "default" and its admin key. Returns the key only when it was
 * created now (the caller prints it once); null when teams already exist.
 */
export async function bootstrap(sql: Sql, presetKey?: string): Promise<string | null> {
  return sql.begin(async (tx) => {
    await tx`lock table teams in exclusive mode`;
    const [teams] = await tx<{ n: number }[]>`select count(*)::int as n from teams`;
    if (teams!.n > 0) return null;
    const [team] = await tx<{ id: string }[]>`insert into teams (slug, name) values ('default', 'Default team') returning id`;
    const key = presetKey ?? generateKey();
    await createKey(tx, String(team!.id), 'bootstrap', 'admin', key);
    return key;
  });
}
