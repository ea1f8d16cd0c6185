// Receiving webhooks: anything sent to /in/<slug> (no API key) is stored as an event and
// answered 202 as soon as its row has committed; a worker then forwards it to the endpoint's
// forward_url as an ordinary task (docs/endpoints.md). The forwarded request keeps the method,
// the body's exact bytes (binary too: body_encoding 'base64' on the task, migration 010), the
// content type and the query string; every original header travels as
// x-posthorn-forwarded-<name>, hop-by-hop ones dropped.
//
// Bursts: concurrent requests are written together (shared/group-commit.ts), the event rows and
// their tasks in one transaction per group, so 5,000 webhooks at once are a few dozen
// transactions, and a request is answered 202 only after its rows committed: none is lost.
import type { Context, MiddlewareHandler } from 'hono';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Sql } from '../shared/db.ts';
import { isRowError, problem } from '../shared/errors.ts';
import { createGroupCommit } from '../shared/group-commit.ts';
import { uuidv7 } from '../shared/ids.ts';
import { headerValueProblem } from '../shared/input-rules.ts';
import type { TaskInput } from '../shared/schemas.ts';
import { buildTask, DEFAULT_TIMEOUT_MS, insertTasks, type NewTask, taskTraceparent } from '../shared/tasks.ts';
import type { EndpointRow } from './api/endpoints.ts';
import { deadline, deadlineSignal } from './http.ts';

/** A stored event, as forwarding reads it. */
export type EventRow = {
  id: string;
  endpoint_id: string;
  method: string;
  query: string;
  headers: Record<string, string>;
  content_type: string | null;
  body: Buffer | null;
  task_id?: string | null;
  received_at?: Date;
};

export const FORWARDED_PREFIX = 'x-posthorn-forwarded-';
/** The methods /in/<slug> accepts: those a task can make (docs/api.md §4); Hono answers HEAD as GET. */
export const INBOUND_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

// Hop-by-hop headers (RFC 9110 §7.6.1) and the framing ones the worker sets itself.
const DROPPED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
]);

/** The original headers worth forwarding: hop-by-hop ones and those Connection names dropped. */
export function keptHeaders(headers: Headers): Record<string, string> {
  const named = new Set((headers.get('connection') ?? '').split(',').map((s) => s.trim().toLowerCase()));
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    if (DROPPED.has(name) || named.has(name)) return;
    // A value the worker could not send (bytes outside visible ASCII) would fail every attempt.
    if (headerValueProblem(value)) return;
    out[name] = value;
  });
  return out;
}

/** The content type to forward, or none when it could not be sent again (bytes outside visible ASCII). */
const contentType = (v: string | undefined) => (v === undefined || headerValueProblem(v) ? null : v);

/** The body as a task holds it: text when it is UTF-8 without NUL, else base64. */
function taskBody(buf: Buffer | null): { body: string | null; body_encoding: 'base64' | null } {
  if (!buf || buf.length === 0) return { body: null, body_encoding: null };
  try {
    // ignoreBOM: a leading byte order mark is part of the bytes and is kept.
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
    if (!text.includes('\0')) return { body: text, body_encoding: null };
  } catch {
    /* not UTF-8 */
  }
  return { body: buf.toString('base64'), body_encoding: 'base64' };
}

/** forward_url with the request's query string added to its own. */
function forwardUrl(base: string, query: string): string {
  if (!query) return base;
  const u = new URL(base);
  u.search = u.search ? `${u.search}&${query.slice(1)}` : query;
  return u.toString();
}

/** The task that forwards an event (also what a replay enqueues again). */
export function forwardTask(
  endpoint: Pick<EndpointRow, 'team_id' | 'forward_url' | 'retry' | 'queue'>,
  event: EventRow,
  traceparent: string | undefined,
): NewTask {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.headers)) headers[`${FORWARDED_PREFIX}${k}`] = v;
  if (event.content_type) headers['content-type'] = event.content_type;
  // The endpoint's retry, queue and timeout as a task input would give them; the event's own
  // headers and bytes go in as they are (not through the input's header and body encoding).
  const input: TaskInput = {
    url: forwardUrl(endpoint.forward_url, event.query),
    method: event.method as TaskInput['method'], // one of INBOUND_METHODS, all task methods
    headers: {},
    retry: endpoint.retry ?? undefined,
    timeout_ms: DEFAULT_TIMEOUT_MS,
    queue: endpoint.queue ?? undefined,
    label: 'inbound',
  };
  return buildTask(input, {
    teamId: String(endpoint.team_id),
    traceparent: taskTraceparent(traceparent),
    extra: { headers, ...taskBody(event.body), body_is_json: false },
  });
}

type Item = { event: EventRow & { team_id: string }; task: NewTask; signal?: AbortSignal };

