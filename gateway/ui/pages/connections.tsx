/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// /ui/connections (admin): the team's connections as the API lists them, which is without any
// secret: there is nothing secret on this page to leak. Secrets are write-only, so creating and
// changing connections is the API's job (docs/connections.md); the page can delete one.
import type { Context, Hono } from 'hono';
import { Action, page, Time } from '../components.tsx';
import type { UiDeps, UiEnv, UiPage } from '../env.ts';
import { needs } from '../forms.ts';

const TYPE_LABEL: Record<string, string> = {
  oauth2_client_credentials: 'OAuth2 client credentials',
  bearer: 'bearer token',
  basic: 'basic',
};

function Detail({ c }: { c: Record<string, string | null | undefined> }) {
  if (c.type === 'oauth2_client_credentials') {
    return (
      <>
        <span class="mono">{c.token_url}</span>
        <span class="muted">{` client ${c.client_id}${c.scope ? ` · scope ${c.scope}` : ''}${c.audience ? ` · audience ${c.audience}` : ''}`}</span>
      </>
    );
  }
  if (c.type === 'basic') return <span class="muted">user {c.username}</span>;
  return <span class="muted">—</span>;
}

async function render(c: Context<UiEnv>, deps: UiDeps) {
  const { data } = await deps.api(c.get('session').principal, 'GET', '/connections');
  const rows = data as Record<string, string | null | undefined>[];
  return page(
    c,
    'Connections',
    <>
      <h1>Connections</h1>
      <p class="muted">
        Credentials that tasks and schedules name in <code>{'"auth": {"connection": "<name>"}'}</code>; the worker adds the authorization
        header when it sends. Secrets are encrypted at rest and never shown: create and change connections with the API (POST and PATCH
        /api/v1/connections).
      </p>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th>Endpoint</th>
              <th>Token cached until</th>
              <th>Updated</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 ? (
              <tr>
                <td colspan={6} class="muted">
                  No connections yet.
                </td>
              </tr>
            ) : null}
            {rows.map((r) => (
              <tr>
                <td class="mono">{r.name}</td>
                <td>{TYPE_LABEL[r.type ?? ''] ?? r.type}</td>
                <td>
                  <Detail c={r} />
                </td>
                <td>{r.token_cached_until ? <Time at={r.token_cached_until} /> : r.type === 'oauth2_client_credentials' ? 'none' : '—'}</td>
                <td>
                  <Time at={r.updated_at} />
                </td>
                <td class="actions">
                  <Action
                    c={c}
                    action={`/ui/connections/${r.id}/delete`}
                    label="Delete"
                    tone="danger"
                    confirm={`Delete connection "${r.name}"? Tasks that name it fail their attempts as auth_error.`}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>,
  );
}

export const connectionsPage: UiPage = {
  path: '/connections',
  label: 'Connections',
  role: 'admin',
  mount(app: Hono<UiEnv>, deps: UiDeps) {
    app.get('/connections', (c) => render(c, deps));
    app.post('/connections/:id/delete', needs('admin'), async (c) => {
      await deps.api(c.get('session').principal, 'DELETE', `/connections/${encodeURIComponent(c.req.param('id'))}`);
      return c.redirect('/ui/connections?notice=connection-deleted', 303);
    });
  },
};
