// A QStash message becomes a native task (flag qstash set: its deliveries also carry
// Upstash-Signature) and is stored the way the native enqueue stores one: without a
// deduplication id it joins the group commit; with one it claims its key in idempotency_keys,
// which keeps it as long as an idempotency key (24 h, gateway/api/tasks.ts). Unlike an
// idempotency key, a deduplication id seen again is not a conflict even when the request
// differs: QStash accepts the duplicate, enqueues nothing and answers with the first message's
// id (202, deduplicated).
import type { Context } from 'hono';
import type { Queryable, Sql } from '../../shared/db.ts';
import { ProblemError, problem } from '../../shared/errors.ts';
import { type TaskInput, taskInputSchema } from '../../shared/schemas.ts';
import { refuseForbiddenTargets, type TargetCheck } from '../../shared/targets.ts';
import { buildTask, checkBodySize, insertTasks, type NewTask, requestHash, taskTraceparent } from '../../shared/tasks.ts';
import { IDEMPOTENCY_TTL } from '../api/tasks.ts';
import type { AuthEnv } from '../auth.ts';
import type { EnqueueBatcher } from '../enqueue-batcher.ts';
import { parseOrThrow } from '../http.ts';
import { requestTraceparent } from '../observe.ts';
import { type ParsedMessage, qstashFieldName } from './headers.ts';

export type QstashDeps = { sql: Sql; batcher: EnqueueBatcher; maxBodyBytes: number; checkTarget: TargetCheck };

/** parseOrThrow whose message names the Upstash header instead of the native field. */
export function parseAsQstash<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (!(e instanceof ProblemError) || !e.errors?.length) throw e;
    const detail = e.errors.map((f) => `${qstashFieldName(f.path) || '(message)'}: ${f.message}`).join('; ');
    throw problem(e.code, detail, e.errors, e.headers);
  }
}

/** The native task for one parsed message, validated as POST /api/v1/queue validates one. */
export function messageTask(p: ParsedMessage, c: Context<AuthEnv>, deps: QstashDeps, extra: { queue?: string } = {}): NewTask {
  const raw = { ...p.input, ...extra, ...(p.dedupKey ? { idempotency_key: p.dedupKey } : {}) };
  const input: TaskInput = parseAsQstash(() => parseOrThrow(taskInputSchema, raw));
  parseAsQstash(() => refuseForbiddenTargets(input, deps.checkTarget));
  const task = buildTask(input, {
    teamId: c.get('principal').teamId,
    traceparent: taskTraceparent(requestTraceparent(c) ?? c.req.header('traceparent')),
    extra: { qstash: true },
  });
  const size = checkBodySize(task.body, deps.maxBodyBytes);
  if (!size.ok) throw problem('payload_too_large', size.detail);
  return task;
}

export type Stored = { messageId: string; url: string; deduplicated: boolean };

/** Claims a deduplication key; null = claimed (store the task), else the first message's id. */
async function claim(tx: Queryable, t: NewTask): Promise<string | null> {
  const [claimed] = await tx<{ task_id: string }[]>`
    insert into idempotency_keys (team_id, key, task_id, request_hash, expires_at)
    values (${t.team_id}, ${t.idempotency_key}, ${t.id}, ${requestHash(t)}, now() + ${IDEMPOTENCY_TTL}::interval)
    on conflict (team_id, key) do update
      set task_id = excluded.task_id, request_hash = excluded.request_hash, expires_at = excluded.expires_at
      where idempotency_keys.expires_at < now()
    returning task_id`;
  if (claimed) return null;
  const [held] = await tx<{ task_id: string }[]>`
    select task_id from idempotency_keys where team_id = ${t.team_id} and key = ${t.idempotency_key}`;
  return held ? held.task_id : null;
}

/** Stores messages (all or none); results in input order. */
export async function storeMessages(deps: QstashDeps, tasks: NewTask[], signal?: AbortSignal): Promise<Stored[]> {
  if (tasks.length === 1 && !tasks[0]!.idempotency_key) {
    const r = await deps.batcher.enqueue(tasks[0]!, signal);
    return [{ messageId: r.id, url: tasks[0]!.url, deduplicated: false }];
  }
  return deps.sql.begin(async (tx) => {
    const out: Stored[] = [];
    const fresh: NewTask[] = [];
    for (const t of tasks) {
      const first = t.idempotency_key ? await claim(tx, t) : null;
      if (first) out.push({ messageId: first, url: t.url, deduplicated: true });
      else {
        fresh.push(t);
        out.push({ messageId: t.id, url: t.url, deduplicated: false });
      }
    }
    if (fresh.length) await insertTasks(tx, fresh);
    // Answered 503 meanwhile: roll back, the client retries (as gateway/api/tasks.ts does).
    signal?.throwIfAborted();
    return out;
  });
}
