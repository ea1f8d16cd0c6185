// /api/v1/signing-keys (docs/api.md §4 "Delivery", admin role): the team's Standard Webhooks
// secrets. A rotation makes a new current secret; the old one keeps signing next to it for
// 24 h (receivers see two signatures and switch over at leisure) or until it is deleted.
// Workers cache secrets for 2 s (worker/signer.ts), so changes reach deliveries within that.
import { Hono } from 'hono';
import type { Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { type AuthEnv, requireRole } from '../auth.ts';

export const PREVIOUS_KEY_TTL = '24 hours';

type Row = { current_secret: string; previous_secret: string | null; rotated_at: Date | null; previous_expires_at: Date | null };

function view(r: Row) {
  // A previous secret past its 24 h is gone, whether or not a row still holds it.
  const live = r.previous_expires_at !== null && r.previous_expires_at.getTime() > Date.now();
  return {
    current: r.current_secret,
    previous: live ? r.previous_secret : null,
    rotated_at: r.rotated_at ? r.rotated_at.toISOString() : null,
    previous_expires_at: live ? r.previous_expires_at!.toISOString() : null,
  };
}

export function signingKeyRoutes(deps: { sql: Sql }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();
  app.use('/signing-keys', requireRole('admin'));
  app.use('/signing-keys/*', requireRole('admin'));

  app.get('/signing-keys', async (c) => {
    const [row] = await sql<Row[]>`
      select current_secret, previous_secret, rotated_at, previous_expires_at
      from team_signing_keys where team_id = ${c.get('principal').teamId}`;
    if (!row) throw problem('not_found', 'this team has no signing key');
    return c.json(view(row));
  });

  app.post('/signing-keys/rotate', async (c) => {
    const [row] = await sql<Row[]>`
      update team_signing_keys set
        previous_secret = current_secret,
        current_secret = posthorn_new_signing_secret(),
        rotated_at = now(),
        previous_expires_at = now() + ${PREVIOUS_KEY_TTL}::interval
      where team_id = ${c.get('principal').teamId}
      returning current_secret, previous_secret, rotated_at, previous_expires_at`;
    if (!row) throw problem('not_found', 'this team has no signing key');
    return c.json(view(row), 200);
  });

  app.delete('/signing-keys/previous', async (c) => {
    const res = await sql`
      update team_signing_keys set previous_secret = null, previous_expires_at = null
      where team_id = ${c.get('principal').teamId} and previous_secret is not null`;
    // Like every DELETE (docs/api.md): nothing to remove is a 404.
    if (res.count === 0) throw problem('not_found', 'this team has no previous signing key');
    return c.body(null, 204);
  });

  return app;
}
