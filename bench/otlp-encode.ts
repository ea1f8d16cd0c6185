// CPU per span of encoding spans for OTLP/protobuf: the SDK's ProtobufTraceSerializer against
// Posthorn's encoder (shared/otlp-proto.ts), on one batch of 512 spans shaped as the worker makes
// them (256 attempt spans with their client spans, under a resource from the same detectors).
//
//   node --import tsx bench/otlp-encode.ts
//
// Three interleaved rounds of 3,000 encodings of the batch each; prints µs of CPU per span.
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  processDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { encodeTraceRequest } from '../shared/otlp-proto.ts';

const exporter = new InMemorySpanExporter();
const resource = defaultResource()
  .merge(detectResources({ detectors: [envDetector, processDetector, hostDetector] }))
  .merge(resourceFromAttributes({ 'service.name': 'posthorn-worker' }));
const provider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('posthorn', '0.1.0');
for (let i = 0; i < 256; i++) {
  const parent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: (i + 1).toString(16).padStart(32, '0'),
    spanId: (i + 1).toString(16).padStart(16, '0'),
    traceFlags: 1,
    isRemote: true,
  });
  const a = tracer.startSpan(
    'posthorn.attempt',
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'posthorn.task.id': `0193a5b4-7c1e-7000-8000-${String(i).padStart(12, '0')}`,
        'posthorn.attempt': 1,
        'url.full': 'http://127.0.0.1:8080/hooks/orders',
        'http.request.method': 'POST',
      },
    },
    parent,
  );
  const c = tracer.startSpan(
    'POST',
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'http.request.method': 'POST',
        'url.full': 'http://127.0.0.1:8080/hooks/orders',
        'server.address': '127.0.0.1',
        'server.port': 8080,
      },
    },
    trace.setSpan(parent, a),
  );
  c.setAttribute('http.response.status_code', 200);
  c.end();
  a.setAttribute('posthorn.outcome', 'success');
  a.setAttribute('posthorn.task.status', 'succeeded');
  a.setAttribute('http.response.status_code', 200);
  a.end();
}
await new Promise((r) => setTimeout(r, 500)); // host detector's async attributes
const spans = exporter.getFinishedSpans();
const run = (name: string, f: () => unknown) => {
  for (let i = 0; i < 300; i++) f();
  const t = process.cpuUsage();
  const n = 3000;
  for (let i = 0; i < n; i++) f();
  const c = process.cpuUsage(t);
  console.log(name, ((c.user + c.system) / n / spans.length).toFixed(2), 'µs per span');
};
console.log('spans', spans.length, 'bytes', encodeTraceRequest(spans).length, ProtobufTraceSerializer.serializeRequest(spans)!.length);
for (let r = 0; r < 3; r++) {
  run('sdk ', () => ProtobufTraceSerializer.serializeRequest(spans));
  run('ours', () => encodeTraceRequest(spans));
}
