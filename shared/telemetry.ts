// OpenTelemetry traces, once per process, from the standard OTEL_* variables (parsed in
// shared/config.ts). Without an endpoint nothing is set up: the API's no-op tracer answers,
// callers check tracingEnabled() first, and the SDK is never even imported, so tracing off
// costs a boolean test per request and per attempt.
//
// A task's trace lives in its `traceparent` column (W3C Trace Context): the gateway stores its
// server span's context there, and every attempt, hours later on any worker, continues it.
import {
  type Attributes,
  type Context,
  type ContextManager,
  context,
  DiagLogLevel,
  diag,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { TelemetryConfig } from './config.ts';
import type { Logger } from './logger.ts';
import { version } from './version.ts';

type Sdk = { shutdown(): Promise<void>; forceFlush(): Promise<void> };

let enabled = false;
let sdk: Sdk | null = null;
let starting: Promise<void> | null = null;

/** True once spans are recorded and exported in this process. */
export const tracingEnabled = () => enabled;

let cached: Tracer | null = null;

/** Posthorn's tracer (the no-op one while tracing is off). */
export const tracer = (): Tracer => cached ?? trace.getTracer('posthorn', version);

/**
 * Starts the SDK when an endpoint is configured; later calls (a second worker in one process,
 * say) do nothing. Export failures are logged at warn by the SDK's diagnostics.
 */
export function initTelemetry(cfg: TelemetryConfig | undefined, defaultServiceName: string, logger?: Logger): Promise<void> {
  if (!cfg?.tracesUrl) return Promise.resolve();
  starting ??= start(cfg, cfg.serviceName ?? defaultServiceName, logger);
  return starting;
}

async function start(cfg: TelemetryConfig, serviceName: string, logger?: Logger) {
  // Imported here, not at the top: with tracing off the SDK and its exporters are never loaded.
  // The tracer provider alone, not @opentelemetry/sdk-node: NodeSDK also loads the metrics and
  // logs SDKs and every exporter and propagator it could be configured with, which cost each
  // process 250-300 ms more CPU at start (≈710 ms against ≈390 ms) for nothing Posthorn uses.
  const [base, { W3CTraceContextPropagator }, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/core'),
    import('@opentelemetry/resources'),
  ]);
  if (logger) {
    const log = logger.child({ component: 'otel' });
    diag.setLogger(
      {
        error: (msg, ...args) => log.warn({ args }, msg),
        warn: (msg, ...args) => log.warn({ args }, msg),
        info: () => {},
        debug: () => {},
        verbose: () => {},
      },
      DiagLogLevel.WARN,
    );
  }
  const ratio = new base.TraceIdRatioBasedSampler(cfg.samplerRatio);
  const root = {
    always_on: new base.AlwaysOnSampler(),
    always_off: new base.AlwaysOffSampler(),
    traceidratio: ratio,
    parentbased_always_on: new base.ParentBasedSampler({ root: new base.AlwaysOnSampler() }),
    parentbased_always_off: new base.ParentBasedSampler({ root: new base.AlwaysOffSampler() }),
    parentbased_traceidratio: new base.ParentBasedSampler({ root: ratio }),
  }[cfg.sampler];
  const exporter = await createExporter(cfg.protocol, cfg.tracesUrl!);
  // What NodeSDK would describe: OTEL_RESOURCE_ATTRIBUTES, the process and the host, then the service name.
  const resource = resources
    .defaultResource()
    .merge(resources.detectResources({ detectors: [resources.envDetector, resources.processDetector, resources.hostDetector] }))
    .merge(resources.resourceFromAttributes({ 'service.name': serviceName }));
  const provider = new base.BasicTracerProvider({
    resource,
    sampler: root,
    // Batches of up to 512 spans every 5 s (or OTEL_BSP_*): the export is off the hot path.
    spanProcessors: [new base.BatchSpanProcessor(exporter)],
  });
  context.setGlobalContextManager(new SyncContextManager());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  // Posthorn's one tracer, looked up once: trace.getTracer() per span went through the API's
  // proxy and the provider's name-and-version map on every attempt.
  cached = provider.getTracer('posthorn', version);
  sdk = { shutdown: () => provider.shutdown(), forceFlush: () => provider.forceFlush() };
  enabled = true;
}

