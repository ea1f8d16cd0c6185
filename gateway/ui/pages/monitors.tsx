/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// /ui/monitors: heartbeat monitors with their status (new, up, down), ping URL, last ping and
// when the next is due; pause/resume and a form to create one. Everything goes through the
// API's monitor routes in-process (docs/monitors.md). Notifications link here.
import type { Context, Hono } from 'hono';
import type { monitorView } from '../../api/monitors.ts';
import { ActionCell, Badge, CreateSection, NamedCreateForm, page, Table, Time } from '../components.tsx';
import type { UiDeps, UiEnv, UiPage } from '../env.ts';
import { EMPTY_FORM, type FormState, formFields, needs, patchActions, problemLines } from '../forms.ts';

type Row = ReturnType<typeof monitorView>;
type Form = Record<string, string>;
const enc = encodeURIComponent;

function every(m: Row): string {
  if (m.cron) return `cron ${m.cron} (${m.timezone})`;
  const s = m.interval_seconds ?? 0;
  return s % 3600 === 0 ? `every ${s / 3600} h` : s % 60 === 0 ? `every ${s / 60} min` : `every ${s} s`;
}

function MonitorRows({ c, rows }: { c: Context<UiEnv>; rows: Row[] }) {
  const canWrite = c.get('session').principal.role !== 'read';
  if (!rows.length) return <p class="empty">No monitors yet.</p>;
  return (
    <Table head={['Monitor', 'Status', 'Expected', 'Last ping', 'Next due', ['Ping URL', 'hide-narrow']]} actions={canWrite}>
      {rows.map((m) => (
        <tr>
          <td>
            <strong>{m.name}</strong>
          </td>
          <td>
            <Badge status={m.paused ? 'paused' : m.status} />
          </td>
          <td class="nowrap">
            {every(m)}
            <div class="muted">{`grace ${m.grace_seconds} s`}</div>
          </td>
          <td>
            <Time at={m.last_ping_at} />
          </td>
          <td>{m.paused || m.status === 'new' ? <span class="muted">after the first ping</span> : <Time at={m.next_expected_at} />}</td>
          <td class="mono hide-narrow">{m.ping_url}</td>
          <ActionCell
            show={canWrite}
            c={c}
            action={`/ui/monitors/${enc(m.id)}/${m.paused ? 'resume' : 'pause'}`}
            label={m.paused ? 'Resume' : 'Pause'}
          />
        </tr>
      ))}
    </Table>
  );
}

function CreateForm({ c, v }: { c: Context<UiEnv>; v: Form }) {
  return (
    <NamedCreateForm c={c} action="/ui/monitors" name={v.name} submit="Create monitor">
      <label>
        Every (seconds)
        <input name="interval_seconds" value={v.interval_seconds ?? ''} inputmode="numeric" placeholder="3600" />
      </label>
      <label>
        or cron
        <input name="cron" value={v.cron ?? ''} placeholder="0 3 * * *" class="mono" />
      </label>
      <label>
        Time zone (with cron)
        <input name="timezone" value={v.timezone ?? 'UTC'} />
      </label>
      <label>
        Grace (seconds, default 300)
        <input name="grace_seconds" value={v.grace_seconds ?? ''} inputmode="numeric" />
      </label>
    </NamedCreateForm>
  );
}

async function listPage(c: Context<UiEnv>, deps: UiDeps, form: FormState = EMPTY_FORM) {
  const { principal } = c.get('session');
  const { data } = await deps.api(principal, 'GET', '/monitors');
  return page(
    c,
    'Monitors',
    <>
      <h1>Heartbeat monitors</h1>
      <p class="muted">A job GETs or POSTs its ping URL when it runs (add /fail to report a failure); a missed ping sends monitor.down.</p>
      <MonitorRows c={c} rows={data} />
      <CreateSection c={c} title="New monitor" errors={form.errors}>
        <CreateForm c={c} v={form.values} />
      </CreateSection>
    </>,
    { status: form.errors.length ? 400 : 200 },
  );
}

export const monitorsPage: UiPage = {
  path: '/monitors',
  label: 'Monitors',
  role: 'read',
  mount(app: Hono<UiEnv>, deps: UiDeps) {
    app.get('/monitors', (c) => listPage(c, deps));

    app.post('/monitors', needs('write'), async (c) => {
      const values = await formFields(c);
      const input: Record<string, unknown> = { name: values.name ?? '' };
      const errors: string[] = [];
      for (const field of ['interval_seconds', 'grace_seconds'] as const) {
        const raw = values[field]?.trim();
        if (!raw) continue;
        if (!/^\d{1,9}$/.test(raw)) errors.push(`${field}: expected a whole number`);
        else input[field] = Number(raw);
      }
      if (values.cron?.trim()) {
        input.cron = values.cron.trim();
        if (values.timezone?.trim()) input.timezone = values.timezone.trim();
      }
      if (errors.length) return listPage(c, deps, { values, errors });
      try {
        await deps.api(c.get('session').principal, 'POST', '/monitors', input);
      } catch (e) {
        return listPage(c, deps, { values, errors: problemLines(e) });
      }
      return c.redirect('/ui/monitors?notice=monitor-created', 303);
    });

    patchActions(app, deps, {
      resource: 'monitors',
      actions: ['pause', 'resume'],
      patch: (action) => ({ paused: action === 'pause' }),
      notice: 'monitor-changed',
    });
  },
};