/** Writes groups of events with their tasks, one transaction per group. */
export function createInboundWriter(sql: Sql, opts: { maxBatch?: number; lanes?: number } = {}) {
  const group = createGroupCommit<Item, boolean>(
    async (items) => {
      // A request answered 503 at its deadline while it waited is not stored.
      const live = items.filter((i) => !i.signal?.aborted);
      if (live.length) {
        await sql.begin(async (tx) => {
          await insertTasks(
            tx,
            live.map((i) => i.task),
          );
          const rows = live.map(({ event: e, task }) => ({
            team_id: e.team_id,
            id: e.id,
            endpoint_id: e.endpoint_id,
            method: e.method,
            query: e.query,
            headers: e.headers,
            content_type: e.content_type,
            body: e.body ? e.body.toString('base64') : null,
            task_id: task.id,
          }));
          await tx`
            insert into endpoint_events (team_id, id, endpoint_id, method, query, headers, content_type, body, task_id)
            select r.team_id, r.id, r.endpoint_id, r.method, r.query, r.headers, r.content_type, decode(r.body, 'base64'), r.task_id
            from jsonb_to_recordset(${tx.json(rows as never)}::jsonb) as r(team_id bigint, id uuid, endpoint_id uuid, method text,
              query text, headers jsonb, content_type text, body text, task_id uuid)`;
        });
      }
      return items.map((i) => !i.signal?.aborted);
    },
    { maxBatch: opts.maxBatch ?? 200, lanes: opts.lanes ?? 4, isolate: isRowError },
  );
  return {
    async write(item: Item) {
      if (!(await group.add(item))) throw item.signal!.reason;
    },
    drain: () => group.drain(),
  };
}
export type InboundWriter = ReturnType<typeof createInboundWriter>;

export type InboundDeps = {
  sql: Sql;
  writer: InboundWriter;
  maxBodyBytes: number;
  deadlineMs?: number;
  bodyTimeoutMs?: number;
  /** Counts a request against its endpoint's limit (gateway/rate-limit.ts); throws 429 past it. */
  limit?: (endpointId: string) => Promise<void>;
};

type Endpoint = Pick<EndpointRow, 'team_id' | 'id' | 'forward_url' | 'retry' | 'queue' | 'enabled'>;

/** The /in routes, mounted at /in by gateway/app.ts. */
export function inboundRoutes(deps: InboundDeps) {
  const { sql } = deps;
  const app = new Hono();
  app.use('*', deadline(deps.deadlineMs ?? 4500, { bodyTimeoutMs: deps.bodyTimeoutMs }));

  const tooLarge = (c: Context) => {
    throw problem('payload_too_large', `the request body is larger than ${deps.maxBodyBytes} bytes`);
  };
  const chunked = bodyLimit({ maxSize: deps.maxBodyBytes, onError: tooLarge });
  // A declared Content-Length is checked without reading; a chunked body is counted as it comes.
  const limitBody: MiddlewareHandler = async (c, next) => {
    const declared = c.req.header('content-length');
    if (declared === undefined || c.req.header('transfer-encoding') !== undefined) return chunked(c, next);
    if (Number(declared) > deps.maxBodyBytes) return tooLarge(c);
    await next();
  };

  app.on([...INBOUND_METHODS], '/:slug', limitBody, async (c) => {
    const slug = c.req.param('slug');
    // Slugs are [A-Za-z0-9]{24}; anything else is not looked up.
    const [endpoint] = /^[A-Za-z0-9]{1,64}$/.test(slug)
      ? await sql<Endpoint[]>`
          select team_id::text, id, forward_url, retry, queue, enabled from endpoints where slug = ${slug} limit 1`
      : [];
    if (!endpoint || !endpoint.enabled) throw problem('not_found', 'no such endpoint');
    await deps.limit?.(endpoint.id);
    const bytes = Buffer.from(await c.req.arrayBuffer());
    const url = c.req.url;
    const q = url.indexOf('?');
    const event: EventRow & { team_id: string } = {
      team_id: endpoint.team_id,
      id: uuidv7(),
      endpoint_id: endpoint.id,
      method: c.req.method,
      query: q === -1 || q === url.length - 1 ? '' : url.slice(q),
      headers: keptHeaders(c.req.raw.headers),
      content_type: contentType(c.req.header('content-type')),
      body: bytes.length ? bytes : null,
    };
    const task = forwardTask(endpoint, event, c.req.header('traceparent'));
    try {
      await deps.writer.write({ event, task, signal: deadlineSignal(c) });
    } catch (e) {
      // The endpoint was deleted between the lookup and the insert (its events' foreign key).
      if ((e as { code?: string }).code === '23503') throw problem('not_found', 'no such endpoint');
      throw e;
    }
    return c.json({ id: event.id, task_id: task.id }, 202);
  });
  return app;
}
