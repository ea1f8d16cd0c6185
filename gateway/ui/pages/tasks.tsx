/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// /ui/tasks (filters, cursor paging) and /ui/tasks/:id (the task, the request it sends, every
// attempt's response and timing), with Cancel and Replay for write keys.
import type { Context, Hono } from 'hono';
import { isUuid } from '../../../shared/ids.ts';
import { displayStatus } from '../../../shared/tasks.ts';
import { outgoingHeaders } from '../../../worker/executor.ts';
import { type AttemptRow, getTask, listAttempts, listTasks, type TaskRow } from '../../api/task-queries.ts';
import { Action, Badge, ErrorBox, Pager, page, qs, Time } from '../components.tsx';
import type { UiDeps, UiEnv, UiPage } from '../env.ts';
import { needs } from '../forms.ts';
import { readFilters, TaskTable } from './task-list.tsx';

const STATUSES = ['scheduled', 'pending', 'running', 'retrying', 'succeeded', 'failed', 'canceled'];
const UNFINISHED = new Set(['pending', 'running', 'retrying']);

function Filters(props: { given: Record<string, string | undefined> }) {
  const g = props.given;
  return (
    <form method="get" action="/ui/tasks" class="filters">
      <label>
        Status
        <select name="status">
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option value={s} selected={g.status === s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label>
        Label
        <input name="label" value={g.label ?? ''} size={16} />
      </label>
      <label>
        Queue
        <input name="queue" value={g.queue ?? ''} size={12} />
      </label>
      <label>
        Schedule id
        <input name="schedule_id" value={g.schedule_id ?? ''} size={20} class="mono" />
      </label>
      <button type="submit">Filter</button>
      <a href="/ui/tasks">Clear</a>
      <span class="spacer" />
      <label>
        Go to task id
        <input name="id" size={22} class="mono" placeholder="0190…" />
      </label>
    </form>
  );
}

async function listPage(c: Context<UiEnv>, deps: UiDeps) {
  const id = c.req.query('id')?.trim();
  if (id)
    return isUuid(id)
      ? c.redirect(`/ui/tasks/${id.toLowerCase()}`, 303)
      : page(c, 'Tasks', <ErrorBox errors={['That is not a task id.']} />, { status: 400 });
  const f = readFilters(c);
  const { cursor, ...filters } = f.given;
  if (!f.query) {
    return page(
      c,
      'Tasks',
      <>
        <h1>Tasks</h1>
        <Filters given={f.given} />
        <ErrorBox errors={f.errors} />
      </>,
      { status: 400 },
    );
  }
  const result = await listTasks(deps.sql, c.get('session').principal.teamId, f.query);
  return page(
    c,
    'Tasks',
    <>
      <h1>Tasks</h1>
      <Filters given={f.given} />
      <TaskTable rows={result.data} now={deps.now()} />
      <Pager base="/ui/tasks" filters={filters} next={result.next_cursor} paged={cursor !== undefined} />
    </>,
    // The newest page follows new tasks; older pages hold still while read.
    { live: cursor === undefined },
  );
}

function Kv({ entries }: { entries: [string, unknown][] }) {
  if (!entries.length) return <p class="muted">none</p>;
  return (
    <table class="kv">
      <tbody>
        {entries.map(([k, v]) => (
          <tr>
            <td>{k}</td>
            <td>{Array.isArray(v) ? v.join(', ') : String(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function bodyText(t: TaskRow): string | null {
  if (t.body === null) return null;
  if (!t.body_is_json) return t.body;
  try {
    return JSON.stringify(JSON.parse(t.body), null, 2);
  } catch {
    return t.body;
  }
}

/** What attempt n sent: the stored request plus the headers the worker adds (worker/executor.ts). */
function sentHeaders(t: TaskRow, attempt: number): [string, string][] {
  const h = outgoingHeaders({ ...t, attempts: attempt, lease_token: t.lease_token ?? '' });
  if (h.traceparent) h.traceparent = `${h.traceparent.slice(0, 36)}<span of this attempt>-${h.traceparent.slice(-2)}`;
  h['webhook-id'] = t.id;
  h['webhook-timestamp'] = '<unix seconds at send time>';
  h['webhook-signature'] = '<v1,… one per signing secret; not stored>';
  return Object.entries(h);
}

function Attempt({ t, a }: { t: TaskRow; a: AttemptRow }) {
  const n = a.attempt as number;
  const headers = Object.entries((a.response_headers ?? {}) as Record<string, unknown>);
  const body = a.response_body as string | null;
  return (
    <section class="attempt" id={`attempt-${n}`}>
      <header>
        <h3>{`Attempt ${n}`}</h3>
        <Badge status={a.outcome} />
        {a.status_code ? <span class="mono">{`HTTP ${a.status_code}`}</span> : null}
        <span>
          started <Time at={a.started_at} />
        </span>
        <span class="mono">{`${a.duration_ms} ms`}</span>
        <span class="hide-narrow">
          finished <Time at={a.finished_at} />
        </span>
      </header>
      <div class="body">
        {a.error && a.error !== `HTTP ${a.status_code}` ? <p class="attempt-error">{a.error}</p> : null}
        <details id={`a${n}-req`}>
          <summary>{`Request sent: ${t.method} ${t.url}`}</summary>
          <Kv entries={sentHeaders(t, n)} />
          <p class="muted">Body: the task's body, shown above.</p>
        </details>
        <details id={`a${n}-hdr`}>
          <summary>{`Response headers (${headers.length})`}</summary>
          <Kv entries={headers} />
        </details>
        <details id={`a${n}-body`} open={n === t.attempts}>
          <summary>
            {body === null
              ? 'Response body: none'
              : `Response body (${Buffer.byteLength(body)} bytes${a.response_encoding === 'base64' ? ', binary as base64' : ''}${a.response_truncated ? ', cut at 64 KiB' : ''})`}
          </summary>
          {body === null ? null : <pre>{body}</pre>}
        </details>
      </div>
    </section>
  );
}

async function detailPage(c: Context<UiEnv>, deps: UiDeps) {
  const { teamId, role } = c.get('session').principal;
  const t = await getTask(deps.sql, teamId, c.req.param('id')!);
  if (!t) return page(c, 'Task not found', <ErrorBox errors={['No such task in this team.']} />, { status: 404 });
  const attempts = await listAttempts(deps.sql, teamId, t.id);
  const status = displayStatus(t.status, t.run_at, deps.now());
  const canWrite = role !== 'read';
  const waiting = t.status === 'pending' || t.status === 'retrying';
  const body = bodyText(t);
  return page(
    c,
    `Task ${t.id}`,
    <>
      <h1>
        <span>Task</span> <code>{t.id}</code> <Badge status={status} />
        {canWrite && UNFINISHED.has(t.status) ? <Action c={c} action={`/ui/tasks/${t.id}/cancel`} label="Cancel" tone="danger" /> : null}
        {canWrite && (t.status === 'failed' || t.status === 'canceled') ? (
          <Action c={c} action={`/ui/tasks/${t.id}/replay`} label="Replay" tone="primary" />
        ) : null}
      </h1>
      <dl class="facts">
        <dt>Attempts</dt>
        <dd>{`${t.attempts} (retries allowed: ${t.max_retries}${t.retry_base ? `, after replay at attempt ${t.retry_base}` : ''})`}</dd>
        <dt>{waiting ? 'Next attempt' : 'Finished'}</dt>
        <dd>{waiting ? <Time at={t.run_at} /> : <Time at={t.finished_at} />}</dd>
        <dt>Created</dt>
        <dd>
          <Time at={t.created_at} />
        </dd>
        <dt>Label</dt>
        <dd>{t.label ? <a href={`/ui/tasks${qs({ label: t.label })}`}>{t.label}</a> : '—'}</dd>
        <dt>Queue</dt>
        <dd>{t.queue ? <a href={`/ui/tasks${qs({ queue: t.queue })}`}>{t.queue}</a> : '—'}</dd>
        <dt>Schedule</dt>
        <dd>
          {t.schedule_id ? (
            <a href={`/ui/tasks${qs({ schedule_id: t.schedule_id })}`} class="mono">
              {t.schedule_id}
            </a>
          ) : (
            '—'
          )}
          {t.scheduled_for ? (
            <>
              {' tick '}
              <Time at={t.scheduled_for} />
            </>
          ) : null}
        </dd>
        <dt>Timeout</dt>
        <dd>{`${t.timeout_ms} ms`}</dd>
        <dt>Backoff</dt>
        <dd>{`${t.min_backoff_ms} ms … ${t.max_backoff_ms} ms`}</dd>
        <dt>Parent</dt>
        <dd>
          {t.parent_id ? (
            <a href={`/ui/tasks/${t.parent_id}`} class="mono">
              {t.parent_id}
            </a>
          ) : (
            '—'
          )}
        </dd>
        <dt>Idempotency key</dt>
        <dd class="mono">{t.idempotency_key ?? '—'}</dd>
        <dt>Callback</dt>
        <dd class="mono">{t.callback_url ?? '—'}</dd>
        <dt>Failure callback</dt>
        <dd class="mono">{t.failure_callback_url ?? '—'}</dd>
      </dl>
      <h2>Request</h2>
      <pre>{`${t.method} ${t.url}`}</pre>
      <details id="task-headers" open>
        <summary>{`Headers stored with the task (${Object.keys(t.headers).length})`}</summary>
        <Kv entries={Object.entries(t.headers)} />
      </details>
      <details id="task-body" open>
        <summary>{body === null ? 'Body: none' : `Body (${Buffer.byteLength(body)} bytes${t.body_is_json ? ', JSON' : ''})`}</summary>
        {body === null ? null : <pre>{body}</pre>}
      </details>
      <h2>{`Attempts (${attempts.length})`}</h2>
      {attempts.length ? [...attempts].reverse().map((a) => <Attempt t={t} a={a} />) : <p class="muted">No attempt yet.</p>}
    </>,
    { live: UNFINISHED.has(t.status) },
  );
}

export const tasksPage: UiPage = {
  path: '/tasks',
  label: 'Tasks',
  role: 'read',
  mount(app: Hono<UiEnv>, deps: UiDeps) {
    app.get('/tasks', (c) => listPage(c, deps));
    app.get('/tasks/:id', (c) => detailPage(c, deps));

    // The API's DELETE /tasks/:id and POST /tasks/:id/replay, run in-process (gateway/ui/api-client.ts).
    app.post('/tasks/:id/cancel', needs('write'), async (c) => {
      const id = c.req.param('id');
      const r = await deps.api(c.get('session').principal, 'DELETE', `/tasks/${encodeURIComponent(id)}`).catch(conflictAs('finished'));
      return c.redirect(`/ui/tasks/${id}${qs({ notice: r === 'finished' ? 'finished' : 'canceled' })}`, 303);
    });
    app.post('/tasks/:id/replay', needs('write'), async (c) => {
      const id = c.req.param('id');
      const r = await deps
        .api(c.get('session').principal, 'POST', `/tasks/${encodeURIComponent(id)}/replay`)
        .catch(conflictAs('not-replayable'));
      return c.redirect(`/ui/tasks/${id}${qs({ notice: r === 'not-replayable' ? 'not-replayable' : 'replayed' })}`, 303);
    });
  },
};

/** A 409 from the API becomes a notice; anything else (404, 503) goes to the error page. */
function conflictAs<T extends string>(notice: T) {
  return (e: unknown): T => {
    if ((e as { code?: string }).code === 'conflict') return notice;
    throw e;
  };
}
