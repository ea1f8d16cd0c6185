// A real `posthorn gateway` process on 127.0.0.1 (any free port) for a test database, reached
// with the tests' JSON client over fetch: for tests that need what only a real process has (its
// own key cache and limiter, client addresses, its log output).
import { type JsonRequest, type JsonResponse, requestJson } from './client.ts';
import { type Proc, spawnPosthorn } from './proc.ts';

export type HttpResponse = JsonResponse;

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

  const request = (method: string, path: string, o: JsonRequest = {}): Promise<HttpResponse> =>
    requestJson((p, init) => fetch(`${url}${p}`, init), method, path, o);

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
