// /v2/queues (docs/qstash.md) on the native queues (docs/queues.md, shared/queues.ts): a QStash
// queue is a Posthorn queue; its parallelism and pause are the queue's, and messages enqueued
// with /v2/enqueue/<queue>/... are tasks naming it. QStash has no start rate: an upsert keeps the
// rate a queue was given natively.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { deleteQueue, getQueue, listQueues, type Queue, upsertQueue } from '../../shared/queues.ts';
import { queueNameSchema } from '../../shared/schemas.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { parseOrThrow, readJson } from '../http.ts';

const upsertSchema = z.strictObject({
  queueName: queueNameSchema,
  parallelism: z.number().int().min(1).max(10_000).optional(),
  paused: z.boolean().optional(),
});

/** QStash's QueueResponse; `lag` is what the queue still holds to deliver (scheduled, pending, retrying). */
function queueView(q: Queue) {
  return {
    name: q.name,
    parallelism: q.parallelism ?? 0,
    paused: q.paused,
    lag: q.counts.scheduled + q.counts.pending + q.counts.retrying,
    createdAt: q.created_at?.getTime() ?? 0,
    updatedAt: q.updated_at?.getTime() ?? 0,
  };
}

export function qstashQueueRoutes(deps: { sql: Sql }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();
  const nameOf = (raw: string) => parseOrThrow(queueNameSchema, raw, ['queueName']);

  /** Writes parallelism and pause, keeping the rest of the queue's settings. */
  async function upsert(teamId: string, name: string, change: { parallelism?: number; paused?: boolean }) {
    const current = await getQueue(sql, teamId, name);
    return upsertQueue(sql, teamId, name, {
      parallelism: change.parallelism ?? current?.parallelism ?? null,
      rate_per_second: current?.rate_per_second ?? null,
      paused: change.paused ?? current?.paused ?? false,
    });
  }

  app.post('/queues', requireRole('write'), async (c) => {
    const body = parseOrThrow(upsertSchema, await readJson(c));
    await upsert(c.get('principal').teamId, body.queueName, { parallelism: body.parallelism, paused: body.paused });
    return c.body(null, 200);
  });

  app.get('/queues', async (c) => c.json((await listQueues(sql, c.get('principal').teamId)).map(queueView)));

  app.get('/queues/:name', async (c) => {
    const q = await getQueue(sql, c.get('principal').teamId, nameOf(c.req.param('name')));
    if (!q) throw problem('not_found', `queue ${c.req.param('name')} not found`);
    return c.json(queueView(q));
  });

  app.delete('/queues/:name', requireRole('write'), async (c) => {
    if (!(await deleteQueue(sql, c.get('principal').teamId, nameOf(c.req.param('name')))))
      throw problem('not_found', `queue ${c.req.param('name')} not found`);
    return c.body(null, 200);
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post(`/queues/:name/${action}`, requireRole('write'), async (c) => {
      await upsert(c.get('principal').teamId, nameOf(c.req.param('name')), { paused: action === 'pause' });
      return c.body(null, 200);
    });
  }

  return app;
}
