// /v2/keys (docs/qstash.md, admin role, like /api/v1/signing-keys): the team's QStash signing
// keys. Deliveries are signed with `current`; receivers accept `current` or `next`. A rotation
// makes `next` current and draws a new `next`, so a receiver still holding the pair it read
// before the rotation keeps verifying (with its `next`) until it reads the new pair. Workers
// cache keys for 2 s (worker/signer.ts): deliveries switch to the new current within that.
import { Hono } from 'hono';
import type { Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { type AuthEnv, requireRole } from '../auth.ts';

type Row = { current_key: string; next_key: string };
const view = (r: Row) => ({ current: r.current_key, next: r.next_key });

export function qstashKeyRoutes(deps: { sql: Sql }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();
  app.use('/keys', requireRole('admin'));
  app.use('/keys/*', requireRole('admin'));

  app.get('/keys', async (c) => {
    const [row] = await sql<Row[]>`select current_key, next_key from qstash_signing_keys where team_id = ${c.get('principal').teamId}`;
    if (!row) throw problem('not_found', 'this team has no QStash signing keys');
    return c.json(view(row));
  });

  app.post('/keys/rotate', async (c) => {
    const [row] = await sql<Row[]>`
      update qstash_signing_keys set current_key = next_key, next_key = posthorn_new_qstash_key(), rotated_at = now()
      where team_id = ${c.get('principal').teamId}
      returning current_key, next_key`;
    if (!row) throw problem('not_found', 'this team has no QStash signing keys');
    return c.json(view(row));
  });

  return app;
}
