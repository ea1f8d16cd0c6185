// posthorn connections rotate-key: re-seals every connection secret and cached OAuth2 token
// under the current POSTHORN_SECRET_KEY (docs/connections.md, "Rotating the key").
//
// Run it with the new key as POSTHORN_SECRET_KEY and the old one(s) as
// POSTHORN_SECRET_KEY_PREVIOUS. Rows already under the new key are skipped, so it can be run
// again after an interruption. Each row is re-sealed by an UPDATE guarded by the value it read:
// a connection changed through the API meanwhile (sealed under the new key already) is left as
// it is. Nothing secret is printed: only counts and key ids.
import { connectionAad, tokenAad } from '../shared/connections.ts';
import { createSql } from '../shared/db.ts';
import type { SecretBox } from '../shared/secret-box.ts';

const USAGE = 'usage: posthorn connections rotate-key   (POSTHORN_SECRET_KEY = new key, POSTHORN_SECRET_KEY_PREVIOUS = old key(s))';

export type RotateCounts = { connections: number; tokens: number; current: number; dropped_tokens: number };

export async function rotateSecrets(sql: ReturnType<typeof createSql>, box: SecretBox): Promise<RotateCounts> {
  const counts: RotateCounts = { connections: 0, tokens: 0, current: 0, dropped_tokens: 0 };
  const conns = await sql<{ team_id: string; id: string; secret: string }[]>`select team_id::text, id, secret from connections`;
  for (const c of conns) {
    if (box.keyIdOf(c.secret) === box.keyId) {
      counts.current++;
      continue;
    }
    // Throws (and stops) when the old key is not given: nothing is lost, run again with it.
    const plain = box.open(c.secret, connectionAad(c.team_id, c.id));
    const res = await sql`
      update connections set secret = ${box.seal(plain, connectionAad(c.team_id, c.id))}
      where team_id = ${c.team_id} and id = ${c.id} and secret = ${c.secret}`;
    counts.connections += res.count;
  }
  const tokens = await sql<{ team_id: string; connection_id: string; token: string }[]>`
    select team_id::text, connection_id, token from connection_tokens`;
  for (const t of tokens) {
    if (box.keyIdOf(t.token) === box.keyId) continue;
    let plain: string;
    try {
      plain = box.open(t.token, tokenAad(t.team_id, t.connection_id));
    } catch {
      // A cached token is only a cache: one that does not open is dropped, and fetched again.
      const res =
        await sql`delete from connection_tokens where team_id = ${t.team_id} and connection_id = ${t.connection_id} and token = ${t.token}`;
      counts.dropped_tokens += res.count;
      continue;
    }
    const res = await sql`
      update connection_tokens set token = ${box.seal(plain, tokenAad(t.team_id, t.connection_id))}
      where team_id = ${t.team_id} and connection_id = ${t.connection_id} and token = ${t.token}`;
    counts.tokens += res.count;
  }
  return counts;
}

export async function runConnections(databaseUrl: string, box: SecretBox | null, args: string[]) {
  if (args[0] !== 'rotate-key') throw new Error(USAGE);
  if (!box) throw new Error(`POSTHORN_SECRET_KEY is not set. ${USAGE}`);
  const sql = createSql(databaseUrl, { max: 1 });
  try {
    console.log(JSON.stringify({ key_id: box.keyId, ...(await rotateSecrets(sql, box)) }));
  } catch (err) {
    console.error(`posthorn: ${(err as Error).message}`);
    process.exitCode = 2;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
