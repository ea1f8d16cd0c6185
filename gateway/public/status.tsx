/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// /status/<token>: a team's status page without signing in (docs/circuits.md). Read-only, and
// built from publicView alone: origins, states and the hourly history's states, never a path,
// query, error text, count or task. An unknown or revoked token is a 404 page that says no more
// than that. It uses the web UI's stylesheet and script (ui.js refreshes #main every 2 s).
import { type Context, Hono } from 'hono';
import type { Child } from 'hono/jsx';
import type { Sql } from '../../shared/db.ts';
import { listCircuits, publicView, teamForStatusToken } from '../api/circuit-queries.ts';
import { ASSETS } from '../ui/assets.ts';
import { PublicCircuitTable, StripLegend } from '../ui/circuit-view.tsx';
import { pageHeaders } from '../ui/headers.ts';
import { STATUS_REFRESH_S } from '../ui/pages/status.tsx';

function html(c: Context, title: string, body: Child, status: 200 | 404, live: boolean) {
  const doc = (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="noindex" />
        <title>{title}</title>
        <link rel="stylesheet" href={ASSETS.css.href} />
        <script src={ASSETS.js.href} defer />
      </head>
      <body>
        <header class="top">
          <span class="brand">Posthorn status</span>
        </header>
        <main id="main" data-live={live ? String(STATUS_REFRESH_S) : undefined}>
          {body}
        </main>
        <footer class="muted">
          {live ? <span id="live-note">{`Hours are UTC. This page refreshes itself every ${STATUS_REFRESH_S} s.`}</span> : null}
        </footer>
      </body>
    </html>
  );
  // The token is the page's only secret: no caches keep it, no search engine lists it, and
  // Referrer-Policy: same-origin (pageHeaders) keeps it out of other sites' logs.
  c.header('cache-control', 'no-store');
  c.header('x-robots-tag', 'noindex');
  return c.html(`<!doctype html>${doc}`, status);
}

export function publicStatusRoutes(deps: { sql: Sql; now?: () => number }) {
  const app = new Hono();
  app.use('*', pageHeaders());
  app.get('/:token', async (c) => {
    const teamId = await teamForStatusToken(deps.sql, c.req.param('token'));
    if (!teamId) {
      return html(
        c,
        'Not found · Posthorn',
        <p class="empty">There is no status page here. Its address may have been revoked.</p>,
        404,
        false,
      );
    }
    const list = (await listCircuits(deps.sql, teamId, (deps.now ?? Date.now)())).map(publicView);
    const notClosed = list.filter((v) => v.state !== 'closed').length;
    return html(
      c,
      'Status · Posthorn',
      <>
        <h1>
          {list.length === 0
            ? 'Status'
            : notClosed
              ? `${notClosed} of ${list.length} origins not closed`
              : `All ${list.length} origins closed`}
        </h1>
        <PublicCircuitTable list={list} />
        <StripLegend />
      </>,
      200,
      true,
    );
  });
  return app;
}
