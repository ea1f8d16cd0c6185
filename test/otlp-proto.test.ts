// shared/otlp-proto.ts must write exactly the bytes of the SDK's own ProtobufTraceSerializer for
// any span the SDK makes: every attribute type, events, links, trace state, status messages,
// several scopes, and lengths whose varints take 1 to 4 bytes.

import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Attributes, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeTraceRequest } from '../shared/otlp-proto.ts';
import { initTelemetry, shutdownTelemetry, tracer } from '../shared/telemetry.ts';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({
    'service.name': 'posthorn-worker',
    'process.pid': 4242,
    'process.command_args': ['node', 'bin/posthorn.js', 'worker'],
    'host.name': 'vm-ü',
    'x.ratio': 0.25,
  }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
afterAll(() => provider.shutdown());

const remoteParent = (state?: string) =>
  trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: state ? new TraceState(state) : undefined,
  });

function spans(make: () => void): ReadableSpan[] {
  exporter.reset();
  make();
  return exporter.getFinishedSpans();
}

const same = (list: ReadableSpan[]) => {
  const ours = Buffer.from(encodeTraceRequest(list));
  const sdk = Buffer.from(ProtobufTraceSerializer.serializeRequest(list)!);
  expect(ours.length).toBe(sdk.length);
  expect(ours.equals(sdk)).toBe(true);
};

describe('OTLP protobuf encoding', () => {
  it('an attempt span with its client span, as the worker makes them', () => {
    const tracer = provider.getTracer('posthorn', '0.1.0');
    const list = spans(() => {
      const parent = remoteParent();
      const attempt = tracer.startSpan(
        'posthorn.attempt',
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'posthorn.task.id': '0193a5b4-7c1e-7000-8000-000000000001',
            'posthorn.attempt': 2,
            'url.full': 'http://127.0.0.1:8080/hook',
          },
        },
        parent,
      );
      const client = tracer.startSpan(
        'POST',
        { kind: SpanKind.CLIENT, attributes: { 'server.port': 8080 } },
        trace.setSpan(parent, attempt),
      );
      client.setAttribute('http.response.status_code', 503);
      client.setStatus({ code: SpanStatusCode.ERROR });
      client.end();
      attempt.setAttribute('posthorn.outcome', 'http_error');
      attempt.end();
    });
    expect(list).toHaveLength(2);
    same(list);
  });

  it('every attribute type, events, links, trace state and a status message', () => {
    const tracer = provider.getTracer('posthorn');
    const attrs: Attributes = {
      s: 'plain',
      u: 'non-ASCII: ü € 😀, and a lone surrogate \ud800',
      empty: '',
      t: true,
      f: false,
      zero: 0,
      i: 12345,
      big: 2 ** 40 + 7,
      neg: -1,
      negBig: -(2 ** 40),
      d: 3.5,
      nan: Number.NaN,
      inf: Number.POSITIVE_INFINITY,
      strs: ['a', 'b', 'ü'],
      nums: [1, 2.5, -3],
      bools: [true, false],
      mixed: ['x', null, undefined] as unknown as string[],
    };
    const list = spans(() => {
      const s = tracer.startSpan(
        'everything',
        { kind: SpanKind.INTERNAL, attributes: attrs, links: [] },
        remoteParent('vendor=abc,other=1'),
      );
      s.addEvent('an event', { n: 1, why: 'because' });
      s.addEvent('bare');
      s.addLink({
        context: { traceId: 'ab'.repeat(16), spanId: 'cd'.repeat(8), traceFlags: 0, isRemote: false },
        attributes: { rel: 'x' },
      });
      s.addLink({
        context: { traceId: '12'.repeat(16), spanId: '34'.repeat(8), traceFlags: 1, isRemote: true, traceState: new TraceState('k=v') },
      });
      s.setStatus({ code: SpanStatusCode.ERROR, message: 'it failed: ü' });
      s.end();
      // A root span with no parent, no attributes, kind SERVER, status OK.
      const r = tracer.startSpan('GET /healthz', { kind: SpanKind.SERVER, root: true });
      r.setStatus({ code: SpanStatusCode.OK });
      r.end();
    });
    same(list);
  });

  it('several scopes, and spans whose lengths need 1 to 3 bytes, in batches up to a 4-byte length', () => {
    const a = provider.getTracer('posthorn', '0.1.0');
    const b = provider.getTracer('other-scope');
    const list = spans(() => {
      for (let i = 0; i < 300; i++) {
        const t = i % 3 === 0 ? b : a;
        // Sizes around the varint steps: under 128 bytes, a few hundred, over 16 KiB; six 400 kB
        // spans take the batch past 2 MiB (a 4-byte length).
        const pad = i % 50 === 0 ? 'x'.repeat(400_000) : i % 2 ? 'y'.repeat(i) : '';
        const s = t.startSpan(`s${i}`, { attributes: pad ? { pad } : {} });
        s.end();
      }
    });
    expect(list.length).toBe(300);
    same(list);
    same(list.slice(0, 1));
    same([]);
  });
});

