// /api/v1/connections (docs/connections.md; admin role): credentials that tasks and schedules
// name in "auth". Secrets go in and never come out: they are sealed (shared/secret-box.ts)
// before the row is written, and no answer, log line or page carries them.
import { Hono } from 'hono';
import { z } from 'zod';
import {
  type ConnectionSecret,
  type ConnectionSettings,
  type ConnectionType,
  connectionAad,
  NO_SECRET_KEY,
  SECRET_FIELDS,
  SETTING_FIELDS,
} from '../../shared/connections.ts';
import type { JsonValue, Queryable, Sql } from '../../shared/db.ts';
import { type FieldError, problem } from '../../shared/errors.ts';
import { isUuid, uuidv7 } from '../../shared/ids.ts';
import { headerValueProblem } from '../../shared/input-rules.ts';
import { connectionNameSchema, httpUrl } from '../../shared/schemas.ts';
import type { SecretBox } from '../../shared/secret-box.ts';
import type { TargetCheck } from '../../shared/targets.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { iso, parseOrThrow, readJson } from '../http.ts';

const secretText = (max: number) => z.string().min(1).max(max).meta({ description: 'write-only: never returned' });
const headerSafe = (max: number) =>
  secretText(max).superRefine((v, ctx) => {
    const why = headerValueProblem(v);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  });

const oauthFields = {
  token_url: httpUrl,
  client_id: z.string().min(1).max(512),
  client_secret: secretText(4096),
  scope: z.string().min(1).max(1024).optional(),
  audience: z.string().min(1).max(1024).optional(),
};

export const createConnectionSchema = z.discriminatedUnion('type', [
  z.strictObject({ name: connectionNameSchema, type: z.literal('oauth2_client_credentials'), ...oauthFields }),
  z.strictObject({ name: connectionNameSchema, type: z.literal('bearer'), token: headerSafe(8192) }),
  z.strictObject({
    name: connectionNameSchema,
    type: z.literal('basic'),
    username: z
      .string()
      .min(1)
      .max(512)
      .refine((u) => !u.includes(':'), 'may not contain ":" (RFC 7617)'),
    password: secretText(1024),
  }),
]);
type ConnectionInput = z.output<typeof createConnectionSchema>;

/** PATCH: any field of the connection's type; null removes scope or audience. The type stays. */
export const patchConnectionSchema = z.strictObject({
  name: connectionNameSchema.optional(),
  token_url: httpUrl.optional(),
  client_id: oauthFields.client_id.optional(),
  client_secret: secretText(4096).optional(),
  scope: oauthFields.scope.nullable(),
  audience: oauthFields.audience.nullable(),
  token: headerSafe(8192).optional(),
  username: z.string().max(512).optional(),
  password: secretText(1024).optional(),
});

type Row = {
  id: string;
  name: string;
  type: ConnectionType;
  settings: ConnectionSettings;
  created_at: Date;
  updated_at: Date;
  usable_until: Date | null;
};

