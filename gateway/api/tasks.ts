// /api/v1/queue and /api/v1/tasks (docs/api.md §4).
import { type Context, Hono } from 'hono';
import type { Queryable, Sql } from '../../shared/db.ts';
import { ProblemError, problem } from '../../shared/errors.ts';
import { batchInputSchema, listTasksQuerySchema, type TaskInput, taskInputSchema } from '../../shared/schemas.ts';
import { refuseForbiddenTargets, type TargetCheck } from '../../shared/targets.ts';
import {
  buildTask,
  checkBodySize,
  displayStatus,
  type InsertedTask,
  insertTasks,
  type NewTask,
  requestHash,
  type TaskStatus,
  taskTraceparent,
} from '../../shared/tasks.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import type { EnqueueBatcher } from '../enqueue-batcher.ts';
import { deadlineSignal, parseOrThrow, readJson } from '../http.ts';
import { requestTraceparent } from '../observe.ts';
import { refuseUnknownConnections } from './connections.ts';
import { attemptView, cancelTask, decodeCursor, getTask, listAttempts, listTasks, replayTask, taskView } from './task-queries.ts';

export type TaskRouteDeps = {
  sql: Sql;
  batcher: EnqueueBatcher;
  maxBodyBytes: number;
  checkTarget: TargetCheck;
};

export const IDEMPOTENCY_TTL = '24 hours';

type Accepted = { id: string; status: string; run_at: string; created_at: string; replayed: boolean };

const accepted = (r: InsertedTask & { status?: TaskStatus }, replayed = false): Accepted => ({
  id: r.id,
  status: displayStatus(r.status ?? 'pending', r.run_at),
  run_at: r.run_at.toISOString(),
  created_at: r.created_at.toISOString(),
  replayed,
});

