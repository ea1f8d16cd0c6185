// /api/v1/endpoints (docs/endpoints.md): inbound endpoints that receive webhooks at /in/<slug>
// (gateway/inbound.ts) and forward each one as a task. Their events, and replaying one.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Queryable, Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { isUuid, randomBase62, uuidv7 } from '../../shared/ids.ts';
import { httpUrl, retrySchema } from '../../shared/schemas.ts';
import type { TargetCheck } from '../../shared/targets.ts';
import { displayStatus, insertTasks, type RetryPolicy } from '../../shared/tasks.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { iso, parseOrThrow, readJson } from '../http.ts';
import { type EventRow, forwardTask } from '../inbound.ts';
import { applyPatch, deleteOwned, listOwned, loadOwned, nameConflict, readPatch, setFields } from './team-rows.ts';

/** 24 base62 characters: 143 random bits, unguessable. */
export const SLUG_LENGTH = 24;
/** Event bodies in a list are cut here (body_truncated); the stored body stays whole. */
export const LISTED_BODY_BYTES = 64 * 1024;

export const endpointInputSchema = z.strictObject({
  name: z.string().min(1).max(128),
  forward_url: httpUrl,
  retry: retrySchema.optional(),
  queue: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : - only')
    .optional(),
  enabled: z.boolean().default(true),
});
export type EndpointInput = z.output<typeof endpointInputSchema>;

export type EndpointRow = {
  team_id: string;
  id: string;
  name: string;
  slug: string;
  forward_url: string;
  retry: RetryPolicy | null;
  queue: string | null;
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
};

export function endpointView(e: EndpointRow) {
  return {
    id: e.id,
    name: e.name,
    slug: e.slug,
    inbound_url: `/in/${e.slug}`,
    forward_url: e.forward_url,
    retry: e.retry,
    queue: e.queue,
    enabled: e.enabled,
    created_at: iso(e.created_at),
    updated_at: iso(e.updated_at),
  };
}

/** The stored form of an input: what sync compares with (gateway/api/sync.ts). */
export const endpointFields = (i: EndpointInput) => ({
  name: i.name,
  forward_url: i.forward_url,
  retry: i.retry ?? null,
  queue: i.queue ?? null,
  enabled: i.enabled,
});

/** 400 target_not_allowed for a forward_url the workers would refuse (docs/api.md §7). */
export function checkEndpoint(i: EndpointInput, checkTarget: TargetCheck, prefix: (string | number)[] = []) {
  const verdict = checkTarget(new URL(i.forward_url));
  if (!verdict.ok) {
    const path = [...prefix, 'forward_url'].join('.');
    throw problem('target_not_allowed', `${path}: ${verdict.reason}`, [{ path, message: verdict.reason }]);
  }
}

export async function insertEndpoint(sql: Queryable, teamId: string, i: EndpointInput): Promise<EndpointRow> {
  const f = endpointFields(i);
  const [row] = await sql<EndpointRow[]>`
    insert into endpoints (team_id, id, name, slug, forward_url, retry, queue, enabled)
    values (${teamId}, ${uuidv7()}, ${f.name}, ${randomBase62(SLUG_LENGTH)}, ${f.forward_url},
      ${f.retry === null ? null : sql.json(f.retry)}, ${f.queue}, ${f.enabled})
    returning team_id::text, *`;
  return row!;
}

export async function updateEndpoint(sql: Queryable, teamId: string, id: string, i: EndpointInput): Promise<EndpointRow | undefined> {
  const f = endpointFields(i);
  const [row] = await sql<EndpointRow[]>`
    update endpoints set name = ${f.name}, forward_url = ${f.forward_url}, retry = ${f.retry === null ? null : sql.json(f.retry)},
      queue = ${f.queue}, enabled = ${f.enabled}, updated_at = now()
    where team_id = ${teamId} and id = ${id}
    returning team_id::text, *`;
  return row;
}

const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

/** The event id a cursor stands for, or a 400. */
function cursorId(cursor: string | undefined): string | null {
  if (cursor === undefined) return null;
  const id = Buffer.from(cursor, 'base64url').toString();
  if (!isUuid(id))
    throw problem('validation_failed', 'cursor: not a cursor from a previous page', [{ path: 'cursor', message: 'invalid cursor' }]);
  return id;
}

/** Bytes shown as text when they are UTF-8 without NUL, else as base64 (body_encoding says which). */
export function showBytes(buf: Buffer | null): { body: string | null; body_encoding?: 'base64' } {
  if (buf === null) return { body: null };
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
    if (!text.includes('\0')) return { body: text };
  } catch {
    /* not UTF-8 */
  }
  return { body: buf.toString('base64'), body_encoding: 'base64' };
}

