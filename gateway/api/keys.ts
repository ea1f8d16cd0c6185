// /api/v1/keys (docs/api.md §2, admin role): create (the key is shown this once), list without
// secrets, revoke. Every query names the caller's team: another team's key id is a 404.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { isUuid } from '../../shared/ids.ts';
import { createKey, ROLES } from '../../shared/keys.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { iso, parseOrThrow, readJson } from '../http.ts';

export const createKeySchema = z.strictObject({
  name: z.string().min(1).max(128).optional().meta({ description: 'default: "<role> key"' }),
  role: z.enum(ROLES as ['read', 'write', 'admin']),
});

export function keyRoutes(deps: { sql: Sql }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();
  app.use('/keys', requireRole('admin'));
  app.use('/keys/*', requireRole('admin'));

  app.post('/keys', async (c) => {
    const input = parseOrThrow(createKeySchema, await readJson(c));
    const k = await createKey(sql, c.get('principal').teamId, input.name ?? `${input.role} key`, input.role);
    return c.json({ id: k.id, name: k.name, role: k.role, key: k.key, created_at: k.created_at.toISOString() }, 201);
  });

  app.get('/keys', async (c) => {
    const rows = await sql`
      select id, name, role, created_at, revoked_at from api_keys
      where team_id = ${c.get('principal').teamId}
      order by created_at, id`;
    return c.json({
      data: rows.map((r) => ({ id: r.id, name: r.name, role: r.role, created_at: iso(r.created_at), revoked_at: iso(r.revoked_at) })),
    });
  });

  // One rule for every DELETE (docs/api.md): what is already gone answers 404, so revoking a
  // revoked key is a 404 like an unknown id (the list keeps showing it with revoked_at).
  // Gateways cache keys for 2 s, so a revoked key stops working everywhere within that (5 s
  // promised).
  app.delete('/keys/:id', async (c) => {
    const id = c.req.param('id');
    if (!isUuid(id)) throw problem('not_found', 'no such key');
    const [row] = await sql`
      update api_keys set revoked_at = now()
      where id = ${id} and team_id = ${c.get('principal').teamId} and revoked_at is null
      returning id`;
    if (!row) throw problem('not_found', 'no such key, or it is already revoked');
    return c.body(null, 204);
  });

  return app;
}
