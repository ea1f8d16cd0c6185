// /api/v1/circuits and /api/v1/status-page (docs/api.md, circuit breaker; docs/circuits.md).
// Reads for any key; reset and the public page for admins. An origin is the breaker's key
// (scheme://host:port, URL-encoded in the path); another team's origin is a 404 like any other
// unknown one.
import { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { DEFAULT_BREAKER_SETTINGS, originOf } from '../../worker/breaker.ts';
import { applyEvent } from '../../worker/breaker-store.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { parseOrThrow, readJson, throwIfPastDeadline } from '../http.ts';
import { apiView, getCircuit, listCircuits, publishStatusPage, statusPageUrl, unpublishStatusPage } from './circuit-queries.ts';

export const statusPageSchema = z.strictObject({ public: z.boolean() });

/**
 * The origin named in the path, in the breaker's spelling: "https://api.example.com",
 * "https://API.example.com:443" and "https://api.example.com:443/" are one origin. Only an
 * http(s) origin, without path, query or credentials, is accepted.
 */
export function parseOriginParam(raw: string): string {
  let u: URL | null = null;
  try {
    u = new URL(raw);
  } catch {
    /* below */
  }
  const ok =
    u !== null &&
    (u.protocol === 'http:' || u.protocol === 'https:') &&
    (u.pathname === '/' || u.pathname === '') &&
    !u.search &&
    !u.hash &&
    !u.username &&
    !u.password &&
    /^https?:\/\/[^/?#]+\/?$/i.test(raw);
  if (!ok) {
    const detail = 'expected an origin, scheme://host[:port], URL-encoded, e.g. https%3A%2F%2Fapi.example.com%3A443';
    throw problem('validation_failed', detail, [{ path: 'origin', message: detail }]);
  }
  return originOf(raw)!;
}

export function circuitRoutes(deps: { sql: Sql }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();
  // Every POST under /circuits is a reset: admin, checked before the origin is looked at.
  const admin = requireRole('admin');
  app.use('/circuits/*', (c, next) => (c.req.method === 'POST' ? admin(c, next) : next()));
  app.use('/status-page', requireRole('admin'));

  app.get('/circuits', async (c) => {
    const list = await listCircuits(sql, c.get('principal').teamId);
    return c.json({ data: list.map(apiView) });
  });

  app.get('/circuits/:origin', async (c) => {
    const origin = parseOriginParam(c.req.param('origin'));
    const one = await getCircuit(sql, c.get('principal').teamId, origin);
    if (!one) throw problem('not_found', `no circuit for ${origin}`);
    const { history: _h, ...view } = one;
    return c.json(view);
  });

  // Closes it now; the tasks it held back are due at once. Resetting a closed one changes nothing.
  app.post('/circuits/:origin/reset', async (c) => {
    const origin = parseOriginParam(c.req.param('origin'));
    const teamId = c.get('principal').teamId;
    const [known] = await sql`
      select 1 from circuits where team_id = ${teamId} and origin = ${origin}
      union all
      select 1 from circuit_hours where team_id = ${teamId} and origin = ${origin} limit 1`;
    if (!known) throw problem('not_found', `no circuit for ${origin}`);
    throwIfPastDeadline(c);
    await applyEvent(sql, teamId, origin, { type: 'reset' }, DEFAULT_BREAKER_SETTINGS);
    const one = await getCircuit(sql, teamId, origin);
    const { history: _h, ...view } = one!;
    return c.json(view);
  });

  app.put('/status-page', async (c) => {
    const input = parseOrThrow(statusPageSchema, await readJson(c));
    const teamId = c.get('principal').teamId;
    throwIfPastDeadline(c);
    if (!input.public) {
      await unpublishStatusPage(sql, teamId);
      return c.json({ public_url: null });
    }
    return c.json({ public_url: statusPageUrl(await publishStatusPage(sql, teamId)) });
  });

  return app;
}
