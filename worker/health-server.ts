// A worker's own small HTTP server on POSTHORN_METRICS_PORT: /healthz, /readyz (with the
// `leader` flag) and /metrics in Prometheus text format (shared/metrics.ts). Port 0 picks a free port.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Sql } from '../shared/db.ts';
import { scrapeRegistry, workerRegistry } from '../shared/metrics.ts';
import { migrationsCurrent } from '../shared/migrate.ts';

export type WorkerStatus = () => { workerId: string; leader: boolean };

export async function startHealthServer(o: { port: number; host?: string; sql: Sql; status: WorkerStatus }) {
  const server = createServer(async (req, res) => {
    const s = o.status();
    const json = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/healthz') return json(200, { status: 'ok' });
    if (req.url === '/readyz') {
      try {
        const current = await migrationsCurrent(o.sql);
        return json(current ? 200 : 503, {
          status: current ? 'ok' : 'unavailable',
          migrations: current ? 'current' : 'pending',
          leader: s.leader,
          worker_id: s.workerId,
        });
      } catch (e) {
        return json(503, { status: 'unavailable', database: (e as Error).message, leader: s.leader, worker_id: s.workerId });
      }
    }
    if (req.url === '/metrics') {
      const registry = scrapeRegistry(workerRegistry);
      try {
        const text = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType });
        return res.end(text);
      } catch (e) {
        return json(500, { status: 500, code: 'internal', detail: (e as Error).message });
      }
    }
    json(404, { status: 404, code: 'not_found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
