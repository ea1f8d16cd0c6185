// Teams and keys over two real `posthorn gateway` processes on one database (docs/api.md §2): the
// operator API, keys shown once and stored as SHA-256 only, roles, revocation reaching the
// other gateway within 5 s, the `posthorn keys` CLI, two teams that cannot see, cancel or
// replay each other's tasks (404, never 403), and no key, token or secret in any log line.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { type Gateway, spawnGateway } from './helpers/gateway.ts';
import { waitFor } from './helpers/net.ts';
import { killAll, spawnPosthorn } from './helpers/proc.ts';

const OPERATOR = `op-${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 32)}`;
const KEY_RE = /^ph_[A-Za-z0-9]{32,}$/;
const target = 'http://127.0.0.1:9/never-called'; // no worker runs in this file

let db: TestDb;
let gwA: Gateway; // with the operator API
let gwB: Gateway; // without: its /admin/v1 does not exist
const secrets = new Set<string>(); // everything that must never reach a log line
const teams: Record<'a' | 'b', { slug: string; admin: string }> = {} as any;

const op = (method: string, path: string, body?: unknown, token: string | null = OPERATOR) =>
  gwA.request(method, `/admin/v1${path}`, { key: token, body });

beforeAll(async () => {
  db = await createTestDb();
  [gwA, gwB] = await Promise.all([
    spawnGateway(db.url, { POSTHORN_OPERATOR_TOKEN: OPERATOR, POSTHORN_LOG_LEVEL: 'debug' }),
    spawnGateway(db.url, { POSTHORN_LOG_LEVEL: 'debug' }),
  ]);
  secrets.add(OPERATOR);
  for (const t of ['a', 'b'] as const) {
    const r = await op('POST', '/teams', { slug: `team-${t}`, name: `Team ${t.toUpperCase()}` });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    teams[t] = { slug: `team-${t}`, admin: r.body.admin_key };
    secrets.add(r.body.admin_key);
  }
});

afterAll(async () => {
  await Promise.all([gwA?.stop(), gwB?.stop()]);
  await killAll();
  await db?.drop();
});

describe('operator API', () => {
  it('creates a team with an admin key shown once; the key works at once', async () => {
    const r = await op('POST', '/teams', { slug: 'acme-7', name: 'Acme', rate_limit: '100/1s' });
    expect(r.status).toBe(201);
    expect(r.body.team).toEqual({ slug: 'acme-7', name: 'Acme', rate_limit: '100/1s', created_at: expect.any(String) });
    expect(r.body.admin_key).toMatch(KEY_RE);
    secrets.add(r.body.admin_key);
    const keys = await gwB.request('GET', '/api/v1/keys', { key: r.body.admin_key });
    expect(keys.status).toBe(200);
    expect(keys.body.data).toEqual([expect.objectContaining({ role: 'admin', revoked_at: null })]);
    const list = await op('GET', '/teams');
    expect(list.body.data.map((t: any) => t.slug)).toEqual(expect.arrayContaining(['team-a', 'team-b', 'acme-7']));
    expect(JSON.stringify(list.body)).not.toContain('ph_');
  });

  it('wrong or missing operator token → 401; without POSTHORN_OPERATOR_TOKEN the API does not exist (404)', async () => {
    expect((await op('GET', '/teams', undefined, null)).status).toBe(401);
    const wrong = await op('GET', '/teams', undefined, `${OPERATOR}x`);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('content-type')).toContain('application/problem+json');
    expect(wrong.body.code).toBe('unauthorized');
    // An API key, even an admin one, is not the operator token.
    expect((await op('GET', '/teams', undefined, teams.a.admin)).status).toBe(401);
    const none = await gwB.request('GET', '/admin/v1/teams', { key: OPERATOR });
    expect(none.status).toBe(404);
    expect(none.body.code).toBe('not_found');
  });

  it('refuses bad team input with 400/409/415 and stores nothing', async () => {
    const count = async () => Number((await db.sql`select count(*)::int as n from teams`)[0]!.n);
    const before = await count();
    const bad: [unknown, string][] = [
      [{ slug: 'Bad Slug', name: 'x' }, 'slug'],
      [{ slug: '-x', name: 'x' }, 'slug'],
      [{ slug: 'a'.repeat(64), name: 'x' }, 'slug'],
      [{ slug: 'ok-slug' }, 'name'],
      [{ slug: 'ok-slug', name: 'x', colour: 'red' }, 'colour'],
      [{ slug: 'ok-slug', name: 'x', rate_limit: 'fast' }, 'rate_limit'],
      [{ slug: 'ok-slug', name: 'x', rate_limit: '0/1s' }, 'rate_limit'],
      [{ slug: 'ok\u0000', name: 'x' }, 'slug'],
    ];
    for (const [body, path] of bad) {
      const r = await op('POST', '/teams', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors.map((e: any) => e.path)).toContain(path);
    }
    const dup = await op('POST', '/teams', { slug: 'team-a', name: 'again' });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('conflict');
    expect(
      (await gwA.request('POST', '/admin/v1/teams', { key: OPERATOR, raw: 'slug=x', headers: { 'content-type': 'text/plain' } })).status,
    ).toBe(415);
    expect((await gwA.request('POST', '/admin/v1/teams', { key: OPERATOR, raw: '{"slug":' })).status).toBe(400);
    expect(await count()).toBe(before);
  });

  it('PATCH sets and clears a team rate limit; unknown teams are 404, bad values 400', async () => {
    const set = await op('PATCH', '/teams/team-b', { rate_limit: '1000/1m' });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ slug: 'team-b', rate_limit: '1000/1m' });
    expect((await op('PATCH', '/teams/team-b', { rate_limit: null })).body.rate_limit).toBeNull();
    expect((await op('PATCH', '/teams/no-such-team', { rate_limit: '5/1s' })).status).toBe(404);
    expect((await op('PATCH', '/teams/%00', { rate_limit: '5/1s' })).status).toBe(404);
    for (const body of [{}, { rate_limit: '5 per second' }, { rate_limit: 5 }, { slug: 'renamed' }]) {
      const r = await op('PATCH', '/teams/team-b', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('validation_failed');
    }
    expect((await op('GET', '/teams/team-b')).body.rate_limit).toBeNull();
  });
});

