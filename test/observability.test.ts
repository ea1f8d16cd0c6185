// Traces and metrics end to end (docs/observability.md): a real `posthorn gateway` and a real
// `posthorn worker` export over OTLP/HTTP (JSON) to a receiver in this test; one task fails once
// (503) and then succeeds. Both services' spans must form one trace that continues the caller's
// traceparent, and the target must have seen that trace. Then both /metrics are scraped and
// parsed, and their values checked against the traffic sent.
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../shared/config.ts';
import { createLogger } from '../shared/logger.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { type ReceivedSpan, startOtlpReceiver } from './helpers/otlp.ts';
import { killAll, spawnPosthorn } from './helpers/proc.ts';
import { parseProm, sampleSum, sampleValue } from './helpers/prom.ts';
import { startSink } from './helpers/sink.ts';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  await killAll();
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const SECRET_QUERY = 'sig=query-secret-7781';
const SECRET_HEADER = 'header-secret-5512';
const SECRET_BODY = 'body-secret-9034';

async function scrape(url: string) {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseProm(await res.text());
}

describe('observability (gateway and worker processes, OTLP/HTTP JSON)', () => {
  it('one trace from the enqueue through a failed and a successful attempt; metrics match the traffic', async () => {
    const h = await startHarness({ worker: false });
    cleanups.push(h.close);
    const receiver = await startOtlpReceiver();
    cleanups.push(receiver.close);
    const sink = await startSink((_req, nth) => (nth === 1 ? { status: 503, body: 'busy' } : { status: 200, body: 'ok' }));
    cleanups.push(sink.close);

    const env = {
      ...process.env,
      DATABASE_URL: h.db.url,
      POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
      POSTHORN_LOG_LEVEL: 'info',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '200', // export within 200 ms instead of 5 s
    } as Record<string, string>;
    const gw = spawnPosthorn(['gateway'], { ...env, PORT: '0' }, { ipc: true });
    const worker = spawnPosthorn(['worker'], { ...env, POSTHORN_METRICS_PORT: '0', POSTHORN_POLL_INTERVAL_MS: '100' }, { ipc: true });
    const { url: gatewayUrl } = await gw.ready;
    await worker.ready;
    const metricsPort = Number((await worker.waitForOutput(/"metrics_port":(\d+)/))[1]);

    const auth = { authorization: `Bearer ${h.team.keys.admin}`, 'content-type': 'application/json' };
    const res = await fetch(`${gatewayUrl}/api/v1/queue`, {
      method: 'POST',
      headers: { ...auth, traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
      body: JSON.stringify({
        url: `${sink.url}/hook?${SECRET_QUERY}`,
        headers: { 'x-secret': SECRET_HEADER },
        body: { secret: SECRET_BODY },
        retry: { max_retries: 3, min_backoff_ms: 100, max_backoff_ms: 100 },
      }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    // Three more, an hour ahead (status scheduled), through the batch endpoint; and a 404.
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const batch = await fetch(`${gatewayUrl}/api/v1/queue/batch`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ tasks: [1, 2, 3].map((n) => ({ url: `${sink.url}/later/${n}`, run_at: later })) }),
    });
    expect(batch.status).toBe(202);
    expect((await fetch(`${gatewayUrl}/api/v1/no-such-route/${id}`, { headers: auth })).status).toBe(404);

    const done = await waitFor(
      async () => {
        const t = (await (await fetch(`${gatewayUrl}/api/v1/tasks/${id}`, { headers: auth })).json()) as any;
        return t.status === 'succeeded' && t;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'the task to succeed' },
    );
    expect(done.attempts).toBe(2);
    expect(sink.received.map((r) => r.path)).toEqual([`/hook?${SECRET_QUERY}`, `/hook?${SECRET_QUERY}`]);

    // ---- traces -----------------------------------------------------------------------------
    const inTrace = () => receiver.spans.filter((s) => s.traceId === CALLER_TRACE);
    await waitFor(
      () => inTrace().filter((s) => s.name === 'posthorn.attempt').length >= 2 && inTrace().filter((s) => s.kind === 3).length >= 2,
      {
        timeoutMs: 15_000,
        intervalMs: 100,
        what: `two attempt and two client spans (have ${JSON.stringify(receiver.spans.map((s) => s.name))})`,
      },
    );
    const spans = inTrace();
    expect(receiver.rejected).toBe(0);

    const server = spans.filter((s) => s.name === 'POST /api/v1/queue');
    expect(server).toHaveLength(1);
    expect(server[0]).toMatchObject({ service: 'posthorn-gateway', kind: 2, parentSpanId: CALLER_SPAN });
    expect(server[0]!.attributes).toMatchObject({
      'http.route': '/api/v1/queue',
      'http.request.method': 'POST',
      'http.response.status_code': 202,
    });

    const attemptSpans = spans
      .filter((s) => s.name === 'posthorn.attempt')
      .sort((a, b) => Number(a.attributes['posthorn.attempt']) - Number(b.attributes['posthorn.attempt']));
    expect(attemptSpans).toHaveLength(2);
    const urlFull = `${sink.url}/hook`;
    attemptSpans.forEach((a, i) => {
      expect(a.service).toBe('posthorn-worker');
      expect(a.parentSpanId).toBe(server[0]!.spanId); // each attempt continues the enqueue's span
      expect(a.attributes).toMatchObject({
        'posthorn.task.id': id,
        'posthorn.attempt': i + 1,
        'url.full': urlFull,
        'http.response.status_code': i === 0 ? 503 : 200,
        'posthorn.outcome': i === 0 ? 'http_error' : 'success',
      });
      expect(a.status).toBe(i === 0 ? 2 : 0);
    });
    expect(attemptSpans[0]!.spanId).not.toBe(attemptSpans[1]!.spanId);

    const clients = spans.filter((s) => s.kind === 3);
    expect(clients).toHaveLength(2);
    for (const [i, a] of attemptSpans.entries()) {
      const client = clients.find((c) => c.parentSpanId === a.spanId);
      expect(client, `client span under attempt ${i + 1}`).toBeDefined();
      expect(client!).toMatchObject({ service: 'posthorn-worker', name: 'POST' });
      expect(client!.attributes).toMatchObject({
        'url.full': urlFull,
        'http.response.status_code': i === 0 ? 503 : 200,
        'server.port': Number(new URL(sink.url).port),
      });
      // What the target received is the client span's context, in the caller's trace.
      expect(sink.received[i]!.headers.traceparent).toBe(`00-${CALLER_TRACE}-${client!.spanId}-01`);
    }

    // Never a task's query, headers or body in anything exported.
    const exported = receiver.rawBodies.join('\n');
    for (const secret of [SECRET_QUERY, SECRET_HEADER, SECRET_BODY, h.team.keys.admin]) expect(exported).not.toContain(secret);

    // ---- metrics ----------------------------------------------------------------------------
    const g = await scrape(`${gatewayUrl}/metrics`);
    expect(g.types.get('posthorn_http_requests_total')).toBe('counter');
    expect(g.types.get('posthorn_http_request_duration_seconds')).toBe('histogram');
    expect(sampleValue(g, 'posthorn_http_requests_total', { route: '/api/v1/queue', method: 'POST', status: '202' })).toBe(1);
    expect(sampleValue(g, 'posthorn_http_requests_total', { route: '/api/v1/queue/batch', method: 'POST', status: '202' })).toBe(1);
    expect(sampleValue(g, 'posthorn_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBe(1);
    const polls = sampleValue(g, 'posthorn_http_requests_total', { route: '/api/v1/tasks/:id', method: 'GET', status: '200' });
    expect(polls).toBeGreaterThanOrEqual(1);
    expect(sampleValue(g, 'posthorn_http_request_duration_seconds_count', { route: '/api/v1/tasks/:id', method: 'GET' })).toBe(polls);
    expect(sampleValue(g, 'posthorn_http_request_duration_seconds_bucket', { route: '/api/v1/queue', method: 'POST', le: '+Inf' })).toBe(1);
    expect(sampleValue(g, 'posthorn_tasks_enqueued_total')).toBe(4);
    // No raw path (the task id) in any label.
    expect(g.samples.some((s) => Object.values(s.labels).some((v) => v.includes(id)))).toBe(false);
    expect(sampleValue(g, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(g.types.has('nodejs_eventloop_lag_seconds')).toBe(true);

    const w = await waitFor(
      async () => {
        const e = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
        // The breaker's outcomes reach PostgreSQL within 500 ms: then the target's origin counts as closed.
        const published =
          sampleValue(e, 'posthorn_leader') === 1 &&
          sampleValue(e, 'posthorn_tasks', { status: 'succeeded' }) === 1 &&
          sampleValue(e, 'posthorn_circuits', { state: 'closed' }) === 1;
        return published ? e : null;
      },
      { timeoutMs: 15_000, intervalMs: 500, what: 'the leader to publish the task counts' },
    );
    expect(sampleValue(w, 'posthorn_attempts_total', { outcome: 'http_error' })).toBe(1);
    expect(sampleValue(w, 'posthorn_attempts_total', { outcome: 'success' })).toBe(1);
    expect(sampleSum(w, 'posthorn_attempt_duration_seconds_count')).toBe(2);
    expect(sampleValue(w, 'posthorn_delivery_lag_seconds_count')).toBe(2);
    // The retry came due 100 ms after the 503; neither attempt waited anywhere near a minute.
    expect(sampleValue(w, 'posthorn_delivery_lag_seconds_bucket', { le: '60' })).toBe(2);
    expect(sampleValue(w, 'posthorn_tasks', { status: 'scheduled' })).toBe(3);
    expect(sampleValue(w, 'posthorn_tasks', { status: 'pending' })).toBe(0);
    expect(sampleValue(w, 'posthorn_tasks', { status: 'running' })).toBe(0);
    expect(sampleValue(w, 'posthorn_queue_oldest_due_seconds')).toBe(0);
    for (const state of ['open', 'half_open']) expect(sampleValue(w, 'posthorn_circuits', { state })).toBe(0);
    expect(sampleValue(w, 'posthorn_worker_slots_busy')).toBe(0);
    expect(sampleValue(w, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  }, 60_000);
});

describe('logs', () => {
  it('a line written inside a span carries its trace_id and span_id; outside, neither', () => {
    // A synchronous context manager: enough for a log call made inside context.with().
    let active = ROOT_CONTEXT;
    context.setGlobalContextManager({
      active: () => active,
      with: (ctx, fn, thisArg, ...args) => {
        const prev = active;
        active = ctx;
        try {
          return fn.call(thisArg, ...args);
        } finally {
          active = prev;
        }
      },
      bind: (_ctx, target) => target,
      enable() {
        return this;
      },
      disable() {
        return this;
      },
    });
    try {
      const lines: any[] = [];
      const logger = createLogger('test', 'info', { write: (l: string) => void lines.push(JSON.parse(l)) });
      const sc = { traceId: CALLER_TRACE, spanId: CALLER_SPAN, traceFlags: 1 };
      context.with(trace.setSpanContext(ROOT_CONTEXT, sc), () => logger.info('inside'));
      logger.info('outside');
      expect(lines[0]).toMatchObject({ msg: 'inside', trace_id: CALLER_TRACE, span_id: CALLER_SPAN });
      expect(lines[1].trace_id).toBeUndefined();
    } finally {
      context.disable();
    }
  });
});

describe('OTEL_* configuration', () => {
  const tel = (env: Record<string, string>) => parseConfig(env).telemetry;
  it('no endpoint, no tracing; the HTTP endpoint gets /v1/traces, the traces endpoint is used as given', () => {
    expect(tel({}).tracesUrl).toBeNull();
    expect(tel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318/' })).toMatchObject({
      tracesUrl: 'http://jaeger:4318/v1/traces',
      protocol: 'http/protobuf',
      sampler: 'parentbased_always_on',
      samplerRatio: 1,
    });
    expect(tel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).tracesUrl).toBe(
      'http://jaeger:4317',
    );
    expect(
      tel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:9999/traces' }).tracesUrl,
    ).toBe('http://b:9999/traces');
    expect(tel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'true' }).tracesUrl).toBeNull();
    expect(tel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_EXPORTER: 'none' }).tracesUrl).toBeNull();
    expect(tel({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' })).toMatchObject({ samplerRatio: 0.25 });
  });

  it('an invalid value stops the process with the variable named', () => {
    expect(() => tel({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
    expect(() => tel({ OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER/);
    expect(() => tel({ OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(/OTEL_TRACES_SAMPLER_ARG/);
    expect(() => tel({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
  });
});
