/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// /ui/endpoints: inbound endpoints with their inbound URL, where they forward to and whether they
// take webhooks; enable/disable and a form to create one. /ui/endpoints/:id lists the events
// received, each with its forwarding task and a Replay button. Everything goes through the
// API's endpoint routes in-process (docs/endpoints.md).
import type { Context, Hono } from 'hono';
import type { endpointView } from '../../api/endpoints.ts';
import { ActionCell, Badge, CreateSection, NamedCreateForm, page, Table, Time } from '../components.tsx';
import type { UiDeps, UiEnv, UiPage } from '../env.ts';
import { EMPTY_FORM, type FormState, formFields, needs, patchActions, problemLines } from '../forms.ts';

type Row = ReturnType<typeof endpointView>;
type Event = {
  id: string;
  method: string;
  query: string;
  content_type: string | null;
  body_size: number;
  received_at: string;
  task: { id: string; status: string } | null;
};
type Form = Record<string, string>;
const enc = encodeURIComponent;

function EndpointRows({ c, rows }: { c: Context<UiEnv>; rows: Row[] }) {
  const canWrite = c.get('session').principal.role !== 'read';
  if (!rows.length) return <p class="empty">No endpoints yet.</p>;
  return (
    <Table head={['Endpoint', 'State', 'Inbound URL', ['Forwards to', 'hide-narrow']]} actions={canWrite}>
      {rows.map((e) => (
        <tr>
          <td>
            <a href={`/ui/endpoints/${enc(e.id)}`}>
              <strong>{e.name}</strong>
            </a>
            {e.queue ? <div class="muted">{`queue ${e.queue}`}</div> : null}
          </td>
          <td>
            <Badge status={e.enabled ? 'enabled' : 'disabled'} />
          </td>
          <td class="mono">{e.inbound_url}</td>
          <td class="url mono hide-narrow" title={e.forward_url}>
            {e.forward_url}
          </td>
          <ActionCell
            show={canWrite}
            c={c}
            action={`/ui/endpoints/${enc(e.id)}/${e.enabled ? 'disable' : 'enable'}`}
            label={e.enabled ? 'Disable' : 'Enable'}
          />
        </tr>
      ))}
    </Table>
  );
}

function CreateForm({ c, v }: { c: Context<UiEnv>; v: Form }) {
  return (
    <NamedCreateForm c={c} action="/ui/endpoints" name={v.name} submit="Create endpoint">
      <label class="wide">
        Forward to URL
        <input
          name="forward_url"
          value={v.forward_url ?? ''}
          required
          type="url"
          placeholder="https://example.com/webhooks/stripe"
          class="mono"
        />
      </label>
      <label>
        Queue
        <input name="queue" value={v.queue ?? ''} />
      </label>
      <label>
        Retries (default 8)
        <input name="max_retries" value={v.max_retries ?? ''} inputmode="numeric" />
      </label>
    </NamedCreateForm>
  );
}

async function listPage(c: Context<UiEnv>, deps: UiDeps, form: FormState = EMPTY_FORM) {
  const { principal } = c.get('session');
  const { data } = await deps.api(principal, 'GET', '/endpoints');
  return page(
    c,
    'Endpoints',
    <>
      <h1>Inbound endpoints</h1>
      <p class="muted">Anything sent to an inbound URL is stored and forwarded as a task. The URL is the credential: keep it secret.</p>
      <EndpointRows c={c} rows={data} />
      <CreateSection c={c} title="New endpoint" errors={form.errors}>
        <CreateForm c={c} v={form.values} />
      </CreateSection>
    </>,
    { status: form.errors.length ? 400 : 200 },
  );
}

async function eventsPage(c: Context<UiEnv>, deps: UiDeps) {
  const { principal } = c.get('session');
  const id = enc(c.req.param('id') ?? '');
  const endpoint = await deps.api(principal, 'GET', `/endpoints/${id}`);
  const cursor = c.req.query('cursor');
  const events = await deps.api(principal, 'GET', `/endpoints/${id}/events${cursor ? `?cursor=${enc(cursor)}` : ''}`);
  const canWrite = principal.role !== 'read';
  return page(
    c,
    endpoint.name,
    <>
      <h1>{`Endpoint ${endpoint.name}`}</h1>
      <p class="mono">{`${endpoint.inbound_url} → ${endpoint.forward_url}`}</p>
      {events.data.length ? (
        <Table head={['Received', 'Request', 'Forwarding task']} actions={canWrite}>
          {(events.data as Event[]).map((e) => (
            <tr>
              <td>
                <Time at={e.received_at} />
              </td>
              <td class="mono">
                {`${e.method} ${e.query || ''}`}
                <div class="muted">{`${e.content_type ?? 'no content type'}, ${e.body_size} bytes`}</div>
              </td>
              <td>
                {e.task ? (
                  <a href={`/ui/tasks/${enc(e.task.id)}`}>
                    <Badge status={e.task.status} />
                  </a>
                ) : (
                  <span class="muted">pruned</span>
                )}
              </td>
              <ActionCell show={canWrite} c={c} action={`/ui/endpoints/${id}/events/${enc(e.id)}/replay`} label="Replay" />
            </tr>
          ))}
        </Table>
      ) : (
        <p class="empty">No events yet.</p>
      )}
      {events.next_cursor ? <a href={`/ui/endpoints/${id}?cursor=${enc(events.next_cursor)}`}>Older events</a> : null}
    </>,
  );
}

export const endpointsPage: UiPage = {
  path: '/endpoints',
  label: 'Endpoints',
  role: 'read',
  mount(app: Hono<UiEnv>, deps: UiDeps) {
    app.get('/endpoints', (c) => listPage(c, deps));
    app.get('/endpoints/:id', (c) => eventsPage(c, deps));

    app.post('/endpoints', needs('write'), async (c) => {
      const values = await formFields(c);
      const input: Record<string, unknown> = { name: values.name ?? '', forward_url: values.forward_url ?? '' };
      if (values.queue?.trim()) input.queue = values.queue.trim();
      const retries = values.max_retries?.trim();
      if (retries) {
        if (!/^\d{1,3}$/.test(retries)) return listPage(c, deps, { values, errors: ['max_retries: expected a whole number'] });
        input.retry = { max_retries: Number(retries) };
      }
      try {
        await deps.api(c.get('session').principal, 'POST', '/endpoints', input);
      } catch (e) {
        return listPage(c, deps, { values, errors: problemLines(e) });
      }
      return c.redirect('/ui/endpoints?notice=endpoint-created', 303);
    });

    patchActions(app, deps, {
      resource: 'endpoints',
      actions: ['enable', 'disable'],
      patch: (action) => ({ enabled: action === 'enable' }),
      notice: 'endpoint-changed',
    });

    app.post('/endpoints/:id/events/:event_id/replay', needs('write'), async (c) => {
      const id = enc(c.req.param('id'));
      await deps.api(c.get('session').principal, 'POST', `/endpoints/${id}/events/${enc(c.req.param('event_id'))}/replay`);
      return c.redirect(`/ui/endpoints/${id}?notice=event-replayed`, 303);
    });
  },
};
