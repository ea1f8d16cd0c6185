// QStash's error shape on /v2 (docs/qstash.md): `{"error": "..."}` with the same status and
// headers (Retry-After, WWW-Authenticate, Allow) that the rest of the gateway sends as
// application/problem+json. Everything under /v2 throws the gateway's usual ProblemError, and the
// app's one onError (gateway/app.ts) turns it into problem+json; this middleware, the first on
// /v2, rewrites that answer on its way out, so auth, rate limits, deadlines, 404 and 405 all
// come out in QStash's shape without a second error path.
import type { MiddlewareHandler } from 'hono';

export const qstashErrorShape: MiddlewareHandler = async function qstashErrorShape(c, next) {
  await next();
  const res = c.res;
  if (!(res.headers.get('content-type') ?? '').startsWith('application/problem+json')) return;
  let message = res.statusText || `status ${res.status}`;
  try {
    const problem = (await res.clone().json()) as { detail?: unknown };
    if (typeof problem.detail === 'string' && problem.detail) message = problem.detail;
  } catch {
    /* not the JSON we wrote: keep the status text */
  }
  const headers = new Headers(res.headers);
  headers.set('content-type', 'application/json');
  headers.delete('content-length');
  c.res = undefined as unknown as Response; // Hono merges headers into a replaced response otherwise
  c.res = new Response(JSON.stringify({ error: message }), { status: res.status, headers });
};
