/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// /ui/status (any role): the team's circuit breakers, one row per origin with its endpoints
// beneath, refreshed every 2 s by ui.js. Admins also get "Reset" on a breaker that is not
// closed and the switch that makes the page public at /status/<token> (docs/circuits.md);
// both go through the API's routes in-process, so the API's role checks apply to the letter.
import type { Context, Hono } from 'hono';
import { ProblemError } from '../../../shared/errors.ts';
import { listCircuits, statusPageToken } from '../../api/circuit-queries.ts';
import { CircuitTable, StripLegend } from '../circuit-view.tsx';
import { Action, atLeast, ErrorBox, page } from '../components.tsx';
import type { UiDeps, UiEnv, UiPage } from '../env.ts';
import { formFields, needs, problemLines } from '../forms.ts';

/** Seconds between refreshes: a breaker opens or closes in seconds, so the page keeps up. */
export const STATUS_REFRESH_S = 2;

const NOTICES: Record<string, string> = {
  reset: 'Breaker reset: it is closed and the tasks it held back are due now.',
  public: 'The status page is public at the address below.',
  private: 'The status page is private again; its old address answers 404.',
};

async function render(c: Context<UiEnv>, deps: UiDeps, errors: string[] = [], status = 200) {
  const { principal } = c.get('session');
  const admin = atLeast(principal.role, 'admin');
  const [list, token] = await Promise.all([
    listCircuits(deps.sql, principal.teamId, deps.now()),
    admin ? statusPageToken(deps.sql, principal.teamId) : null,
  ]);
  const notice = NOTICES[c.req.query('done') ?? ''];
  const open = list.filter((v) => v.state !== 'closed').length;
  return page(
    c,
    'Status',
    <>
      <h1>{`Circuit breakers (${list.length} origin${list.length === 1 ? '' : 's'}, ${open} not closed)`}</h1>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <ErrorBox errors={errors} />
      <CircuitTable
        list={list}
        actions={(v) =>
          admin && v.state !== 'closed' ? (
            <Action c={c} action="/ui/status/reset" label="Reset" tone="primary" fields={{ origin: v.origin }} />
          ) : null
        }
      />
      <StripLegend />
      {admin ? (
        <section class="toolbar public-page">
          {token ? (
            <>
              <span>
                Public, read-only (origins and states only): <a href={`/status/${token}`} class="mono">{`/status/${token}`}</a>
              </span>
              <Action c={c} action="/ui/status/public" label="Make private" fields={{ public: '0' }} />
            </>
          ) : (
            <>
              <span class="muted">This page is private. A public copy shows origins and states only, without signing in.</span>
              <Action c={c} action="/ui/status/public" label="Make public" fields={{ public: '1' }} />
            </>
          )}
        </section>
      ) : null}
    </>,
    { live: STATUS_REFRESH_S, status },
  );
}

export const statusPage: UiPage = {
  path: '/status',
  label: 'Status',
  role: 'read',
  mount(app: Hono<UiEnv>, deps: UiDeps) {
    app.get('/status', (c) => render(c, deps));

    app.post('/status/reset', needs('admin'), async (c) => {
      const origin = (await formFields(c)).origin ?? '';
      try {
        await deps.api(c.get('session').principal, 'POST', `/circuits/${encodeURIComponent(origin)}/reset`);
      } catch (e) {
        return render(c, deps, problemLines(e), e instanceof ProblemError ? e.status : 400);
      }
      return c.redirect('/ui/status?done=reset', 303);
    });

    app.post('/status/public', needs('admin'), async (c) => {
      const on = (await formFields(c)).public === '1';
      await deps.api(c.get('session').principal, 'PUT', '/status-page', { public: on });
      return c.redirect(`/ui/status?done=${on ? 'public' : 'private'}`, 303);
    });
  },
};