async function createExporter(protocol: TelemetryConfig['protocol'], url: string) {
  if (protocol === 'http/json') return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url });
  if (protocol === 'grpc') return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter({ url });
  // http/protobuf: the SDK's OTLP HTTP exporter (its headers, timeout, retries and compression
  // from the OTEL_EXPORTER_OTLP_* variables) with Posthorn's encoder of the same bytes
  // (shared/otlp-proto.ts), which costs an attempt about half as much CPU (docs/observability.md).
  const [{ OTLPExporterBase }, http, { ProtobufTraceSerializer, TraceExporterMetricsHelper }, { encodeTraceRequest }] = await Promise.all([
    import('@opentelemetry/otlp-exporter-base'),
    import('@opentelemetry/otlp-exporter-base/node-http'),
    import('@opentelemetry/otlp-transformer'),
    import('./otlp-proto.ts'),
  ]);
  const serializer = { serializeRequest: encodeTraceRequest, deserializeResponse: ProtobufTraceSerializer.deserializeResponse };
  const options = http.convertLegacyHttpOptions({ url }, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' });
  return new OTLPExporterBase(
    http.createOtlpHttpExportDelegate(options, serializer, 'otlp_http_span_exporter', TraceExporterMetricsHelper, undefined),
  );
}

/** Exports what is buffered and stops the SDK (SIGTERM). Bounded by the exporter's 10 s timeout. */
export async function shutdownTelemetry(): Promise<void> {
  await starting?.catch(() => {});
  const s = sdk;
  sdk = null;
  enabled = false;
  starting = null;
  cached = null;
  await s?.shutdown().catch(() => {});
  // Unregistered, so a later initTelemetry() in this process (tests) can register anew.
  if (s) {
    trace.disable();
    context.disable();
    propagation.disable();
  }
}

// Version 00: 55 characters, lowercase hex. Tested without captures, then sliced: a stored
// traceparent is parsed once per attempt.
const TRACEPARENT_RE = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** A remote parent from a W3C traceparent; null when absent or malformed. */
export function parseTraceparent(tp: string | null | undefined): SpanContext | null {
  if (!tp) return null;
  if (tp.length !== 55) tp = tp.trim();
  if (!TRACEPARENT_RE.test(tp)) return null;
  const traceId = tp.slice(3, 35);
  const spanId = tp.slice(36, 52);
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  return { traceId, spanId, traceFlags: Number.parseInt(tp.slice(53), 16) & 1, isRemote: true };
}

/** The context whose parent is `tp` (ROOT_CONTEXT, a new trace, when there is none). */
export function contextFromTraceparent(tp: string | null | undefined): Context {
  const sc = parseTraceparent(tp);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}

export function traceparentOf(span: Span): string {
  const sc = span.spanContext();
  return `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
}

/** A span's ids for a log line. */
export function logIds(span: Span): { trace_id: string; span_id: string } {
  const sc = span.spanContext();
  return { trace_id: sc.traceId, span_id: sc.spanId };
}

/**
 * The active context lasts for the synchronous extent of context.with() and no longer: no
 * async_hooks. The SDK's default (AsyncLocalStorage) makes every promise in the process pay
 * for a hook on Node 20: a loop of awaits ran 9× slower with it, and in the bench tracing
 * cost the gateway and the workers ≈30% more CPU per task (docs/observability.md). Posthorn
 * passes parent contexts explicitly instead (the request's span on its Hono context, the
 * attempt's span to its client span), so nothing relies on a context surviving an await.
 */
class SyncContextManager implements ContextManager {
  private current: Context = ROOT_CONTEXT;
  active(): Context {
    return this.current;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A) {
    const prev = this.current;
    this.current = ctx;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.current = prev;
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.current = ROOT_CONTEXT;
    return this;
  }
}

/** A URL without its query, fragment and credentials (they may carry secrets): what url.full may show. */
export function urlWithoutQuery(raw: string): string {
  try {
    const u = new URL(raw);
    u.search = '';
    u.hash = '';
    if (u.username || u.password) {
      u.username = 'REDACTED';
      u.password = '';
    }
    return u.href;
  } catch {
    return raw.replace(/[?#].*$/s, '');
  }
}

/**
 * A root span from `startMs` until now, for leader passes (rescues, prunes) that are only worth
 * a span once they turn out to have done something or failed: idle passes run every few
 * hundred milliseconds and would bury the useful ones.
 */
export function recordPass(name: string, startMs: number, attributes: Attributes, error?: unknown): void {
  if (!enabled) return;
  const span = tracer().startSpan(name, { startTime: startMs, attributes, root: true });
  if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message ?? String(error) });
  span.end();
}

/**
 * A root span for one schedule's tick: the task it creates takes this span's context as its
 * trace, so Jaeger shows the tick and then every attempt of that task. Null with tracing off.
 */
export function startTickSpan(attributes: Attributes): Span | null {
  if (!enabled) return null;
  return tracer().startSpan('posthorn.schedule.tick', { kind: SpanKind.PRODUCER, attributes, root: true });
}