/** What the API shows: settings only. There is no code path from `secret` to here. */
export function connectionView(r: Row) {
  return {
    id: r.id,
    name: r.name,
    type: r.type,
    ...r.settings,
    token_cached_until: r.type === 'oauth2_client_credentials' ? iso(r.usable_until) : undefined,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

function split(input: ConnectionInput): { settings: ConnectionSettings; secret: ConnectionSecret } {
  const settings: ConnectionSettings = {};
  for (const f of SETTING_FIELDS[input.type]) {
    const v = (input as Record<string, string | undefined>)[f];
    if (v !== undefined) settings[f] = v;
  }
  const field = SECRET_FIELDS[input.type];
  return { settings, secret: { [field]: (input as Record<string, string>)[field] } };
}

const selectRows = (sql: Queryable, teamId: string) => sql`
  select c.id, c.name, c.type, c.settings, c.created_at, c.updated_at, t.usable_until
  from connections c
  left join connection_tokens t on t.team_id = c.team_id and t.connection_id = c.id and t.usable_until > now()
  where c.team_id = ${teamId}`;

/**
 * 400 naming `<prefix>auth.connection` for every task or template whose connection the team
 * does not have (docs/api.md §17). One query for a whole batch; none when no task names one.
 */
export async function refuseUnknownConnections(sql: Queryable, teamId: string, refs: { name: string | null | undefined; path: string }[]) {
  const named = refs.filter((r): r is { name: string; path: string } => !!r.name);
  if (named.length === 0) return;
  const names = [...new Set(named.map((r) => r.name))];
  const rows = await sql<{ name: string }[]>`select name from connections where team_id = ${teamId} and name = any(${names}::text[])`;
  const known = new Set(rows.map((r) => r.name));
  const errors: FieldError[] = named
    .filter((r) => !known.has(r.name))
    .map((r) => ({ path: r.path, message: `no connection named "${r.name}" (POST /api/v1/connections creates one)` }));
  if (errors.length) throw problem('validation_failed', errors.map((e) => `${e.path}: ${e.message}`).join('; '), errors);
}

export function connectionRoutes(deps: { sql: Sql; box: SecretBox | null; checkTarget: TargetCheck }) {
  const { sql, box } = deps;
  const app = new Hono<AuthEnv>();
  app.use('/connections', requireRole('admin'));
  app.use('/connections/*', requireRole('admin'));

  function needBox(): SecretBox {
    if (!box) throw problem('conflict', NO_SECRET_KEY);
    return box;
  }

  // The token request obeys the same outbound rules as deliveries (docs/api.md §7).
  function checkTokenUrl(input: { token_url?: string }) {
    const verdict = input.token_url ? deps.checkTarget(new URL(input.token_url)) : null;
    if (verdict && !verdict.ok) {
      throw problem('target_not_allowed', `token_url: ${verdict.reason}`, [{ path: 'token_url', message: verdict.reason }]);
    }
  }

  async function find(teamId: string, idOrName: string): Promise<Row> {
    const [row] = await sql<
      Row[]
    >`${selectRows(sql, teamId)} and ${isUuid(idOrName) ? sql`c.id = ${idOrName}` : sql`c.name = ${idOrName}`}`;
    if (!row) throw problem('not_found', 'no such connection');
    return row;
  }

  const nameTaken = (name: string) =>
    problem('conflict', `a connection named "${name}" exists`, [{ path: 'name', message: 'is taken by another connection' }]);

  app.post('/connections', async (c) => {
    const input = parseOrThrow(createConnectionSchema, await readJson(c));
    if (input.type === 'oauth2_client_credentials') checkTokenUrl(input);
    const sealer = needBox();
    const teamId = c.get('principal').teamId;
    const id = uuidv7();
    const { settings, secret } = split(input);
    const [row] = await sql<{ id: string }[]>`
      insert into connections (team_id, id, name, type, settings, secret)
      values (${teamId}, ${id}, ${input.name}, ${input.type}, ${sql.json(settings as JsonValue)},
        ${sealer.seal(JSON.stringify(secret), connectionAad(teamId, id))})
      on conflict (team_id, name) do nothing
      returning id`;
    if (!row) throw nameTaken(input.name);
    return c.json(connectionView(await find(teamId, id)), 201);
  });

  app.get('/connections', async (c) => {
    const rows = await sql<Row[]>`${selectRows(sql, c.get('principal').teamId)} order by c.name limit 1000`;
    return c.json({ data: rows.map(connectionView) });
  });

  app.get('/connections/:id', async (c) => c.json(connectionView(await find(c.get('principal').teamId, c.req.param('id')))));

  app.patch('/connections/:id', async (c) => {
    const patch = parseOrThrow(patchConnectionSchema, await readJson(c));
    const teamId = c.get('principal').teamId;
    const current = await find(teamId, c.req.param('id'));
    const allowed = new Set<string>(['name', ...SETTING_FIELDS[current.type], SECRET_FIELDS[current.type]]);
    const foreign: FieldError[] = Object.keys(patch)
      .filter((k) => !allowed.has(k))
      .map((k) => ({ path: k, message: `is not a field of a ${current.type} connection` }));
    if (foreign.length) throw problem('validation_failed', foreign.map((e) => `${e.path}: ${e.message}`).join('; '), foreign);
    checkTokenUrl({ token_url: patch.token_url });
    const sealer = needBox();
    const [stored] = await sql<{ secret: string }[]>`select secret from connections where team_id = ${teamId} and id = ${current.id}`;
    if (!stored) throw problem('not_found', 'no such connection');
    // Merge onto what is stored and validate the whole again, as a POST would.
    const secret = JSON.parse(sealer.open(stored.secret, connectionAad(teamId, current.id))) as ConnectionSecret;
    const merged: Record<string, unknown> = { ...current.settings, ...secret, name: current.name, type: current.type };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete merged[k];
      else if (v !== undefined) merged[k] = v;
    }
    const input = parseOrThrow(createConnectionSchema, merged);
    const next = split(input);
    // New credentials or endpoint: the cached token was issued for the old ones.
    const [row] = await sql
      .begin(async (tx) => {
        await tx`delete from connection_tokens where team_id = ${teamId} and connection_id = ${current.id}`;
        return tx<{ id: string }[]>`
        update connections set name = ${input.name}, settings = ${sql.json(next.settings as JsonValue)},
          secret = ${sealer.seal(JSON.stringify(next.secret), connectionAad(teamId, current.id))}, updated_at = now()
        where team_id = ${teamId} and id = ${current.id}
          and not exists (select 1 from connections o where o.team_id = ${teamId} and o.name = ${input.name} and o.id <> ${current.id})
        returning id`;
      })
      // Renamed at the same moment as another connection took the name: the unique key decides.
      .catch((err) => {
        if ((err as { code?: string }).code === '23505') return [];
        throw err;
      });
    if (!row) throw nameTaken(input.name);
    return c.json(connectionView(await find(teamId, current.id)));
  });

  // Tasks that still name a deleted connection fail their attempts as auth_error, saying so.
  app.delete('/connections/:id', async (c) => {
    const teamId = c.get('principal').teamId;
    const current = await find(teamId, c.req.param('id'));
    const res = await sql`delete from connections where team_id = ${teamId} and id = ${current.id}`;
    if (res.count === 0) throw problem('not_found', 'no such connection');
    return c.body(null, 204);
  });

  return app;
}
