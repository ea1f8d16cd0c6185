// A local OTLP/HTTP trace receiver for `BENCH_OTLP=1`: accepts whatever the exporters send
// (protobuf or JSON) on 127.0.0.1, answers 200 at once and only counts requests and bytes, so
// "tracing on" in the bench costs what producing and exporting spans costs, not a collector's work.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function startOtlpReceiver() {
  const stats = { requests: 0, bytes: 0 };
  const server = createServer((req, res) => {
    req.on('data', (c: Buffer) => {
      stats.bytes += c.length;
    });
    req.on('end', () => {
      stats.requests++;
      // An empty ExportTraceServiceResponse in either encoding.
      const json = String(req.headers['content-type']).includes('json');
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
      res.end(json ? '{}' : '');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
