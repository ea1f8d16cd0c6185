// The operator API (docs/api.md §2): teams, behind `Authorization: Bearer $POSTHORN_OPERATOR_TOKEN`.
// Without the variable the routes do not exist (404, like any unknown path). A wrong token is
// a failed authentication like a wrong API key: it counts against the client's address.
import { createHash, timingSafeEqual } from 'node:crypto';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { rateLimitSchema } from '../../shared/config.ts';
import type { Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { createKey } from '../../shared/keys.ts';
import { bearerToken } from '../auth.ts';
import { parseOrThrow, readJson } from '../http.ts';

const slugSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, 'lower-case letters, digits and inner hyphens');
const rateLimitInput = z
  .string()
  .max(32)
  .refine(
    (raw) => rateLimitSchema.safeParse(raw).success,
    'expected <count>/<window>, e.g. 500/1s (count 1 to 1000000; window 1s to 1h, in ms, s, m or h)',
  );

export const createTeamSchema = z.strictObject({
  slug: slugSchema,
  name: z.string().min(1).max(128),
  rate_limit: rateLimitInput.nullable().optional().meta({ description: 'requests per API key per window; null = POSTHORN_RATE_LIMIT' }),
});

export const patchTeamSchema = z
  .strictObject({
    name: z.string().min(1).max(128).optional(),
    rate_limit: rateLimitInput.nullable().optional().meta({ description: 'null = back to POSTHORN_RATE_LIMIT' }),
  })
  .refine((p) => p.name !== undefined || p.rate_limit !== undefined, 'give name or rate_limit');

type TeamRow = { slug: string; name: string; rate_limit: string | null; created_at: Date };
const teamView = (t: TeamRow) => ({ slug: t.slug, name: t.name, rate_limit: t.rate_limit, created_at: t.created_at.toISOString() });

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The :slug of the path, or 404 when it could not name a team (also keeps NUL away from SQL). */
function slugParam(c: Context): string {
  const slug = c.req.param('slug') ?? '';
  if (!slugSchema.safeParse(slug).success) throw problem('not_found', 'no such team');
  return slug;
}

/** Compares SHA-256 digests in constant time, so the comparison leaks neither content nor length. */
function operatorAuth(token: string, onFailure: (c: Context) => Promise<void>): MiddlewareHandler {
  const expected = digest(token);
  return async function operatorToken(c, next) {
    const token = bearerToken(c);
    if (token === null || !timingSafeEqual(digest(token), expected)) {
      await onFailure(c);
      throw problem('unauthorized', 'send the operator token as "Authorization: Bearer <token>"', undefined, {
        'www-authenticate': 'Bearer',
      });
    }
    await next();
  };
}

export function adminRoutes(deps: { sql: Sql; operatorToken: string; onAuthFailure: (c: Context) => Promise<void> }) {
  const { sql } = deps;
  const app = new Hono();
  app.use('*', operatorAuth(deps.operatorToken, deps.onAuthFailure));

  app.post('/teams', async (c) => {
    const input = parseOrThrow(createTeamSchema, await readJson(c));
    const created = await sql.begin(async (tx) => {
      const [team] = await tx<(TeamRow & { id: string })[]>`
        insert into teams (slug, name, rate_limit) values (${input.slug}, ${input.name}, ${input.rate_limit ?? null})
        on conflict (slug) do nothing
        returning id, slug, name, rate_limit, created_at`;
      if (!team) return null;
      // The team's first admin key, shown in this response only; its signing secret comes
      // with the row (trigger in migration 002).
      const key = await createKey(tx, String(team.id), 'admin (operator)', 'admin');
      return { team, key: key.key };
    });
    if (!created) throw problem('conflict', `a team with slug "${input.slug}" exists`, [{ path: 'slug', message: 'already taken' }]);
    return c.json({ team: teamView(created.team), admin_key: created.key }, 201);
  });

  app.get('/teams', async (c) => {
    const rows = await sql<TeamRow[]>`select slug, name, rate_limit, created_at from teams order by created_at, id`;
    return c.json({ data: rows.map(teamView) });
  });

  app.get('/teams/:slug', async (c) => {
    const [row] = await sql<TeamRow[]>`select slug, name, rate_limit, created_at from teams where slug = ${slugParam(c)}`;
    if (!row) throw problem('not_found', 'no such team');
    return c.json(teamView(row));
  });

  // A new rate limit reaches every gateway within 2 s (the key cache in gateway/auth.ts).
  app.patch('/teams/:slug', async (c) => {
    const input = parseOrThrow(patchTeamSchema, await readJson(c));
    const [row] = await sql<TeamRow[]>`
      update teams set
        name = coalesce(${input.name ?? null}, name),
        rate_limit = case when ${input.rate_limit !== undefined} then ${input.rate_limit ?? null} else rate_limit end
      where slug = ${slugParam(c)}
      returning slug, name, rate_limit, created_at`;
    if (!row) throw problem('not_found', 'no such team');
    return c.json(teamView(row));
  });

  return app;
}
