// /v2/dlq (docs/qstash.md): QStash's dead-letter queue is the team's failed tasks (retries spent
// or not retryable), newest first. Deleting an entry deletes the failed task and its attempts,
// as the pruner would after the retention; retrying one replays it (POST /api/v1/tasks/:id/replay).
import { Hono } from 'hono';
import type { Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { isUuid } from '../../shared/ids.ts';
import { decodeCursor, encodeCursor, parseLastAttempt, replayTask, type TaskRow, taskWithLastAttempt } from '../api/task-queries.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { dlqView } from './views.ts';

const DEFAULT_COUNT = 100;
const MAX_COUNT = 1000;
/** Query parameters of the client's DLQ calls that map onto task columns; others are refused. */
const FILTERS = new Set(['count', 'cursor', 'dlqIds', 'messageId', 'url', 'queueName', 'scheduleId', 'label']);

type Filter = { ids: string[]; url?: string; queue?: string; scheduleId?: string; label?: string; after?: string; count: number };

function readFilter(query: Record<string, string[]>): Filter {
  for (const name of Object.keys(query)) {
    if (!FILTERS.has(name)) throw problem('validation_failed', `DLQ filter "${name}" is not supported (docs/qstash.md)`);
  }
  const one = (n: string) => query[n]?.[0];
  const countRaw = one('count');
  const count = countRaw === undefined ? DEFAULT_COUNT : Number(countRaw);
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT)
    throw problem('validation_failed', `count must be a whole number from 1 to ${MAX_COUNT}`);
  const cursor = one('cursor');
  const after = cursor ? decodeCursor(cursor) : undefined;
  if (after === null) throw problem('validation_failed', 'cursor is not one this API gave out');
  const ids = [...(query.dlqIds ?? []), ...(query.messageId ?? [])];
  // An id that is not one of ours matches nothing (rather than failing the whole list).
  return {
    ids: ids.map((id) => (isUuid(id) ? id : '00000000-0000-0000-0000-000000000000')),
    url: one('url'),
    queue: one('queueName'),
    scheduleId: one('scheduleId'),
    label: one('label'),
    after,
    count,
  };
}

async function failedTasks(sql: Sql, teamId: string, f: Filter) {
  const rows = await sql<TaskRow[]>`
    select ${taskWithLastAttempt(sql)} from tasks t
    where t.team_id = ${teamId} and t.status = 'failed'
      ${f.ids.length ? sql`and t.id = any(${f.ids}::uuid[])` : sql``}
      ${f.url ? sql`and t.url = ${f.url}` : sql``}
      ${f.queue ? sql`and t.queue = ${f.queue}` : sql``}
      ${f.scheduleId && isUuid(f.scheduleId) ? sql`and t.schedule_id = ${f.scheduleId}` : f.scheduleId ? sql`and false` : sql``}
      ${f.label ? sql`and t.label = ${f.label}` : sql``}
      ${f.after ? sql`and t.id < ${f.after}` : sql``}
    order by t.id desc
    limit ${f.count + 1}`;
  rows.forEach(parseLastAttempt);
  const more = rows.length > f.count;
  const page = rows.slice(0, f.count);
  return { page, cursor: more ? encodeCursor(page.at(-1)!.id) : undefined };
}

async function deleteFailed(sql: Sql, teamId: string, ids: string[]): Promise<number> {
  if (!ids.length) return 0;
  const res = await sql`delete from tasks where team_id = ${teamId} and status = 'failed' and id = any(${ids}::uuid[])`;
  return res.count;
}

export function dlqRoutes(deps: { sql: Sql }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();

  app.get('/dlq', async (c) => {
    const { page, cursor } = await failedTasks(sql, c.get('principal').teamId, readFilter(c.req.queries()));
    return c.json({ messages: page.map(dlqView), ...(cursor ? { cursor } : {}) });
  });

  app.get('/dlq/:id', async (c) => {
    const id = c.req.param('id');
    const f = readFilter({ dlqIds: [id] });
    const { page } = await failedTasks(sql, c.get('principal').teamId, f);
    if (!page[0]) throw problem('not_found', `DLQ message ${id} not found`);
    return c.json(dlqView(page[0]));
  });

  app.delete('/dlq/:id', requireRole('write'), async (c) => {
    const id = c.req.param('id');
    const deleted = isUuid(id) ? await deleteFailed(sql, c.get('principal').teamId, [id]) : 0;
    if (!deleted) throw problem('not_found', `DLQ message ${id} not found`);
    return c.json({ deleted });
  });

  // Bulk delete: by dlqIds, or a page of `count` entries matching the filters (the client's
  // delete({ all: true }) loops on the cursor).
  app.delete('/dlq', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    const { page, cursor } = await failedTasks(sql, teamId, readFilter(c.req.queries()));
    const deleted = await deleteFailed(
      sql,
      teamId,
      page.map((t) => t.id),
    );
    return c.json({ deleted, ...(cursor ? { cursor } : {}) });
  });

  app.post('/dlq/retry', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    const { page, cursor } = await failedTasks(sql, teamId, readFilter(c.req.queries()));
    const responses = [];
    for (const t of page) if (typeof (await replayTask(sql, teamId, t.id)) === 'object') responses.push({ messageId: t.id });
    return c.json({ responses, ...(cursor ? { cursor } : {}) });
  });

  return app;
}
