// A target on 127.0.0.1 that records every request's start and end and the requests in flight
// per group (the first path segment: /<group>/...), so a test can check parallelism, order and
// pacing as the receiver saw them. `behave` decides per request: answer 200 or 503, after a hold.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Visit = { group: string; path: string; taskId: string; attempt: number; start: number; end: number | null; status: number };
export type Behaviour = { status?: number; holdMs?: number };

export async function startRecordingTarget(behave: (v: Visit) => Behaviour = () => ({})) {
  const visits: Visit[] = [];
  const inFlight = new Map<string, number>();
  const maxInFlight = new Map<string, number>();
  let allInFlight = 0;
  let maxAll = 0;
  const open = new Set<ServerResponse>();

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    for await (const _ of req) {
      /* drain the body */
    }
    const group = (req.url ?? '/').split('/')[1] ?? '';
    const v: Visit = {
      group,
      path: req.url ?? '/',
      taskId: String(req.headers['x-posthorn-task-id']),
      attempt: Number(req.headers['x-posthorn-attempt']),
      start: Date.now(),
      end: null,
      status: 0,
    };
    visits.push(v);
    const n = (inFlight.get(group) ?? 0) + 1;
    inFlight.set(group, n);
    maxInFlight.set(group, Math.max(maxInFlight.get(group) ?? 0, n));
    maxAll = Math.max(maxAll, ++allInFlight);
    const b = behave(v);
    open.add(res);
    if (b.holdMs) await new Promise((r) => setTimeout(r, b.holdMs));
    open.delete(res);
    inFlight.set(group, (inFlight.get(group) ?? 1) - 1);
    allInFlight--;
    v.end = Date.now();
    v.status = b.status ?? 200;
    if (res.destroyed) return;
    res.writeHead(v.status, { 'content-type': 'text/plain' });
    res.end(v.status === 200 ? 'ok' : 'no');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    visits,
    /** The most requests of a group in flight at once. */
    maxInFlight: (group: string) => maxInFlight.get(group) ?? 0,
    maxAll: () => maxAll,
    of: (group: string) => visits.filter((v) => v.group === group),
    close: () =>
      new Promise<void>((ok) => {
        for (const r of open) r.destroy();
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
