// posthorn keys create | list | revoke: key management from the shell, straight on the database.
import { parseArgs } from 'node:util';
import { createSql } from '../shared/db.ts';
import { isUuid } from '../shared/ids.ts';
import { createKey, ROLES, type Role } from '../shared/keys.ts';

export async function runKeys(databaseUrl: string, args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { team: { type: 'string' }, role: { type: 'string' }, name: { type: 'string' } },
  });
  const [sub, arg] = positionals;
  const sql = createSql(databaseUrl, { max: 1 });
  try {
    if (sub === 'create') {
      const role = values.role as Role;
      if (!values.team || !ROLES.includes(role))
        throw new Error('usage: posthorn keys create --team <slug> --role admin|write|read [--name <name>]');
      const [team] = await sql`select id from teams where slug = ${values.team}`;
      if (!team) throw new Error(`no team with slug "${values.team}"`);
      const k = await createKey(sql, String(team.id), values.name ?? `${role} key`, role);
      // The key is printed once, here, and never stored or logged.
      console.log(JSON.stringify({ id: k.id, name: k.name, role: k.role, team: values.team, key: k.key }));
    } else if (sub === 'list') {
      const rows = await sql`
        select k.id, k.name, k.role, t.slug as team, k.created_at, k.revoked_at
        from api_keys k join teams t on t.id = k.team_id
        where ${values.team ?? null}::text is null or t.slug = ${values.team ?? null}
        order by k.created_at`;
      for (const r of rows) console.log(JSON.stringify(r));
    } else if (sub === 'revoke') {
      if (!arg || !isUuid(arg)) throw new Error('usage: posthorn keys revoke <id>');
      const res = await sql`update api_keys set revoked_at = now() where id = ${arg} and revoked_at is null`;
      if (res.count === 0) throw new Error(`no active key with id ${arg}`);
      console.log(JSON.stringify({ id: arg, revoked: true }));
    } else {
      throw new Error('usage: posthorn keys create|list|revoke ...');
    }
  } catch (err) {
    console.error(`posthorn: ${(err as Error).message}`);
    process.exitCode = 2;
  } finally {
    await sql.end();
  }
}