/** Protobuf wire format, read generically: field number → raw values (Buffer for length-delimited). */
function fields(buf: Buffer): Map<number, (number | Buffer)[]> {
  const out = new Map<number, (number | Buffer)[]>();
  let pos = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (pos < buf.length) {
    const key = varint();
    const [field, wire] = [Math.floor(key / 8), key & 7];
    let value: number | Buffer;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const n = varint();
      value = buf.subarray(pos, pos + n);
      pos += n;
    } else if (wire === 1 || wire === 5) {
      const n = wire === 1 ? 8 : 4;
      value = buf.subarray(pos, pos + n);
      pos += n;
    } else throw new Error(`wire type ${wire} at ${pos}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}
const one = (m: Map<number, (number | Buffer)[]>, f: number) => m.get(f)?.[0] as Buffer;

describe('the http/protobuf exporter (OTEL_EXPORTER_OTLP_PROTOCOL default)', () => {
  it('posts the encoded spans to the traces URL with the standard headers, OTEL_EXPORTER_OTLP_HEADERS included', async () => {
    const got: { headers: IncomingHttpHeaders; body: Buffer; url?: string }[] = [];
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      got.push({ headers: req.headers, body: Buffer.concat(chunks), url: req.url });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    process.env.OTEL_EXPORTER_OTLP_HEADERS = 'x-tenant=posthorn-test';
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await initTelemetry(
        { tracesUrl: `${base}/v1/traces`, protocol: 'http/protobuf', serviceName: 'proto-test', sampler: 'always_on', samplerRatio: 1 },
        'posthorn-worker',
      );
      const span = tracer().startSpan('posthorn.attempt', { attributes: { 'posthorn.attempt': 3 } });
      const { traceId, spanId } = span.spanContext();
      span.end();
      await shutdownTelemetry(); // flushes
      expect(got).toHaveLength(1);
      expect(got[0]!.url).toBe('/v1/traces');
      expect(got[0]!.headers['content-type']).toBe('application/x-protobuf');
      expect(got[0]!.headers['x-tenant']).toBe('posthorn-test');
      // ExportTraceServiceRequest → ResourceSpans → (Resource, ScopeSpans → (scope, Span))
      const rs = fields(one(fields(got[0]!.body), 1));
      const resourceAttrs = (fields(one(rs, 1)).get(1) as Buffer[]).map((kv) => fields(kv));
      const service = resourceAttrs.find((kv) => one(kv, 1).toString() === 'service.name')!;
      expect(one(fields(one(service, 2)), 1).toString()).toBe('proto-test');
      const ss = fields(one(rs, 2));
      expect(one(fields(one(ss, 1)), 1).toString()).toBe('posthorn');
      const sp = fields(one(ss, 2));
      expect(one(sp, 1).toString('hex')).toBe(traceId);
      expect(one(sp, 2).toString('hex')).toBe(spanId);
      expect(one(sp, 5).toString()).toBe('posthorn.attempt');
      const attr = fields(one(sp, 9));
      expect(one(attr, 1).toString()).toBe('posthorn.attempt');
      expect(fields(one(attr, 2)).get(3)).toEqual([3]);
    } finally {
      delete process.env.OTEL_EXPORTER_OTLP_HEADERS;
      await shutdownTelemetry();
      await new Promise<void>((ok) => server.close(() => ok()));
    }
  });
});
