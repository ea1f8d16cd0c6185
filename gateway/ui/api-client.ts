// The UI's actions go through the API's own routes, called in-process with the session's
// principal instead of a Bearer key: cancel, replay, schedules, keys, signing keys, circuit
// resets and the public status page then obey exactly the API's rules (role checks, validation,
// target policy, 404 for another team's ids), and a change to a route changes the UI with it.
// No HTTP, no serialisation beyond the JSON the routes speak. A refusal arrives as the route's ProblemError, thrown.
import { Hono } from 'hono';
import type { Sql } from '../../shared/db.ts';
import { ProblemError } from '../../shared/errors.ts';
import type { TargetCheck } from '../../shared/targets.ts';
import { circuitRoutes } from '../api/circuits.ts';
import { connectionRoutes } from '../api/connections.ts';
import { endpointRoutes } from '../api/endpoints.ts';
import { keyRoutes } from '../api/keys.ts';
import { monitorRoutes } from '../api/monitors.ts';
import { scheduleRoutes } from '../api/schedules.ts';
import { signingKeyRoutes } from '../api/signing-keys.ts';
import { taskRoutes } from '../api/tasks.ts';
import type { AuthEnv, Principal } from '../auth.ts';
import type { EnqueueBatcher } from '../enqueue-batcher.ts';

export type ApiDeps = { sql: Sql; batcher: EnqueueBatcher; maxBodyBytes: number; checkTarget: TargetCheck };
export type ApiCall = (
  principal: Principal,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH',
  path: string,
  body?: unknown,
) => Promise<any>;

export function inProcessApi(deps: ApiDeps): ApiCall {
  const api = new Hono<AuthEnv & { Bindings: { principal: Principal } }>();
  api.use('*', async function principalFromSession(c, next) {
    c.set('principal', c.env.principal);
    await next();
  });
  api.route('/', taskRoutes(deps));
  api.route('/', scheduleRoutes(deps));
  api.route('/', keyRoutes(deps));
  api.route('/', signingKeyRoutes(deps));
  api.route('/', circuitRoutes(deps));
  api.route('/', endpointRoutes(deps));
  api.route('/', monitorRoutes(deps));
  // Without a secret box: the UI lists and deletes connections, it never writes a secret.
  api.route('/', connectionRoutes({ sql: deps.sql, box: null, checkTarget: deps.checkTarget }));
  // Rethrown: the caller gets the ProblemError (or database error) itself, not a 500 response.
  api.onError((err) => {
    throw err;
  });

  return async function call(principal, method, path, body) {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.headers = { 'content-type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    const res = await api.request(path, init, { principal });
    if (res.status === 404 && !res.headers.get('content-type')?.includes('json')) {
      throw new ProblemError('not_found', `no API route for ${method} ${path}`);
    }
    return res.status === 204 ? null : res.json();
  };
}
