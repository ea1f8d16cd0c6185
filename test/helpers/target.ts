// A target on 127.0.0.1 that a test switches between healthy (200), failing (503), slow (answers
// after `slowMs`, past the tasks' timeout) and refusing connections (its port closed, then
// opened again on the same port). Every request it receives is recorded with the mode it met.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Mode = 'healthy' | 'failing' | 'slow' | 'refusing';
export type Hit = { at: number; mode: Mode; team: string | undefined; taskId: string; attempt: number; path: string };

export async function startTarget(opts: { slowMs?: number; mode?: Mode } = {}) {
  let mode: Mode = opts.mode ?? 'healthy';
  const hits: Hit[] = [];
  const slowMs = opts.slowMs ?? 2000;

  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    for await (const _ of req) {
      /* drain the body */
    }
    // A request from a team the test marks as "always healthy" (x-team: healthy) is answered
    // 200 whatever the mode: a second team using the same origin.
    const team = req.headers['x-team'] as string | undefined;
    const m: Mode = team === 'healthy' ? 'healthy' : mode;
    hits.push({
      at: Date.now(),
      mode: m,
      team,
      taskId: String(req.headers['x-posthorn-task-id']),
      attempt: Number(req.headers['x-posthorn-attempt']),
      path: req.url ?? '/',
    });
    if (m === 'slow') await new Promise((r) => setTimeout(r, slowMs));
    if (res.destroyed) return;
    res.writeHead(m === 'failing' ? 503 : 200, { 'content-type': 'text/plain' });
    res.end(m === 'failing' ? 'unavailable' : 'ok');
  };

  let server: Server = createServer(handler);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;

  const close = () =>
    new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    });

  return {
    url: `http://127.0.0.1:${port}`,
    origin: `http://127.0.0.1:${port}`,
    hits,
    get mode() {
      return mode;
    },
    async set(next: Mode) {
      if (next === mode) return;
      if (next === 'refusing') await close();
      if (mode === 'refusing') {
        server = createServer(handler);
        await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
      }
      mode = next;
    },
    async close() {
      if (mode !== 'refusing') await close();
    },
  };
}
