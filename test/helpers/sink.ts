// A real HTTP target on 127.0.0.1 that records what it receives and answers as told.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** body: the bytes as UTF-8 text; raw: the bytes (binary bodies). */
export type Received = { method: string; path: string; headers: IncomingMessage['headers']; body: string; raw: Buffer; at: number };
export type Reply = { status?: number; headers?: Record<string, string>; body?: string; delayMs?: number };
export type Behaviour = (req: Received, nth: number) => Reply | Promise<Reply>;

export async function startSink(behaviour: Behaviour = () => ({ status: 200, body: 'ok' })) {
  const received: Received[] = [];
  const perPath = new Map<string, number>();
  let connections = 0;
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const r: Received = { method: req.method!, path: req.url!, headers: req.headers, body: raw.toString(), raw, at: Date.now() };
    received.push(r);
    const nth = (perPath.get(r.path) ?? 0) + 1;
    perPath.set(r.path, nth);
    const reply = await behaviour(r, nth);
    if (reply.delayMs) await new Promise((ok) => setTimeout(ok, reply.delayMs));
    if (res.destroyed) return;
    res.writeHead(reply.status ?? 200, reply.headers ?? {});
    res.end(reply.body ?? '');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    get connections() {
      return connections;
    },
    server,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
