// Connections across a fleet of 2 real `posthorn worker` processes (docs/connections.md): 200
// tasks for one OAuth2 connection make exactly one token request (the advisory lock and the
// shared cache), the target accepts only that current token, neither worker's log holds a
// secret or a token, and `posthorn connections rotate-key` re-seals everything under a new key
// that a worker holding only the new key can use (no second token request).
// Local targets are allowed through POSTHORN_TARGET_ALLOWLIST, as an operator would allow them.
import { randomBytes } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { secretKeyId } from '../shared/secret-box.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { startOAuthServer } from './helpers/oauth.ts';
import { killAll, type Proc, spawnPosthorn, testWorkerEnv } from './helpers/proc.ts';

const OLD_KEY = randomBytes(32).toString('base64');
const NEW_KEY = randomBytes(32).toString('base64');
const CLIENT_SECRET = `cs-${randomBytes(16).toString('hex')}`;

let h: Awaited<ReturnType<typeof startHarness>> | undefined;
let oauth: Awaited<ReturnType<typeof startOAuthServer>> | undefined;
afterAll(async () => {
  await killAll();
  await h?.close();
  await oauth?.close();
});

const workerEnv = (url: string, extra: Record<string, string>) =>
  testWorkerEnv(url, {
    POSTHORN_ALLOW_PRIVATE_TARGETS: 'false',
    POSTHORN_TARGET_ALLOWLIST: '127.0.0.1',
    POSTHORN_WORKER_CONCURRENCY: '64',
    // Everything a worker says, so a secret that reached any log call would show.
    POSTHORN_LOG_LEVEL: 'debug',
    ...extra,
  });

async function spawnWorker(url: string, extra: Record<string, string>): Promise<Proc> {
  const w = spawnPosthorn(['worker'], workerEnv(url, extra), { ipc: true });
  await w.ready;
  return w;
}

async function allSucceeded(ids: string[]) {
  await waitFor(
    async () => {
      const [r] = await h!.sql`select count(*)::int as n from tasks where id = any(${ids}::uuid[]) and status = 'succeeded'`;
      return r!.n === ids.length;
    },
    { timeoutMs: 60_000, intervalMs: 100, what: `${ids.length} tasks to succeed` },
  );
}

it('200 tasks across 2 workers make one token request; logs and tables hold no secret; rotate-key re-seals', async () => {
  h = await startHarness({ secretKey: OLD_KEY, allowPrivate: false, allowlist: ['127.0.0.1'] });
  oauth = await startOAuthServer({ clientId: 'fleet', clientSecret: CLIENT_SECRET });
  const c = await h.api('POST', '/api/v1/connections', {
    name: 'crm',
    type: 'oauth2_client_credentials',
    token_url: oauth.tokenUrl,
    client_id: 'fleet',
    client_secret: CLIENT_SECRET,
  });
  expect(c.status).toBe(201);

  // Both workers wait idle; the batch's NOTIFY wakes them together, and each claims up to 64
  // tasks that all want the token at the same moment.
  const workers = await Promise.all([
    spawnWorker(h.db.url, { POSTHORN_SECRET_KEY: OLD_KEY }),
    spawnWorker(h.db.url, { POSTHORN_SECRET_KEY: OLD_KEY }),
  ]);
  const r = await h.api('POST', '/api/v1/queue/batch', {
    tasks: Array.from({ length: 200 }, (_, i) => ({ url: `${oauth!.url}/api/${i}`, auth: { connection: 'crm' } })),
  });
  expect(r.status).toBe(202);
  const ids = r.body.tasks.map((t: { id: string }) => t.id);
  await allSucceeded(ids);

  expect(oauth.state.tokenRequests).toBe(1);
  expect(oauth.state.apiRejected).toBe(0);
  expect(oauth.state.accepted).toHaveLength(200);
  expect(new Set(oauth.state.accepted)).toEqual(new Set(oauth.tokens()));
  const [{ n: attemptsN }] = await h.sql`select count(*)::int as n from task_attempts where task_id = any(${ids}::uuid[])`;
  expect(attemptsN).toBe(200); // one attempt each: no 401, no retry

  const secrets = [CLIENT_SECRET, ...oauth.tokens()];
  const tables = JSON.stringify([await h.sql`select * from connections`, await h.sql`select * from connection_tokens`]);
  for (const s of secrets) expect(tables).not.toContain(s);
  expect(tables).toContain(`phs1.${secretKeyId(Buffer.from(OLD_KEY, 'base64'))}.`);

  await Promise.all(
    workers.map(async (w) => {
      w.proc.kill('SIGTERM');
      await w.exited;
    }),
  );
  const logs = workers.map((w) => w.output).join('\n');
  expect(logs).toMatch(/worker started/); // the log was captured at all
  for (const s of [...secrets, OLD_KEY]) expect(logs).not.toContain(s);

  // Rotation: the new key current, the old one previous; then a worker with only the new key.
  const rotate = spawnPosthorn(
    ['connections', 'rotate-key'],
    workerEnv(h.db.url, { POSTHORN_SECRET_KEY: NEW_KEY, POSTHORN_SECRET_KEY_PREVIOUS: OLD_KEY }),
  );
  expect((await rotate.exited).code, rotate.output).toBe(0);
  expect(JSON.parse(rotate.stdout)).toMatchObject({ key_id: secretKeyId(Buffer.from(NEW_KEY, 'base64')), connections: 1, tokens: 1 });
  for (const s of [...secrets, OLD_KEY, NEW_KEY]) expect(rotate.output).not.toContain(s);
  const rows = await h.sql`select c.secret, t.token from connections c join connection_tokens t on t.connection_id = c.id`;
  const newPrefix = `phs1.${secretKeyId(Buffer.from(NEW_KEY, 'base64'))}.`;
  expect(rows[0]!.secret.startsWith(newPrefix) && rows[0]!.token.startsWith(newPrefix)).toBe(true);

  await spawnWorker(h.db.url, { POSTHORN_SECRET_KEY: NEW_KEY });
  const more = await h.api('POST', '/api/v1/queue/batch', {
    tasks: Array.from({ length: 5 }, (_, i) => ({ url: `${oauth!.url}/api/after-${i}`, auth: { connection: 'crm' } })),
  });
  await allSucceeded(more.body.tasks.map((t: { id: string }) => t.id));
  expect(oauth.state.tokenRequests).toBe(1); // the cached token opened under the new key
});
