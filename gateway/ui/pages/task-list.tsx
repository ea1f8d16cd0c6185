/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// Listing tasks, shared by /ui/tasks and /ui/dead-letters: the API's query-parameter schema and
// cursors here, the API's own query (listTasks in gateway/api/task-queries.ts: the
// tasks_team_id index, newest first, cursor = last id) in the pages. A page reads limit + 1
// rows; nothing is counted.
import type { Context } from 'hono';
import { listTasksQuerySchema } from '../../../shared/schemas.ts';
import { displayStatus } from '../../../shared/tasks.ts';
import { decodeCursor, type TaskRow } from '../../api/task-queries.ts';
import { toFieldErrors } from '../../http.ts';
import { Badge, Time } from '../components.tsx';
import type { UiEnv } from '../env.ts';

export const PAGE_SIZE = 50;
const FILTER_KEYS = ['status', 'queue', 'label', 'schedule_id', 'cursor'] as const;
export type TaskFilters = Partial<Record<(typeof FILTER_KEYS)[number], string>>;

/** The filters in the query string (empty fields dropped), checked as the API checks them. */
export function readFilters(c: Context<UiEnv>, fixed: TaskFilters = {}) {
  const given: TaskFilters = {};
  for (const k of FILTER_KEYS) {
    const v = c.req.query(k)?.trim();
    if (v) given[k] = v;
  }
  Object.assign(given, fixed);
  const parsed = listTasksQuerySchema.safeParse({ ...given, limit: PAGE_SIZE });
  if (!parsed.success) return { given, errors: toFieldErrors(parsed.error).map((e) => `${e.path}: ${e.message}`) };
  const after = parsed.data.cursor === undefined ? undefined : decodeCursor(parsed.data.cursor);
  if (after === null) return { given, errors: ['cursor: not one this page gave out'] };
  return { given, query: { ...parsed.data, after }, errors: [] as string[] };
}

/** A task's target as "METHOD origin/path…": enough to recognise it, the rest is on the task's page. */
export function target(t: TaskRow) {
  return `${t.method} ${t.url}`;
}

function lastOutcome(t: TaskRow) {
  const a = t.last_attempt;
  if (!a) return <span class="muted">—</span>;
  return a.status_code ? <span class="mono">{String(a.status_code)}</span> : <span class="mono">{a.outcome.replace('_', ' ')}</span>;
}

export function TaskTable(props: { rows: TaskRow[]; now: number; actions?: (t: TaskRow) => unknown }) {
  if (!props.rows.length) return <p class="empty">No tasks match.</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Status</th>
            <th>Task</th>
            <th>Request</th>
            <th>Label</th>
            <th class="hide-narrow">Queue</th>
            <th class="num">Att.</th>
            <th>Last</th>
            <th class="hide-narrow">Created</th>
            <th>Next / finished</th>
            {props.actions ? <th /> : null}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((t) => {
            const status = displayStatus(t.status, t.run_at, props.now);
            const waiting = t.status === 'pending' || t.status === 'retrying';
            return (
              <tr>
                <td>
                  <Badge status={status} />
                </td>
                <td class="nowrap">
                  <a class="mono task-id" href={`/ui/tasks/${t.id}`} title={t.id}>
                    {/* Narrow screens show the random tail only: the head is the creation time, shared by neighbours. */}
                    <span class="id-head">{t.id.slice(0, 19)}</span>
                    {t.id.slice(19)}
                  </a>
                </td>
                <td class="url mono" title={target(t)}>
                  {target(t)}
                </td>
                <td class="nowrap">{t.label ?? ''}</td>
                <td class="hide-narrow">{t.queue ?? ''}</td>
                <td class="num">{String(t.attempts)}</td>
                <td>{lastOutcome(t)}</td>
                <td class="hide-narrow">
                  <Time at={t.created_at} short />
                </td>
                <td>{waiting ? <Time at={t.run_at} short /> : <Time at={t.finished_at} short />}</td>
                {props.actions ? <td class="actions">{props.actions(t)}</td> : null}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
