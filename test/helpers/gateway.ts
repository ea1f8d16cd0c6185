// A real `posthorn gateway` process on 127.0.0.1 (any free port) for a test database, and a
// small fetch client for it: for tests that need what only a real process has (its own key
// cache and limiter, client addresses, its log output).
import { type Proc, spawnPosthorn } from './proc.ts';

export type HttpResponse = { status: number; headers: Headers; body: any };

/** The test process's environment without any POSTHORN_* a developer may have exported. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('POSTHORN_') && k !== 'DATABASE_URL') env[k] = v;
  return env;
}

export async function spawnGateway(databaseUrl: string, env: Record<string, string> = {}) {
  const proc: Proc = spawnPosthorn(
    ['gateway'],
    {
      ...cleanEnv(),
      DATABASE_URL: databaseUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
      POSTHORN_LOG_LEVEL: 'info',
      ...env,
    },
    { ipc: true },
  );
  const { url } = (await proc.ready) as { url: string };

  async function request(
    method: string,
    path: string,
    o: { key?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...o.headers };
    if (o.key) headers.authorization = `Bearer ${o.key}`;
    let payload = o.raw;
    if (o.body !== undefined) payload = JSON.stringify(o.body);
    if (payload !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    const res = await fetch(`${url}${path}`, { method, headers, body: payload });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, body };
  }

  return {
    url,
    proc,
    request,
    stop: async () => {
      if (proc.proc.exitCode === null && proc.proc.signalCode === null) proc.proc.kill('SIGTERM');
      await proc.exited;
    },
  };
}

export type Gateway = Awaited<ReturnType<typeof spawnGateway>>;
