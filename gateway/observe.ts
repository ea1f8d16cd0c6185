// Per request: the Prometheus counters and histogram (route template, method, status) and,
// with tracing on, a server span named "<METHOD> <route template>" that continues the caller's
// `traceparent`. An enqueue stores that span's context as the task's trace (gateway/api/tasks.ts).
import { type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { httpRequestDuration, httpRequests } from '../shared/metrics.ts';
import { contextFromTraceparent, logIds, traceparentOf, tracer, tracingEnabled } from '../shared/telemetry.ts';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The matched route's template; "unmatched" for a 404 no route answered (bounded cardinality). */
function routeOf(c: Context): string {
  const last = c.req.matchedRoutes.at(-1);
  return last && last.method !== 'ALL' ? routePath(c, -1) : 'unmatched';
}

// Only the API is traced: probes and scrapes (/healthz, /metrics) every few seconds are noise.
const traced = (path: string) => path.startsWith('/api/') || path.startsWith('/admin/');

// The labelled series per (route, method, status), looked up once: prom-client hashes a label
// object per call. Bounded like the labels themselves (routes × methods × status codes).
const series = new Map<string, { count: { inc(): void }; duration: { observe(v: number): void } }>();

function record(route: string, method: string, status: number, seconds: number) {
  const key = `${route} ${method} ${status}`;
  let s = series.get(key);
  if (!s) {
    s = { count: httpRequests.labels({ route, method, status }), duration: httpRequestDuration.labels({ route, method }) };
    series.set(key, s);
  }
  s.count.inc();
  s.duration.observe(seconds);
}

// The request's server span, for the enqueue to store and for log lines (no async context: see
// shared/telemetry.ts).
const spans = new WeakMap<Context, Span>();

/** The request's span as a traceparent (unsampled too: the decision travels with the task). */
export const requestTraceparent = (c: Context): string | undefined => {
  const span = spans.get(c);
  return span ? traceparentOf(span) : undefined;
};

/** trace_id and span_id of the request's span for a log line; {} when not traced. */
export const requestLogIds = (c: Context) => {
  const span = spans.get(c);
  return span ? logIds(span) : {};
};

export function observeRequests(): MiddlewareHandler {
  return async function observe(c, next) {
    const t0 = performance.now();
    const method = METHODS.has(c.req.method) ? c.req.method : 'OTHER';
    if (!tracingEnabled() || !traced(c.req.path)) {
      await next();
      record(routeOf(c), method, c.res.status, (performance.now() - t0) / 1000);
      return;
    }
    const parent = contextFromTraceparent(c.req.header('traceparent'));
    const span = tracer().startSpan(
      method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': c.req.path } },
      parent,
    );
    spans.set(c, span);
    try {
      await next();
    } finally {
      const route = routeOf(c);
      const status = c.res.status;
      span.updateName(`${method} ${route}`);
      span.setAttributes({ 'http.route': route, 'http.response.status_code': status });
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      record(route, method, status, (performance.now() - t0) / 1000);
    }
  };
}