describe('API keys', () => {
  it('a new key is shown once, listed without its secret, and stored only as its SHA-256', async () => {
    const r = await gwA.request('POST', '/api/v1/keys', { key: teams.a.admin, body: { name: 'ci', role: 'write' } });
    expect(r.status).toBe(201);
    expect(Object.keys(r.body).sort()).toEqual(['created_at', 'id', 'key', 'name', 'role']);
    expect(r.body).toMatchObject({ name: 'ci', role: 'write' });
    expect(r.body.key).toMatch(KEY_RE);
    secrets.add(r.body.key);

    const list = await gwB.request('GET', '/api/v1/keys', { key: teams.a.admin });
    const listed = list.body.data.find((k: any) => k.id === r.body.id);
    expect(listed).toEqual({ id: r.body.id, name: 'ci', role: 'write', created_at: r.body.created_at, revoked_at: null });
    expect(JSON.stringify(list.body)).not.toContain('ph_');

    const [row] = await db.sql`select * from api_keys where id = ${r.body.id}`;
    expect(Buffer.from(row!.key_hash).equals(createHash('sha256').update(r.body.key).digest())).toBe(true);
    const dump = JSON.stringify(await db.sql`select * from api_keys`);
    expect(dump).not.toContain(r.body.key);
    expect(dump).not.toContain(r.body.key.slice(3));
  });

  it('roles: read only reads, write enqueues but manages no keys, admin does everything', async () => {
    const mk = async (role: string) => (await gwA.request('POST', '/api/v1/keys', { key: teams.a.admin, body: { role } })).body;
    const read = await mk('read');
    const write = await mk('write');
    expect(read.name).toBe('read key');
    secrets.add(read.key).add(write.key);
    const task = { url: target, delay: '1h' };
    expect((await gwA.request('GET', '/api/v1/tasks', { key: read.key })).status).toBe(200);
    for (const [method, path, body] of [
      ['POST', '/api/v1/queue', task],
      ['POST', '/api/v1/keys', { role: 'read' }],
      ['GET', '/api/v1/keys', undefined],
      ['GET', '/api/v1/signing-keys', undefined],
    ] as const) {
      const r = await gwA.request(method, path, { key: read.key, body });
      expect(r.status, `read ${method} ${path}`).toBe(403);
      expect(r.body.code).toBe('forbidden');
    }
    expect((await gwA.request('POST', '/api/v1/queue', { key: write.key, body: task })).status).toBe(202);
    for (const [method, path, body] of [
      ['POST', '/api/v1/keys', { role: 'admin' }],
      ['GET', '/api/v1/keys', undefined],
      ['DELETE', `/api/v1/keys/${read.id}`, undefined],
      ['GET', '/api/v1/signing-keys', undefined],
      ['POST', '/api/v1/signing-keys/rotate', undefined],
      ['DELETE', '/api/v1/signing-keys/previous', undefined],
    ] as const) {
      const r = await gwA.request(method, path, { key: write.key, body });
      expect(r.status, `write ${method} ${path}`).toBe(403);
    }
    // A write key could not escalate itself: still exactly the keys made above.
    expect((await db.sql`select count(*)::int as n from api_keys where role = 'admin'`)[0]!.n).toBe(3);
  });

  it('refuses bad key requests with 4xx and creates nothing', async () => {
    const count = async () => Number((await db.sql`select count(*)::int as n from api_keys`)[0]!.n);
    const before = await count();
    for (const body of [
      { role: 'owner' },
      { name: 'x' },
      { role: 'read', colour: 1 },
      { role: 'read', name: '' },
      { role: 'read', name: 'a\u0000b' },
      [],
    ]) {
      const r = await gwA.request('POST', '/api/v1/keys', { key: teams.a.admin, body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('validation_failed');
    }
    expect(
      (await gwA.request('POST', '/api/v1/keys', { key: teams.a.admin, raw: 'role=read', headers: { 'content-type': 'text/plain' } }))
        .status,
    ).toBe(415);
    expect((await gwA.request('DELETE', '/api/v1/keys/not-a-uuid', { key: teams.a.admin })).status).toBe(404);
    expect((await gwA.request('DELETE', '/api/v1/keys/0190a1b2-0000-7000-8000-000000000000', { key: teams.a.admin })).status).toBe(404);
    expect(await count()).toBe(before);
  });

  it('a revoked key is refused on every gateway within 5 s', async () => {
    const k = (await gwA.request('POST', '/api/v1/keys', { key: teams.a.admin, body: { name: 'doomed', role: 'read' } })).body;
    secrets.add(k.key);
    // Both gateways have the key in their cache before it is revoked.
    expect((await gwA.request('GET', '/api/v1/tasks', { key: k.key })).status).toBe(200);
    expect((await gwB.request('GET', '/api/v1/tasks', { key: k.key })).status).toBe(200);
    const del = await gwA.request('DELETE', `/api/v1/keys/${k.id}`, { key: teams.a.admin });
    expect(del.status).toBe(204);
    const t0 = Date.now();
    await waitFor(async () => (await gwB.request('GET', '/api/v1/tasks', { key: k.key })).status === 401, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'gateway B to refuse the revoked key',
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    await waitFor(async () => (await gwA.request('GET', '/api/v1/tasks', { key: k.key })).status === 401, {
      timeoutMs: 5000,
      intervalMs: 100,
    });
    const refused = await gwB.request('GET', '/api/v1/tasks', { key: k.key });
    expect(refused.body.code).toBe('unauthorized');
    // Revoking again: it is gone, 404 like any DELETE of something gone; the list shows when it was revoked.
    const again = await gwB.request('DELETE', `/api/v1/keys/${k.id}`, { key: teams.a.admin });
    expect(again.status).toBe(404);
    expect(again.body.code).toBe('not_found');
    const listed = (await gwA.request('GET', '/api/v1/keys', { key: teams.a.admin })).body.data.find((x: any) => x.id === k.id);
    expect(listed.revoked_at).not.toBeNull();
  });

  it('posthorn keys create / list / revoke from the shell', async () => {
    const env = { ...process.env, DATABASE_URL: db.url, POSTHORN_LOG_LEVEL: 'warn' } as Record<string, string>;
    const run = async (...args: string[]) => {
      const p = spawnPosthorn(['keys', ...args], env);
      const { code } = await p.exited;
      return { code, stdout: p.stdout, stderr: p.stderr };
    };
    const created = await run('create', '--team', 'team-b', '--role', 'write', '--name', 'deploy');
    expect(created.code, created.stderr).toBe(0);
    const k = JSON.parse(created.stdout);
    expect(k).toMatchObject({ name: 'deploy', role: 'write', team: 'team-b' });
    expect(k.key).toMatch(KEY_RE);
    secrets.add(k.key);
    expect((await gwB.request('POST', '/api/v1/queue', { key: k.key, body: { url: target, delay: '1h' } })).status).toBe(202);

    const listed = await run('list', '--team', 'team-b');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(k.id);
    expect(listed.stdout).not.toContain(k.key);

    expect((await run('revoke', k.id)).code).toBe(0);
    await waitFor(async () => (await gwB.request('GET', '/api/v1/tasks', { key: k.key })).status === 401, {
      timeoutMs: 5000,
      intervalMs: 100,
      what: 'the CLI-revoked key to be refused',
    });
    expect((await run('create', '--team', 'no-such-team', '--role', 'read')).code).not.toBe(0);
    expect((await run('create', '--team', 'team-b', '--role', 'root')).code).not.toBe(0);
  });
});

describe('two teams', () => {
  it("another team's tasks answer 404 to read, list, attempts, cancel and replay, and stay as they were", async () => {
    const a = teams.a.admin;
    const b = teams.b.admin;
    const waiting = (await gwA.request('POST', '/api/v1/queue', { key: a, body: { url: target, delay: '1h', label: 'a-only' } })).body.id;
    const canceled = (await gwA.request('POST', '/api/v1/queue', { key: a, body: { url: target, delay: '1h', label: 'a-only' } })).body.id;
    expect((await gwA.request('DELETE', `/api/v1/tasks/${canceled}`, { key: a })).status).toBe(200);

    for (const gw of [gwA, gwB]) {
      for (const id of [waiting, canceled]) {
        for (const [method, path] of [
          ['GET', `/api/v1/tasks/${id}`],
          ['GET', `/api/v1/tasks/${id}/attempts`],
          ['DELETE', `/api/v1/tasks/${id}`],
          ['POST', `/api/v1/tasks/${id}/replay`],
        ] as const) {
          const r = await gw.request(method, path, { key: b });
          expect(r.status, `${method} ${path}`).toBe(404);
          expect(r.body.code).toBe('not_found');
          expect(JSON.stringify(r.body)).not.toContain('a-only');
        }
      }
      const list = await gw.request('GET', '/api/v1/tasks?limit=200', { key: b });
      expect(list.status).toBe(200);
      expect(list.body.data.map((t: any) => t.id)).not.toContain(waiting);
      expect((await gw.request('GET', '/api/v1/tasks?label=a-only', { key: b })).body.data).toEqual([]);
    }
    // Team B's attempts changed nothing.
    expect((await gwA.request('GET', `/api/v1/tasks/${waiting}`, { key: a })).body.status).toBe('scheduled');
    expect((await gwA.request('GET', `/api/v1/tasks/${canceled}`, { key: a })).body.status).toBe('canceled');
    expect((await gwA.request('GET', '/api/v1/tasks?label=a-only', { key: a })).body.data).toHaveLength(2);
  });

  it("another team's keys are neither listed nor revocable (404), and signing secrets differ", async () => {
    const aKeys = (await gwA.request('GET', '/api/v1/keys', { key: teams.a.admin })).body.data;
    const bKeys = (await gwA.request('GET', '/api/v1/keys', { key: teams.b.admin })).body.data;
    const aIds = aKeys.map((k: any) => k.id);
    expect(bKeys.map((k: any) => k.id).some((id: string) => aIds.includes(id))).toBe(false);
    const active = aKeys.find((k: any) => k.revoked_at === null);
    const r = await gwB.request('DELETE', `/api/v1/keys/${active.id}`, { key: teams.b.admin });
    expect(r.status).toBe(404);
    expect((await db.sql`select revoked_at from api_keys where id = ${active.id}`)[0]!.revoked_at).toBeNull();

    const sa = (await gwA.request('GET', '/api/v1/signing-keys', { key: teams.a.admin })).body;
    const sb = (await gwB.request('GET', '/api/v1/signing-keys', { key: teams.b.admin })).body;
    expect(sa.current).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(sa.current).not.toBe(sb.current);
    secrets.add(sa.current).add(sb.current);
  });
});

describe('logs', () => {
  it('no API key, operator token or signing secret appears in either gateway log', async () => {
    // Failed attempts with made-up keys are logged by nobody either.
    const madeUp = `ph_${'Z'.repeat(40)}`;
    secrets.add(madeUp);
    expect((await gwA.request('GET', '/api/v1/tasks', { key: madeUp })).status).toBe(401);
    const output = gwA.proc.output + gwB.proc.output;
    expect(output).toContain('gateway listening'); // the logs are there to look at
    for (const s of secrets) {
      expect(output.includes(s), `a secret starting ${s.slice(0, 6)} is in the log`).toBe(false);
      if (s.startsWith('ph_')) expect(output.includes(s.slice(3))).toBe(false);
    }
  });
});
