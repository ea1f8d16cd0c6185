// posthorn start: the all-in-one. Embedded PostgreSQL unless DATABASE_URL is set, migrations,
// the bootstrap key, then one gateway and POSTHORN_WORKERS workers as child processes under a
// supervisor that restarts a dead child with backoff (1 s doubling to 30 s; reset after a
// minute up) and stops everything gracefully on SIGTERM/SIGINT. The embedded PostgreSQL is
// watched too, and started again when it dies (shared/embedded-supervisor.ts).
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../shared/config.ts';
import { createSql } from '../shared/db.ts';
import { type EmbeddedDb, startEmbeddedPostgres } from '../shared/embedded.ts';
import { superviseEmbedded } from '../shared/embedded-supervisor.ts';
import { bootstrap } from '../shared/keys.ts';
import { createLogger } from '../shared/logger.ts';
import { migrate } from '../shared/migrate.ts';
import { GATEWAY_NODE_FLAGS } from '../shared/node-flags.ts';

const BIN = fileURLToPath(new URL('./posthorn.js', import.meta.url));

/**
 * POSTHORN_SECRET_KEY for the children when none is set (docs/connections.md): the one in
 * <data dir>/secret-key, made (32 random bytes, base64, mode 0600) on first start. Losing the
 * file loses the connections' secrets, like losing the data directory.
 */
function dataDirSecretKey(dataDir: string): string {
  const file = path.resolve(dataDir, 'secret-key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32).toString('base64');
  writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
  return key;
}

type Child = {
  name: string;
  args: string[];
  execArgv: readonly string[];
  env: Record<string, string>;
  proc?: ChildProcess;
  restarts: number;
  startedAt: number;
};

export async function runStart(config: Config) {
  const logger = createLogger('posthorn', config.logLevel);
  // A signal during start-up (PostgreSQL starting, migrations) waits for it to finish, then
  // stops what was started: the default action would kill us and leave PostgreSQL running.
  let stopRequested: string | null = null;
  let stop: ((signal: string) => Promise<void>) | null = null;
  const onSignal = (signal: string) => {
    if (stop) void stop(signal);
    else stopRequested ??= signal;
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  // Under `npm start`, npm is our parent (the script execs node, so npm's SIGTERM reaches us).
  // If npm itself goes away without passing a signal on (SIGKILL), stop too rather than serve on
  // as an orphan. Only then: a `posthorn start &` whose shell exits is meant to keep running.
  if (config.launchedByNpm) {
    const parent = process.ppid;
    setInterval(() => process.ppid !== parent && onSignal('parent exited'), 500).unref();
  }

  let embedded: EmbeddedDb | null = null;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort });
    databaseUrl = embedded.url;
    if (embedded.stoppedOrphan) logger.warn({ pid: embedded.stoppedOrphan }, 'stopped a PostgreSQL that an earlier start had left running');
    logger.info({ port: config.embeddedPgPort, cluster_dir: embedded.clusterDir }, 'embedded PostgreSQL started');
  }

  const sql = createSql(databaseUrl, { max: 2 });
  let key: string | null;
  try {
    const { applied } = await migrate(sql);
    if (applied.length) logger.info({ applied }, 'migrations applied');
    key = await bootstrap(sql, config.bootstrapKey);
  } catch (err) {
    // Leave no orphaned PostgreSQL behind when start-up fails.
    await embedded?.stop().catch(() => {});
    throw err;
  } finally {
    await sql.end();
  }
  if (key && !config.bootstrapKey) {
    mkdirSync(config.dataDir, { recursive: true });
    const keyFile = path.resolve(config.dataDir, 'bootstrap-key');
    writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
    // Printed to the terminal once, on first start; never through the logger.
    process.stdout.write(`posthorn bootstrap admin key (team "default"; shown once, also in ${keyFile}): ${key}\n`);
  }

  // From here on a dead embedded server is started again; the children reconnect by themselves.
  const pg = embedded
    ? superviseEmbedded(embedded, { start: () => startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort }), logger })
    : null;

  const env = { ...process.env, DATABASE_URL: databaseUrl } as Record<string, string>;
  if (!config.secretKey) env.POSTHORN_SECRET_KEY = dataDirSecretKey(config.dataDir);
  const children: Child[] = [
    { name: 'gateway', args: ['gateway'], execArgv: GATEWAY_NODE_FLAGS, env, restarts: 0, startedAt: 0 },
    ...Array.from({ length: config.workers }, (_, i) => ({
      name: `worker-${i + 1}`,
      args: ['worker'],
      execArgv: [],
      // Worker i listens on the base port + i; base 0 means any free port for each.
      env: { ...env, POSTHORN_METRICS_PORT: String(config.metricsPort === 0 ? 0 : config.metricsPort + i) },
      restarts: 0,
      startedAt: 0,
    })),
  ];
  let stopping = false;
  let announced = false;

  function spawnChild(c: Child) {
    c.startedAt = Date.now();
    const proc = fork(BIN, c.args, {
      execArgv: [...process.execArgv, ...c.execArgv],
      env: c.env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    c.proc = proc;
    proc.on('message', (m: { type?: string; url?: string } | null) => {
      if (m?.type === 'ready' && c.name === 'gateway' && !announced) {
        announced = true;
        process.stdout.write(`posthorn ready url=${m.url}\n`);
      }
    });
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      if (Date.now() - c.startedAt > 60_000) c.restarts = 0;
      const delay = Math.min(30_000, 1000 * 2 ** c.restarts);
      c.restarts++;
      logger.error({ child: c.name, pid: proc.pid, code, signal, restart_in_ms: delay }, 'child process died; restarting');
      setTimeout(() => !stopping && spawnChild(c), delay);
    });
  }
  children.forEach(spawnChild);

  stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const exits = children.map(
      (c) =>
        new Promise<void>((resolve) => {
          const p = c.proc;
          if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGTERM');
          // A child that outlives the grace period (plus room to flush) is killed.
          setTimeout(() => p.kill('SIGKILL'), config.shutdownGraceMs + 5000).unref();
        }),
    );
    await Promise.all(exits);
    await pg?.stop();
    logger.info('stopped');
    process.exit(0);
  };
  if (stopRequested) await stop(stopRequested);
}