export function endpointRoutes(deps: { sql: Sql; checkTarget: TargetCheck }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();

  function validate(raw: unknown): EndpointInput {
    const input = parseOrThrow(endpointInputSchema, raw);
    checkEndpoint(input, deps.checkTarget);
    return input;
  }

  const load = (teamId: string, id: string) => loadOwned<EndpointRow>(sql, 'endpoints', 'endpoint', teamId, id);

  app.post('/endpoints', requireRole('write'), async (c) => {
    const input = validate(await readJson(c));
    const teamId = c.get('principal').teamId;
    const row = await nameConflict('an endpoint', input.name, () => insertEndpoint(sql, teamId, input));
    return c.json(endpointView(row), 201);
  });

  app.get('/endpoints', async (c) => {
    const rows = await listOwned<EndpointRow>(sql, 'endpoints', c.get('principal').teamId);
    return c.json({ data: rows.map(endpointView), next_cursor: null });
  });

  app.get('/endpoints/:id', async (c) => c.json(endpointView(await load(c.get('principal').teamId, c.req.param('id')))));

  app.patch('/endpoints/:id', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    const patch = await readPatch(c);
    const current = await load(teamId, c.req.param('id'));
    // Merged onto the stored fields and validated whole: a PATCH cannot leave what a POST refuses.
    const input = validate(applyPatch(setFields(endpointFields(current as unknown as EndpointInput)), patch));
    const row = await nameConflict('an endpoint', input.name, () => updateEndpoint(sql, teamId, current.id, input));
    if (!row) throw problem('not_found', 'no such endpoint');
    return c.json(endpointView(row));
  });

  app.delete('/endpoints/:id', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    await deleteOwned(sql, 'endpoints', 'endpoint', teamId, c.req.param('id'));
    return c.body(null, 204);
  });

  app.get('/endpoints/:id/events', async (c) => {
    const { teamId } = c.get('principal');
    const endpoint = await load(teamId, c.req.param('id'));
    const q = parseOrThrow(listQuery, c.req.query());
    const after = cursorId(q.cursor);
    const rows = await sql<
      (Omit<EventRow, 'body'> & { body: Buffer | null; body_size: number; task_status: string | null; task_run_at: Date | null })[]
    >`
      select e.id, e.endpoint_id, e.method, e.query, e.headers, e.content_type, e.received_at, e.task_id,
        substring(e.body from 1 for ${LISTED_BODY_BYTES}) as body, coalesce(octet_length(e.body), 0) as body_size,
        t.status as task_status, t.run_at as task_run_at
      from endpoint_events e
      left join tasks t on t.team_id = e.team_id and t.id = e.task_id
      where e.team_id = ${teamId} and e.endpoint_id = ${endpoint.id} ${after ? sql`and e.id < ${after}` : sql``}
      order by e.id desc
      limit ${q.limit + 1}`;
    const page = rows.slice(0, q.limit);
    return c.json({
      data: page.map((e) => ({
        id: e.id,
        endpoint_id: e.endpoint_id,
        method: e.method,
        query: e.query,
        headers: e.headers,
        content_type: e.content_type,
        ...showBytes(e.body),
        body_size: e.body_size,
        body_truncated: e.body_size > LISTED_BODY_BYTES,
        received_at: iso(e.received_at),
        task_id: e.task_id,
        // The forwarding task as it is now; null once the pruner removed it.
        task: e.task_id && e.task_status ? { id: e.task_id, status: displayStatus(e.task_status as never, e.task_run_at!) } : null,
      })),
      next_cursor: rows.length > q.limit ? Buffer.from(page.at(-1)!.id).toString('base64url') : null,
    });
  });

  app.post('/endpoints/:id/events/:event_id/replay', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    const endpoint = await load(teamId, c.req.param('id'));
    const eventId = c.req.param('event_id');
    const [event] = isUuid(eventId)
      ? await sql<EventRow[]>`
          select id, endpoint_id, method, query, headers, content_type, body from endpoint_events
          where team_id = ${teamId} and endpoint_id = ${endpoint.id} and id = ${eventId}`
      : [];
    if (!event) throw problem('not_found', 'no such event');
    // Forwarded again with the endpoint's settings as they are now (forward_url, retry, queue).
    const task = forwardTask(endpoint, event, undefined);
    const inserted = await sql.begin(async (tx) => {
      const rows = await insertTasks(tx, [task]);
      await tx`update endpoint_events set task_id = ${task.id} where team_id = ${teamId} and id = ${event.id}`;
      return rows.get(task.id)!;
    });
    return c.json(
      {
        id: inserted.id,
        status: displayStatus('pending', inserted.run_at),
        run_at: inserted.run_at.toISOString(),
        created_at: inserted.created_at.toISOString(),
        event_id: event.id,
      },
      202,
    );
  });

  return app;
}
