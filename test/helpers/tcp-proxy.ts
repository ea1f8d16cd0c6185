// A TCP proxy on 127.0.0.1 in front of a real server (the test PostgreSQL), which a test takes
// away (every connection cut, the port refusing) and brings back on the same port: the database
// going away and coming back, for one client, without stopping the server other files use.

import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createSql, type Sql } from '../../shared/db.ts';

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1') {
  const sockets = new Set<Socket>();
  const handler = (client: Socket) => {
    const upstream = connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {}); // cut on purpose; the other side sees the close
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  };
  let server: Server = createServer(handler);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  let up = true;
  return {
    port,
    /** Cuts every connection and refuses new ones. */
    async down() {
      if (!up) return;
      up = false;
      for (const s of sockets) s.destroy();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
    /** Accepts connections again, on the same port. */
    async up() {
      if (up) return;
      server = createServer(handler);
      await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
      up = true;
    },
    async close() {
      await this.down();
    },
  };
}

/**
 * A pool of its own (2 connections) that reaches the database at `dbUrl` through a proxy, so a
 * test can take the database away from that pool alone. close() brings the proxy back up first,
 * so that end() is not left waiting on a cut connection.
 */
export async function poolViaProxy(dbUrl: string) {
  const url = new URL(dbUrl);
  const proxy = await startTcpProxy(Number(url.port));
  url.port = String(proxy.port);
  const sql: Sql = createSql(url.toString(), { max: 2 });
  return {
    proxy,
    sql,
    async close() {
      await proxy.up();
      await sql.end({ timeout: 1 });
      await proxy.close();
    },
  };
}
