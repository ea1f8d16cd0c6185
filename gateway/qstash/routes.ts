// The QStash-compatible API, mounted at /v2 (docs/qstash.md): code written for Upstash QStash
// runs on Posthorn by changing its base URL and token (a Posthorn API key). Every route maps
// onto the native tasks, schedules and signing keys; nothing here delivers anything itself.
import { Hono } from 'hono';
import { problem } from '../../shared/errors.ts';
import type { AuthEnv } from '../auth.ts';
import { dlqRoutes } from './dlq.ts';
import { qstashKeyRoutes } from './keys.ts';
import { publishRoutes } from './publish.ts';
import { qstashQueueRoutes } from './queues.ts';
import { qstashScheduleRoutes } from './schedules.ts';
import type { QstashDeps } from './store.ts';

/** QStash features with no Posthorn counterpart: answered 404 with what to do instead. */
const UNSUPPORTED: [string, string][] = [
  ['/topics', 'URL groups (topics) are not supported; publish to each URL, or use /v2/batch'],
  ['/topics/*', 'URL groups (topics) are not supported; publish to each URL, or use /v2/batch'],
  ['/events', 'logs (events) are not served on /v2; read attempts at GET /api/v1/tasks/:id/attempts'],
  ['/logs', 'logs (events) are not served on /v2; read attempts at GET /api/v1/tasks/:id/attempts'],
  ['/flowControl/*', 'reading or pinning flow-control keys is not supported; tasks carry their limits (docs/queues.md)'],
  ['/globalParallelism', 'global parallelism is not supported on /v2'],
  ['/workflows/*', 'Upstash Workflow is not supported'],
];

export function qstashRoutes(deps: QstashDeps) {
  const app = new Hono<AuthEnv>();
  app.route('/', publishRoutes(deps));
  app.route('/', dlqRoutes(deps));
  app.route('/', qstashScheduleRoutes(deps));
  app.route('/', qstashKeyRoutes(deps));
  app.route('/', qstashQueueRoutes(deps));
  for (const [path, why] of UNSUPPORTED) {
    app.all(path, () => {
      throw problem('not_found', `${why} (docs/qstash.md)`);
    });
  }
  return app;
}
