// A local OTLP/HTTP receiver (JSON protocol, OTEL_EXPORTER_OTLP_PROTOCOL=http/json) on
// 127.0.0.1: keeps every span it is sent, flattened with its service name and attributes.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ReceivedSpan = {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number; // 1 internal, 2 server, 3 client, 4 producer, 5 consumer
  attributes: Record<string, string | number | boolean>;
  status: number; // 0 unset, 1 ok, 2 error
};

// The JSON protocol writes ids as hex; base64 (the protobuf mapping's default) is accepted too.
const hexId = (v: unknown): string => {
  const s = typeof v === 'string' ? v : '';
  return /^[0-9a-f]*$/i.test(s) ? s.toLowerCase() : Buffer.from(s, 'base64').toString('hex');
};

function attrValue(v: any): string | number | boolean {
  if (v === undefined || v === null) return '';
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('boolValue' in v) return v.boolValue;
  return JSON.stringify(v);
}

const attrs = (list: any[] | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, attrValue(a.value)]));

export async function startOtlpReceiver() {
  const spans: ReceivedSpan[] = [];
  const rawBodies: string[] = [];
  let rejected = 0;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).includes('application/json')) {
      rejected++;
      res.writeHead(415).end();
      return;
    }
    rawBodies.push(body);
    const msg = JSON.parse(body);
    for (const rs of msg.resourceSpans ?? []) {
      const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          spans.push({
            service,
            traceId: hexId(s.traceId),
            spanId: hexId(s.spanId),
            parentSpanId: hexId(s.parentSpanId ?? ''),
            name: s.name,
            kind: Number(s.kind ?? 0),
            attributes: attrs(s.attributes),
            status: Number(s.status?.code ?? 0),
          });
        }
      }
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    /** Every request body as received: for checks that something never appears anywhere. */
    rawBodies,
    get rejected() {
      return rejected;
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
