// 405 method_not_allowed for a known path with a method it does not serve (docs/api.md,
// errors), for every route of the app at once: the allowed methods come from Hono's own route
// table (app.routes), so a new route needs nothing here. Only requests that matched no route
// get here (app.notFound), so served requests pay nothing.

type Table = { pattern: RegExp; methods: Set<string> }[];
/** What of a Hono app this reads: its routes (any Env; Hono's RouterRoute has these). */
type RoutedApp = { routes: readonly { method: string; path: string }[] };

/** "/api/v1/tasks/:id" → /^\/api\/v1\/tasks\/[^/]+$/ (Hono's :param, :param{re} and *). */
function toRegExp(path: string): RegExp {
  const src = path
    .split('/')
    .map((seg) => {
      if (seg === '*') return '.*';
      if (seg.startsWith(':')) return '[^/]+';
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${src}$`);
}

// Middleware registers with method ALL; handlers with their method.
function buildTable(app: RoutedApp): Table {
  const byPath = new Map<string, Set<string>>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    let set = byPath.get(r.path);
    if (!set) byPath.set(r.path, (set = new Set()));
    set.add(r.method);
    if (r.method === 'GET') set.add('HEAD'); // Hono answers HEAD with the GET handler
  }
  return [...byPath].map(([path, methods]) => ({ pattern: toRegExp(path), methods }));
}

/** path → the Allow header value when the path is known (some route serves it), else null. */
export function methodNotAllowed(app: RoutedApp): (path: string) => string | null {
  let table: Table | null = null; // built on first use: every route is registered by then
  return (path) => {
    table ??= buildTable(app);
    const methods = new Set<string>();
    for (const r of table) if (r.pattern.test(path)) for (const m of r.methods) methods.add(m);
    return methods.size ? [...methods].sort().join(', ') : null;
  };
}
