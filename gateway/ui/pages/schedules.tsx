/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// /ui/schedules: every schedule with its next five runs (croner, in the schedule's zone), last
// outcome, and Pause / Resume / Trigger; a form to create one. Reads and changes go through the
// API's schedule routes in-process, so validation is the API's to the letter.
import { Cron } from 'croner';
import type { Context, Hono } from 'hono';
import { METHODS } from '../../../shared/schemas.ts';
import { Action, Badge, ErrorBox, NamedCreateForm, page, qs, Time } from '../components.tsx';
import type { UiDeps, UiEnv, UiPage } from '../env.ts';
import { formFields, needs, problemLines } from '../forms.ts';

type Schedule = Record<string, any>;
type Form = Record<string, string>;
const NEXT_RUNS = 5;

function nextRuns(s: Schedule, now: number): Date[] {
  if (s.paused) return [];
  try {
    return new Cron(s.cron, { timezone: s.timezone, paused: true }).nextRuns(NEXT_RUNS, new Date(now));
  } catch {
    return []; // stored expressions were validated; a croner upgrade that disagrees shows no runs rather than failing the page
  }
}

function ScheduleRows({ c, rows, now }: { c: Context<UiEnv>; rows: Schedule[]; now: number }) {
  const canWrite = c.get('session').principal.role !== 'read';
  if (!rows.length) return <p class="empty">No schedules yet.</p>;
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Schedule</th>
            <th>State</th>
            <th>Cron</th>
            <th>Next runs</th>
            <th>Last run</th>
            <th class="hide-narrow">Request</th>
            {canWrite ? <th /> : null}
          </tr>
        </thead>
        <tbody>
          {rows.map((s) => (
            <tr>
              <td>
                <strong>{s.name}</strong>
                <br />
                <a class="mono muted" href={`/ui/tasks${qs({ schedule_id: s.id })}`} title="this schedule's tasks">
                  {s.id}
                </a>
              </td>
              <td>
                <Badge status={s.paused ? 'paused' : 'active'} />
              </td>
              <td class="nowrap">
                <code>{s.cron}</code>
                <br />
                <span class="muted">{s.timezone}</span>
              </td>
              <td>
                {s.paused ? (
                  <span class="muted">paused</span>
                ) : (
                  <ol class="runs">
                    {nextRuns(s, now).map((d) => (
                      <li>
                        <Time at={d} />
                      </li>
                    ))}
                  </ol>
                )}
              </td>
              <td>
                <Time at={s.last_run_at} />
                {s.last_status ? (
                  <div>
                    <Badge status={s.last_status} />
                    {s.consecutive_failures ? <span class="muted">{` ${s.consecutive_failures} failed in a row`}</span> : null}
                  </div>
                ) : null}
              </td>
              <td class="url mono hide-narrow" title={`${s.method} ${s.url}`}>
                {`${s.method} ${s.url}`}
              </td>
              {canWrite ? (
                <td class="actions">
                  {s.paused ? (
                    <Action c={c} action={`/ui/schedules/${s.id}/resume`} label="Resume" />
                  ) : (
                    <Action c={c} action={`/ui/schedules/${s.id}/pause`} label="Pause" />
                  )}{' '}
                  <Action c={c} action={`/ui/schedules/${s.id}/trigger`} label="Trigger" tone="primary" />
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function CreateForm({ c, v }: { c: Context<UiEnv>; v: Form }) {
  return (
    <NamedCreateForm c={c} action="/ui/schedules" name={v.name} submit="Create schedule">
      <label>
        Cron (5 fields, or 6 with seconds)
        <input name="cron" value={v.cron ?? ''} required placeholder="*/15 * * * *" class="mono" />
      </label>
      <label>
        Time zone
        <input name="timezone" value={v.timezone ?? 'UTC'} placeholder="Europe/Oslo" />
      </label>
      <label>
        Method
        <select name="method">
          {METHODS.map((m) => (
            <option selected={(v.method ?? 'POST') === m}>{m}</option>
          ))}
        </select>
      </label>
      <label class="wide">
        URL
        <input name="url" value={v.url ?? ''} required type="url" placeholder="https://example.com/hooks/nightly" class="mono" />
      </label>
      <label>
        Label
        <input name="label" value={v.label ?? ''} />
      </label>
      <label>
        Queue
        <input name="queue" value={v.queue ?? ''} />
      </label>
      <label>
        Retries (default 3)
        <input name="max_retries" value={v.max_retries ?? ''} inputmode="numeric" />
      </label>
      <label>
        Timeout ms (default 30000)
        <input name="timeout_ms" value={v.timeout_ms ?? ''} inputmode="numeric" />
      </label>
      <label class="wide">
        Headers, one "Name: value" per line
        <textarea name="headers" rows={2}>
          {v.headers ?? ''}
        </textarea>
      </label>
      <label class="wide">
        Body
        <textarea name="body" rows={3}>
          {v.body ?? ''}
        </textarea>
      </label>
      <label class="check">
        <input type="checkbox" name="body_json" value="1" checked={v.body_json === '1'} /> the body is JSON
      </label>
      <label class="check">
        <input type="checkbox" name="paused" value="1" checked={v.paused === '1'} /> create paused
      </label>
    </NamedCreateForm>
  );
}

/** The API's schedule body from the form; what the form itself gets wrong is reported here. */
function scheduleInput(f: Form): { input?: Record<string, unknown>; errors: string[] } {
  const errors: string[] = [];
  const input: Record<string, unknown> = { name: f.name ?? '', cron: f.cron ?? '', url: f.url ?? '', method: f.method || 'POST' };
  if (f.timezone?.trim()) input.timezone = f.timezone.trim();
  if (f.label?.trim()) input.label = f.label.trim();
  if (f.queue?.trim()) input.queue = f.queue.trim();
  if (f.paused === '1') input.paused = true;
  for (const field of ['timeout_ms', 'max_retries'] as const) {
    const raw = f[field]?.trim();
    if (!raw) continue;
    if (!/^\d{1,9}$/.test(raw)) errors.push(`${field}: expected a whole number`);
    else if (field === 'timeout_ms') input.timeout_ms = Number(raw);
    else input.retry = { max_retries: Number(raw) };
  }
  const headers: Record<string, string> = {};
  for (const [i, line] of (f.headers ?? '').split(/\r?\n/).entries()) {
    if (!line.trim()) continue;
    const at = line.indexOf(':');
    if (at <= 0) errors.push(`headers line ${i + 1}: expected "Name: value"`);
    else headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  if (Object.keys(headers).length) input.headers = headers;
  const body = f.body ?? '';
  if (body !== '') {
    if (f.body_json !== '1') input.body = body;
    else {
      try {
        input.body = JSON.parse(body);
      } catch (e) {
        errors.push(`body: not valid JSON (${(e as Error).message})`);
      }
    }
  }
  return errors.length ? { errors } : { input, errors };
}

async function listPage(c: Context<UiEnv>, deps: UiDeps, form: { values: Form; errors: string[] } = { values: {}, errors: [] }) {
  const { principal } = c.get('session');
  const { data } = await deps.api(principal, 'GET', '/schedules');
  return page(
    c,
    'Schedules',
    <>
      <h1>Schedules</h1>
      <ScheduleRows c={c} rows={data} now={deps.now()} />
      {principal.role !== 'read' ? (
        <>
          <h2 id="create">New schedule</h2>
          <ErrorBox errors={form.errors} />
          <CreateForm c={c} v={form.values} />
        </>
      ) : null}
    </>,
    { status: form.errors.length ? 400 : 200 },
  );
}

export const schedulesPage: UiPage = {
  path: '/schedules',
  label: 'Schedules',
  role: 'read',
  mount(app: Hono<UiEnv>, deps: UiDeps) {
    app.get('/schedules', (c) => listPage(c, deps));

    app.post('/schedules', needs('write'), async (c) => {
      const values = await formFields(c);
      const { input, errors } = scheduleInput(values);
      if (!input) return listPage(c, deps, { values, errors });
      try {
        await deps.api(c.get('session').principal, 'POST', '/schedules', input);
      } catch (e) {
        return listPage(c, deps, { values, errors: problemLines(e) });
      }
      return c.redirect('/ui/schedules?notice=schedule-created', 303);
    });

    for (const action of ['pause', 'resume'] as const) {
      app.post(`/schedules/:id/${action}`, needs('write'), async (c) => {
        await deps.api(c.get('session').principal, 'POST', `/schedules/${encodeURIComponent(c.req.param('id'))}/${action}`);
        return c.redirect(`/ui/schedules?notice=${action === 'pause' ? 'paused' : 'resumed'}`, 303);
      });
    }

    app.post('/schedules/:id/trigger', needs('write'), async (c) => {
      const task = await deps.api(c.get('session').principal, 'POST', `/schedules/${encodeURIComponent(c.req.param('id'))}/trigger`);
      return c.redirect(`/ui/tasks/${task.id}?notice=triggered`, 303);
    });
  },
};
