// What the database-crash tests share (test/embedded-crash.test.ts, test/db-restart.test.ts): a
// `posthorn start` fleet draining a few thousand tasks to a counting sink, the PostgreSQL
// postmaster of a cluster directory (its pid is the first line of postmaster.pid), and the
// checks after the crash: the API back, every task succeeded, deliveries beyond one per task.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { createSql } from '../../shared/db.ts';
import { type JsonResponse, requestJson } from './client.ts';
import { waitFor } from './net.ts';
import { childPids, cmdline, type Proc } from './proc.ts';
import type { startSink } from './sink.ts';

export type Sink = Awaited<ReturnType<typeof startSink>>;

/** The postmaster of a cluster directory: the pid in its postmaster.pid (null when there is none). */
export function postmasterPid(clusterDir: string): number | null {
  try {
    const pid = Number(readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export function api(url: string, key: string) {
  return (method: string, p: string, body?: unknown): Promise<JsonResponse> =>
    requestJson((q, init) => fetch(`${url}${q}`, { ...init, signal: AbortSignal.timeout(10_000) }), method, p, { key, body });
}

/** Enqueues n tasks to the sink in batches of 500; returns their ids. */
export async function enqueueMany(call: ReturnType<typeof api>, sinkUrl: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 500) {
    const tasks = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({ url: `${sinkUrl}/t/${i + j}`, body: { n: i + j } }));
    const r = await call('POST', '/api/v1/queue/batch', { tasks });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    ids.push(...r.body.tasks.map((t: { id: string }) => t.id));
  }
  return ids;
}

/** Distinct tasks the sink has seen, and deliveries beyond the first per task. */
export function deliveries(sink: Sink) {
  const perTask = new Map<string, number>();
  for (const r of sink.received) {
    const id = String(r.headers['x-posthorn-task-id']);
    perTask.set(id, (perTask.get(id) ?? 0) + 1);
  }
  return { tasks: perTask.size, extra: sink.received.length - perTask.size, perTask };
}

/** Polls an authenticated read until it answers 200; returns when (ms since `since`). */
export async function apiBackAfter(call: ReturnType<typeof api>, since: number, timeoutMs: number): Promise<number> {
  await waitFor(
    async () => {
      const r = await call('GET', '/api/v1/tasks?limit=1').catch(() => null);
      // While the database is away: 503 unavailable (problem+json), never a 500.
      if (r && r.status !== 200) expect([503], JSON.stringify(r.body)).toContain(r.status);
      return r?.status === 200;
    },
    { timeoutMs, intervalMs: 100, what: 'the API to answer again' },
  );
  return Date.now() - since;
}

/** Task counts by status, read with a connection of its own (the fleet's may be reconnecting). */
export async function statusCounts(databaseUrl: string): Promise<Record<string, number>> {
  const sql = createSql(databaseUrl, { max: 1 });
  try {
    const rows = await sql`select status, count(*)::int as n from tasks group by status`;
    return Object.fromEntries(rows.map((r) => [r.status as string, r.n as number]));
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Waits until all `n` tasks are succeeded; fails naming the statuses left. */
export async function allSucceeded(databaseUrl: string, n: number, timeoutMs: number) {
  let last: Record<string, number> = {};
  await waitFor(
    async () => {
      last = await statusCounts(databaseUrl);
      return last.succeeded === n && Object.keys(last).length === 1;
    },
    { timeoutMs, intervalMs: 250, what: `all ${n} tasks to succeed (now ${JSON.stringify(last)})` },
  ).catch((err) => {
    throw new Error(`${(err as Error).message}; last counts ${JSON.stringify(last)}`);
  });
}

/** The gateway and worker children of a `posthorn start` (pids). */
export const fleetPids = (start: Proc) =>
  childPids(start.pid)
    .filter((pid) => /bin\/posthorn\.js (gateway|worker)$/.test(cmdline(pid)))
    .sort();

/** What a fleet printed up to its first child's death (the crash's stack comes just before it), else its last lines. */
export function outputBeforeDeath(output: string): string {
  const died = output.indexOf('child process died');
  return died < 0 ? output.slice(-4000) : output.slice(Math.max(0, died - 6000), died + 500);
}
