// The parts of undici a worker uses, loaded from their own files rather than from undici's
// index. The index also loads fetch, WebSocket, EventSource, the cache stores and the mock
// agents, none of which a worker runs: ~8.5 MB of every worker's RSS (a process that requires
// the index: 58.6 MB; these files alone: 50.2 MB; node alone: 39.2 MB). undici is pinned
// (package.json), and these are the same files its index loads, so errors thrown here are the
// same classes as `undici`'s and any Dispatcher (tests pass their own) works.
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const load = createRequire(import.meta.url);

export const Agent: typeof Undici.Agent = load('undici/lib/dispatcher/agent.js');
export const buildConnector: typeof Undici.buildConnector = load('undici/lib/core/connect.js');
export const errors: typeof Undici.errors = load('undici/lib/core/errors.js');
const apiRequest: (this: Undici.Dispatcher, opts: object) => Promise<Undici.Dispatcher.ResponseData> =
  load('undici/lib/api/api-request.js');
const { parseURL }: { parseURL: (url: string | URL) => URL } = load('undici/lib/core/util.js');

type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> &
  Partial<Pick<Undici.Dispatcher.RequestOptions, 'method'>> & { dispatcher: Undici.Dispatcher };

/**
 * undici's request(url, options) as its index makes it (makeDispatcher), for a URL and an
 * explicit dispatcher: every request a worker makes names one (the SSRF-safe Agent).
 */
export function request(url: string | URL, opts: RequestOptions): Promise<Undici.Dispatcher.ResponseData> {
  const u = parseURL(url);
  return apiRequest.call(opts.dispatcher, {
    ...opts,
    origin: u.origin,
    path: u.search ? `${u.pathname}${u.search}` : u.pathname,
    method: opts.method || (opts.body ? 'PUT' : 'GET'),
  });
}
