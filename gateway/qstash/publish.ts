// POST /v2/publish/<destination>, /v2/enqueue/<queue>/<destination> and /v2/batch; GET and
// DELETE /v2/messages (docs/qstash.md). The destination is the rest of the path, query included:
// the official client appends the URL as it is (…/v2/publish/https://example.com/hook?x=1).
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { ProblemError, problem } from '../../shared/errors.ts';
import { findBadString } from '../../shared/input-rules.ts';
import { cancelTask, getTask } from '../api/task-queries.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { deadlineSignal, parseOrThrow, readJson } from '../http.ts';
import { parseMessage } from './headers.ts';
import { messageTask, type QstashDeps, type Stored, storeMessages } from './store.ts';
import { messageView } from './views.ts';

/** The path after `prefix` plus the query string: the destination as the client wrote it. */
export function restOfPath(c: Context, prefix: string): string {
  const u = new URL(c.req.url);
  const at = u.pathname.indexOf(prefix);
  return u.pathname.slice(at + prefix.length) + u.search;
}

/** The request body as text: QStash bodies are bytes, Posthorn stores UTF-8 text. */
export async function bodyText(c: Context): Promise<string | null> {
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.length === 0) return null;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw problem('validation_failed', 'the body is not UTF-8 text; binary bodies are not supported (send them base64-encoded)');
  }
  const bad = findBadString(text, 'body');
  if (bad) throw problem('validation_failed', `body: ${bad.message}`);
  return text;
}

/** 201 for a new message, 202 for a duplicate (QStash's deduplication answer). */
const answer = (c: Context, r: Stored) =>
  c.json({ messageId: r.messageId, url: r.url, ...(r.deduplicated ? { deduplicated: true } : {}) }, r.deduplicated ? 202 : 201);

const batchSchema = z
  .array(
    z.strictObject({
      destination: z.string().min(1).max(4096),
      headers: z.record(z.string(), z.string()).optional(),
      body: z.string().nullable().optional(),
      queue: z.string().optional(),
    }),
  )
  .min(1)
  .max(1000);

export function publishRoutes(deps: QstashDeps) {
  const app = new Hono<AuthEnv>();

  async function publishOne(c: Context<AuthEnv>, destination: string, queue?: string) {
    const parsed = parseMessage(destination, c.req.raw.headers.entries(), await bodyText(c));
    const task = messageTask(parsed, c, deps, queue === undefined ? {} : { queue });
    const [stored] = await storeMessages(deps, [task], deadlineSignal(c));
    return answer(c, stored!);
  }

  app.post('/publish/*', requireRole('write'), (c) => publishOne(c, restOfPath(c, '/publish/')));

  app.post('/enqueue/:queue/*', requireRole('write'), (c) => {
    // Split the raw path, not the decoded parameter: the destination keeps its own encoding.
    const rest = restOfPath(c, '/enqueue/');
    const slash = rest.indexOf('/');
    return publishOne(c, rest.slice(slash + 1), c.req.param('queue'));
  });

  app.post('/batch', requireRole('write'), async (c) => {
    const entries = parseOrThrow(batchSchema, await readJson(c));
    const tasks = entries.map((m, i) => {
      try {
        const parsed = parseMessage(m.destination, Object.entries(m.headers ?? {}), m.body ?? null);
        return messageTask(parsed, c, deps, m.queue === undefined ? {} : { queue: m.queue });
      } catch (e) {
        if (e instanceof ProblemError) throw problem(e.code, `message ${i}: ${e.detail}`, e.errors, e.headers);
        throw e;
      }
    });
    const stored = await storeMessages(deps, tasks, deadlineSignal(c));
    return c.json(
      stored.map((r) => ({ messageId: r.messageId, url: r.url, ...(r.deduplicated ? { deduplicated: true } : {}) })),
      201,
    );
  });

  app.get('/messages/:id', async (c) => {
    const t = await getTask(deps.sql, c.get('principal').teamId, c.req.param('id'));
    if (!t) throw problem('not_found', `message ${c.req.param('id')} not found`);
    return c.json(messageView(t));
  });

  /** Cancels one message: canceled, or why not (a finished message is no longer pending: 404, as in QStash). */
  async function cancelOne(teamId: string, id: string): Promise<boolean> {
    const outcome = await cancelTask(deps.sql, teamId, id);
    if (outcome === 'missing') throw problem('not_found', `message ${id} not found`);
    if (outcome === 'finished') throw problem('not_found', `message ${id} has already finished; only pending messages can be canceled`);
    return true;
  }

  app.delete('/messages/:id', requireRole('write'), async (c) => {
    await cancelOne(c.get('principal').teamId, c.req.param('id'));
    return c.json({ cancelled: 1 });
  });

  // Bulk cancel by id (the client's cancel([ids])); cancel by filter or `all` is refused.
  app.delete('/messages', requireRole('write'), async (c) => {
    const ids = c.req.queries('messageIds') ?? [];
    if (!ids.length)
      throw problem('validation_failed', 'give messageIds; canceling by filter or all at once is not supported (docs/qstash.md)');
    if (ids.length > 1000) throw problem('validation_failed', 'at most 1000 messageIds at once');
    const { teamId } = c.get('principal');
    let cancelled = 0;
    for (const id of ids) if ((await cancelTask(deps.sql, teamId, id)) === 'canceled') cancelled++;
    return c.json({ cancelled });
  });

  return app;
}
