// Concurrent POST /queue requests become one multi-row INSERT (group commit); each request is
// answered only after the statement holding its row has committed. A 1000-row INSERT runs at
// ≈100k rows/s on this machine, single-row commits at ≈14k/s (DESIGN.md): this is where
// enqueue throughput comes from.
import { createGroupCommit } from '../shared/group-commit.ts';
import { insertTasks, type InsertedTask, type NewTask } from '../shared/tasks.ts';
import type { Sql } from '../shared/db.ts';

export type EnqueueBatcher = { enqueue(task: NewTask): Promise<InsertedTask>; drain(): Promise<void> };

export function createEnqueueBatcher(sql: Sql, opts: { maxBatch?: number; lanes?: number } = {}): EnqueueBatcher {
  const group = createGroupCommit<NewTask, InsertedTask>(
    async (tasks) => {
      const rows = await insertTasks(sql, tasks);
      return tasks.map((t) => {
        const row = rows.get(t.id);
        if (!row) throw new Error(`task ${t.id} missing from INSERT ... RETURNING`);
        return row;
      });
    },
    { maxBatch: opts.maxBatch ?? 500, lanes: opts.lanes ?? 4 },
  );
  return { enqueue: (task) => group.add(task), drain: () => group.drain() };
}
