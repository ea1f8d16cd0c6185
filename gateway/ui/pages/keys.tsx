/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// /ui/keys (admin): API keys (create shows the key once; revoke) and the team's webhook
// signing secrets (rotate; a secret is shown only on the page that answers an admin's POST,
// never in a list, a URL or a GET).
import { createHash } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { ROLES } from '../../../shared/keys.ts';
import { Action, Badge, Csrf, ErrorBox, page, Time } from '../components.tsx';
import type { UiDeps, UiEnv, UiPage } from '../env.ts';
import { formFields, needs, problemLines } from '../forms.ts';

type Shown = { title: string; secret: string; note: string };

/** A short, stable, non-reversible name for a secret: lets admins tell secrets apart without showing them. */
const fingerprint = (secret: string) => createHash('sha256').update(secret).digest('hex').slice(0, 12);

function Secret({ shown }: { shown: Shown }) {
  return (
    <div class="secret" role="alert">
      <strong>{shown.title}</strong>
      <code>{shown.secret}</code>
      <span>{shown.note}</span>
    </div>
  );
}

async function render(c: Context<UiEnv>, deps: UiDeps, extra: { shown?: Shown; errors?: string[]; status?: number } = {}) {
  const { principal } = c.get('session');
  const [{ data: keys }, signing] = await Promise.all([deps.api(principal, 'GET', '/keys'), deps.api(principal, 'GET', '/signing-keys')]);
  return page(
    c,
    'Keys',
    <>
      <h1>API keys</h1>
      {extra.shown ? <Secret shown={extra.shown} /> : null}
      <ErrorBox errors={extra.errors ?? []} />
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Role</th>
              <th>Id</th>
              <th>Created</th>
              <th>Revoked</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(keys as Record<string, any>[]).map((k) => (
              <tr>
                <td>
                  {k.name}
                  {k.id === principal.keyId ? <span class="muted"> (this session)</span> : null}
                </td>
                <td>{k.role}</td>
                <td class="mono">{k.id}</td>
                <td>
                  <Time at={k.created_at} />
                </td>
                <td>{k.revoked_at ? <Time at={k.revoked_at} /> : ''}</td>
                <td class="actions">
                  {k.revoked_at ? (
                    <Badge status="revoked" />
                  ) : (
                    <Action
                      c={c}
                      action={`/ui/keys/${k.id}/revoke`}
                      label="Revoke"
                      tone="danger"
                      confirm={
                        k.id === principal.keyId
                          ? 'Revoke the key of this session? Requests with it stop and you are signed out.'
                          : `Revoke key "${k.name}"? Requests with it stop within seconds.`
                      }
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>New key</h2>
      <form method="post" action="/ui/keys" class="filters">
        <Csrf c={c} />
        <label>
          Name
          <input name="name" maxlength={128} placeholder="deploy bot" />
        </label>
        <label>
          Role
          <select name="role">
            {ROLES.map((r) => (
              <option selected={r === 'write'}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit" class="primary">
          Create key
        </button>
        <span class="muted">
          read: sees everything, changes nothing · write: tasks and schedules · admin: also keys and signing secrets
        </span>
      </form>

      <h2>Webhook signing secret</h2>
      <p class="muted">
        Every delivery carries a Standard Webhooks signature made with this team's secret. After a rotation the previous secret keeps
        signing next to the new one for 24 h, so receivers can switch over.
      </p>
      <dl class="facts">
        <dt>Current</dt>
        <dd class="mono">{`whsec_… fingerprint ${fingerprint(signing.current)}`}</dd>
        <dt>Rotated</dt>
        <dd>{signing.rotated_at ? <Time at={signing.rotated_at} /> : 'never'}</dd>
        <dt>Previous</dt>
        <dd class="mono">{signing.previous ? `whsec_… fingerprint ${fingerprint(signing.previous)}` : 'none'}</dd>
        <dt>Previous signs until</dt>
        <dd>{signing.previous_expires_at ? <Time at={signing.previous_expires_at} /> : '—'}</dd>
      </dl>
      <div class="toolbar">
        <Action
          c={c}
          action="/ui/signing-keys/rotate"
          label="Rotate"
          tone="primary"
          confirm="Make a new signing secret? The current one keeps signing next to it for 24 h."
        />
        <Action c={c} action="/ui/signing-keys/reveal" label="Show current secret" />
        {signing.previous ? (
          <Action
            c={c}
            action="/ui/signing-keys/previous/delete"
            label="Stop signing with previous"
            tone="danger"
            confirm="Stop signing with the previous secret now? Receivers that still use it will reject deliveries."
          />
        ) : null}
      </div>
    </>,
    { status: extra.status },
  );
}

export const keysPage: UiPage = {
  path: '/keys',
  label: 'Keys',
  role: 'admin',
  mount(app: Hono<UiEnv>, deps: UiDeps) {
    app.get('/keys', (c) => render(c, deps));

    // Answered with the page itself, not a redirect: the new key exists only in this response.
    app.post('/keys', needs('admin'), async (c) => {
      const f = await formFields(c);
      const body = { role: f.role, ...(f.name?.trim() ? { name: f.name.trim() } : {}) };
      let created: { key: string; name: string; role: string };
      try {
        created = await deps.api(c.get('session').principal, 'POST', '/keys', body);
      } catch (e) {
        return render(c, deps, { errors: problemLines(e), status: 400 });
      }
      return render(c, deps, {
        shown: {
          title: `New ${created.role} key "${created.name}"`,
          secret: created.key,
          note: 'Copy it now: it is not stored and will not be shown again.',
        },
      });
    });

    app.post('/keys/:id/revoke', needs('admin'), async (c) => {
      await deps.api(c.get('session').principal, 'DELETE', `/keys/${encodeURIComponent(c.req.param('id'))}`);
      return c.redirect('/ui/keys?notice=revoked', 303);
    });

    app.post('/signing-keys/rotate', needs('admin'), async (c) => {
      const s = await deps.api(c.get('session').principal, 'POST', '/signing-keys/rotate');
      return render(c, deps, {
        shown: {
          title: 'New signing secret',
          secret: s.current,
          note: 'Give it to your receivers; the previous secret signs too for 24 h.',
        },
      });
    });

    app.post('/signing-keys/reveal', needs('admin'), async (c) => {
      const s = await deps.api(c.get('session').principal, 'GET', '/signing-keys');
      return render(c, deps, {
        shown: { title: 'Current signing secret', secret: s.current, note: 'Receivers verify deliveries with it.' },
      });
    });

    app.post('/signing-keys/previous/delete', needs('admin'), async (c) => {
      await deps.api(c.get('session').principal, 'DELETE', '/signing-keys/previous');
      return c.redirect('/ui/keys?notice=previous-removed', 303);
    });
  },
};