export function taskRoutes(deps: TaskRouteDeps) {
  const { sql, batcher } = deps;
  const app = new Hono<AuthEnv>();

  /** Validates one task; field errors carry `prefix` (tasks.17.url in a batch). */
  function validateTask(raw: unknown, c: Context<AuthEnv>, prefix: (string | number)[] = []): NewTask {
    const input: TaskInput = parseOrThrow(taskInputSchema, raw, prefix);
    refuseForbiddenTargets(input, deps.checkTarget, prefix);
    const task = buildTask(input, {
      teamId: c.get('principal').teamId,
      traceparent: taskTraceparent(requestTraceparent(c) ?? c.req.header('traceparent')),
    });
    const size = checkBodySize(task.body, deps.maxBodyBytes);
    if (!size.ok) throw problem('payload_too_large', size.detail, [{ path: [...prefix, 'body'].join('.'), message: size.detail }]);
    return task;
  }

  /**
   * Claims the idempotency key for this task, or finds who holds it. A key older than 24 h is
   * taken over. Two concurrent requests with one key serialise on the primary key: the second
   * waits for the first to commit, then sees its row.
   */
  async function withIdempotency(tx: Queryable, task: NewTask): Promise<{ fresh: true } | { fresh: false; existing: Accepted }> {
    const hash = requestHash(task);
    const [claimed] = await tx<{ task_id: string }[]>`
      insert into idempotency_keys (team_id, key, task_id, request_hash, expires_at)
      values (${task.team_id}, ${task.idempotency_key}, ${task.id}, ${hash}, now() + ${IDEMPOTENCY_TTL}::interval)
      on conflict (team_id, key) do update
        set task_id = excluded.task_id, request_hash = excluded.request_hash, expires_at = excluded.expires_at
        where idempotency_keys.expires_at < now()
      returning task_id`;
    if (claimed) return { fresh: true };
    const [held] = await tx<(InsertedTask & { request_hash: Buffer; status: TaskStatus })[]>`
      select k.request_hash, t.id, t.status, t.run_at, t.created_at
      from idempotency_keys k join tasks t on t.team_id = k.team_id and t.id = k.task_id
      where k.team_id = ${task.team_id} and k.key = ${task.idempotency_key}`;
    if (!held || !Buffer.from(held.request_hash).equals(hash)) {
      throw problem('idempotency_conflict', `idempotency key "${task.idempotency_key}" was used within 24 h for a different request`);
    }
    return { fresh: false, existing: accepted(held, true) };
  }

  /** Stores tasks in one transaction, honouring idempotency keys; results in input order. */
  async function storeAtomically(tasks: NewTask[], signal?: AbortSignal): Promise<Accepted[]> {
    return sql.begin(async (tx) => {
      const results: (Accepted | null)[] = new Array(tasks.length).fill(null);
      const toInsert: NewTask[] = [];
      for (const [i, t] of tasks.entries()) {
        if (!t.idempotency_key) {
          toInsert.push(t);
          continue;
        }
        const r = await withIdempotency(tx, t);
        if (r.fresh) toInsert.push(t);
        else results[i] = r.existing;
      }
      const inserted = toInsert.length ? await insertTasks(tx, toInsert) : new Map<string, InsertedTask>();
      // Answered 503 meanwhile (the database came back late): roll back, the client retries.
      signal?.throwIfAborted();
      return tasks.map((t, i) => results[i] ?? accepted(inserted.get(t.id)!));
    });
  }

  app.post('/queue', requireRole('write'), async (c) => {
    const raw = await readJson(c);
    const headerKey = c.req.header('idempotency-key');
    if (headerKey !== undefined && raw && typeof raw === 'object' && !Array.isArray(raw)) {
      const fieldKey = (raw as Record<string, unknown>).idempotency_key;
      if (fieldKey !== undefined && fieldKey !== headerKey) {
        throw problem('validation_failed', 'the Idempotency-Key header and idempotency_key differ', [
          { path: 'idempotency_key', message: 'differs from the Idempotency-Key header' },
        ]);
      }
      (raw as Record<string, unknown>).idempotency_key = headerKey;
    }
    const task = validateTask(raw, c);
    await refuseUnknownConnections(sql, task.team_id, [{ name: task.auth_connection, path: 'auth.connection' }]);
    // Without an idempotency key the row joins the group commit; with one it needs its own
    // transaction (claim the key, then insert).
    const signal = deadlineSignal(c);
    const [result] = task.idempotency_key ? await storeAtomically([task], signal) : [accepted(await batcher.enqueue(task, signal))];
    const { replayed, ...body } = result!;
    if (replayed) {
      c.header('idempotent-replayed', 'true');
      return c.json(body, 200);
    }
    return c.json(body, 202);
  });

  app.post('/queue/batch', requireRole('write'), async (c) => {
    const { tasks: raws } = parseOrThrow(batchInputSchema, await readJson(c));
    const tasks: NewTask[] = [];
    const problems: ProblemError[] = [];
    raws.forEach((raw, i) => {
      try {
        tasks.push(validateTask(raw, c, ['tasks', i]));
      } catch (e) {
        if (!(e instanceof ProblemError)) throw e;
        problems.push(e);
      }
    });
    if (problems.length) {
      // One code when every refusal agrees (all targets refused, say), else validation_failed.
      const codes = new Set(problems.map((p) => p.code));
      const code = codes.size === 1 ? problems[0]!.code : 'validation_failed';
      const errors = problems.flatMap((p) => p.errors ?? [{ path: 'tasks', message: p.detail }]);
      throw problem(code, errors.map((e) => `${e.path}: ${e.message}`).join('; '), errors);
    }
    const keys = tasks.map((t) => t.idempotency_key).filter(Boolean);
    if (new Set(keys).size !== keys.length) {
      throw problem('validation_failed', 'an idempotency key appears twice in the batch', [
        { path: 'tasks', message: 'duplicate idempotency_key' },
      ]);
    }
    await refuseUnknownConnections(
      sql,
      c.get('principal').teamId,
      tasks.map((t, i) => ({ name: t.auth_connection, path: `tasks.${i}.auth.connection` })),
    );
    const stored = await storeAtomically(tasks, deadlineSignal(c));
    return c.json({ tasks: stored.map(({ id, status, run_at }) => ({ id, status, run_at })) }, 202);
  });

  app.get('/tasks', async (c) => {
    const q = parseOrThrow(listTasksQuerySchema, c.req.query());
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    if (after === null)
      throw problem('validation_failed', 'cursor is not one this API gave out', [{ path: 'cursor', message: 'invalid cursor' }]);
    const page = await listTasks(sql, c.get('principal').teamId, { ...q, after });
    return c.json({ data: page.data.map((t) => taskView(t)), next_cursor: page.next_cursor });
  });

  app.get('/tasks/:id', async (c) => {
    const t = await getTask(sql, c.get('principal').teamId, c.req.param('id'));
    if (!t) throw problem('not_found', 'no such task');
    return c.json(taskView(t));
  });

  app.get('/tasks/:id/attempts', async (c) => {
    const { teamId } = c.get('principal');
    const t = await getTask(sql, teamId, c.req.param('id'));
    if (!t) throw problem('not_found', 'no such task');
    const rows = await listAttempts(sql, teamId, t.id);
    return c.json({ data: rows.map((a) => attemptView(a)) });
  });

  app.delete('/tasks/:id', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    const outcome = await cancelTask(sql, teamId, c.req.param('id'));
    if (outcome === 'missing') throw problem('not_found', 'no such task');
    if (outcome === 'finished') throw problem('conflict', 'the task has already finished');
    return c.json(taskView((await getTask(sql, teamId, c.req.param('id')))!), 200);
  });

  app.post('/tasks/:id/replay', requireRole('write'), async (c) => {
    const r = await replayTask(sql, c.get('principal').teamId, c.req.param('id'));
    if (r === 'missing') throw problem('not_found', 'no such task');
    if (r === 'not_replayable') throw problem('conflict', 'only failed or canceled tasks can be replayed');
    return c.json({ id: r.id, status: displayStatus(r.status, r.run_at), run_at: r.run_at.toISOString() }, 202);
  });

  return app;
}
