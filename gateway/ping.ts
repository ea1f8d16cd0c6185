// Heartbeat pings: GET or POST /ping/<token> (a success) and /ping/<token>/fail (an explicit
// failure: down at once), no API key (docs/monitors.md). The state change and its event are
// shared/monitors.ts's recordPing, one transaction. The request body is never read.
import { Hono } from 'hono';
import type { Sql } from '../shared/db.ts';
import { problem } from '../shared/errors.ts';
import { recordPing } from '../shared/monitors.ts';
import { deadline } from './http.ts';

/** At most this much of a User-Agent is kept with a ping. */
const USER_AGENT_CHARS = 256;

export function pingRoutes(deps: { sql: Sql; deadlineMs?: number }) {
  const app = new Hono();
  app.use('*', deadline(deps.deadlineMs ?? 4500));
  for (const [path, kind] of [
    ['/:token', 'success'],
    ['/:token/fail', 'fail'],
  ] as const) {
    app.on(['GET', 'POST'], path, async (c) => {
      const token = c.req.param('token');
      if (!/^[A-Za-z0-9]{1,64}$/.test(token)) throw problem('not_found', 'no such monitor');
      const ua = c.req.header('user-agent');
      const res = await recordPing(deps.sql, {
        token,
        kind,
        method: c.req.method,
        // Only visible ASCII and spaces are kept: a NUL or a lone surrogate cannot be stored.
        userAgent: ua ? ua.replace(/[^\x20-\x7e]/g, '').slice(0, USER_AGENT_CHARS) : null,
      });
      if (!res.found) throw problem('not_found', 'no such monitor');
      if (res.paused) throw problem('gone', 'this monitor is paused; resume it to record pings');
      return c.json({ ok: true, status: res.status });
    });
  }
  return app;
}
