// /api/v1/queues (docs/api.md §6, docs/queues.md): a team's queue limits and what each queue
// holds. Reads for any key, changes for write keys. The work is in shared/queues.ts, which the
// QStash layer calls too.
import { Hono } from 'hono';
import type { Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { deleteQueue, getQueue, listQueues, queueSettingsSchema, queueView, upsertQueue } from '../../shared/queues.ts';
import { queueNameSchema } from '../../shared/schemas.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { parseOrThrow, readJson } from '../http.ts';

/** The :name of the path; a name no task could carry is a 400 naming `name`. */
function queueName(raw: string): string {
  return parseOrThrow(queueNameSchema, raw, ['name']);
}

export function queueRoutes(deps: { sql: Sql }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();

  app.get('/queues', async (c) => {
    const list = await listQueues(sql, c.get('principal').teamId);
    return c.json({ data: list.map(queueView), next_cursor: null });
  });

  app.get('/queues/:name', async (c) => {
    const q = await getQueue(sql, c.get('principal').teamId, queueName(c.req.param('name')));
    if (!q) throw problem('not_found', 'no such queue: it has no settings and no task names it');
    return c.json(queueView(q));
  });

  app.put('/queues/:name', requireRole('write'), async (c) => {
    const name = queueName(c.req.param('name'));
    const settings = parseOrThrow(queueSettingsSchema, await readJson(c));
    return c.json(queueView(await upsertQueue(sql, c.get('principal').teamId, name, settings)));
  });

  app.delete('/queues/:name', requireRole('write'), async (c) => {
    const removed = await deleteQueue(sql, c.get('principal').teamId, queueName(c.req.param('name')));
    if (!removed) throw problem('not_found', 'no such queue');
    return c.body(null, 204);
  });

  return app;
}
