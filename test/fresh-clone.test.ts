// A new user's machine: the checkout in a mode-0700 folder (as root: the server's user cannot
// traverse it, like /root or `mktemp -d`), `posthorn start` and `npm start` there with the default
// data directory, `posthorn keys` without DATABASE_URL, SIGTERM to npm stopping every process,
// and the next start recovering from a killed one (docs/configuration.md, "Embedded PostgreSQL").
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheDirFor } from '../bin/build.mjs';
import { createSql } from '../shared/db.ts';
import { freePort, waitFor } from './helpers/net.ts';
import { baseEnv, pgrepF } from './helpers/proc.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const isRoot = process.getuid?.() === 0;
let parent: string; // mode 0700
let clone: string;
let env: Record<string, string>;
const procs: ChildProcess[] = [];

type Run = { proc: ChildProcess; readonly output: string; exited: Promise<{ code: number | null; signal: string | null }> };

function run(cmd: string, args: string[], extra: Record<string, string> = {}): Run {
  const proc = spawn(cmd, args, { cwd: clone, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let output = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    get output() {
      return output;
    },
    exited,
  };
}

const posthorn = (args: string[], extra: Record<string, string> = {}) => run(process.execPath, ['bin/posthorn.js', ...args], extra);

async function ready(r: Run): Promise<string> {
  const m = await waitFor(() => /^posthorn ready url=(\S+)$/m.exec(r.output), {
    timeoutMs: 90_000,
    intervalMs: 100,
    what: `ready:\n${r.output}`,
  });
  return m[1]!;
}

async function exitOf(r: Run, timeoutMs = 45_000) {
  return Promise.race([
    r.exited,
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no exit within ${timeoutMs} ms:\n${r.output}`)), timeoutMs)),
  ]);
}

/** The real directory of the cluster of the clone's default data dir. */
const clusterDir = () => realpathSync(path.join(clone, '.data', 'pg'));

/** Processes whose working directory is `dir`, from /proc. */
function workingIn(dir: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${d}/cwd`) === dir) out.push(Number(d));
    } catch {
      /* gone, or not ours to see */
    }
  }
  return out;
}

/** Processes working in the checkout (npm, the supervisor, gateway, workers). */
const nodeLeft = () => workingIn(clone);

/**
 * Every process of this checkout: those working in it, and its PostgreSQL. A SIGKILLed
 * postmaster's children (checkpointer, walwriter, ...) outlive it for a moment; their command
 * lines do not name the cluster, but they work in it. A start made while they still hold the old
 * shared memory is not the case under test, so wait for them too.
 */
const leftovers = () => {
  if (!existsSync(path.join(clone, '.data', 'pg'))) return nodeLeft();
  const cluster = clusterDir();
  return [...new Set([...nodeLeft(), ...pgrepF(cluster), ...workingIn(cluster)])];
};

async function noneLeft() {
  await waitFor(() => leftovers().length === 0, { timeoutMs: 15_000, what: `no processes left (${leftovers().join(', ')})` });
}

const postmasterPid = () => Number(readFileSync(path.join(clusterDir(), 'postmaster.pid'), 'utf8').split('\n')[0]);

beforeAll(async () => {
  parent = mkdtempSync(path.join(tmpdir(), 'posthorn-clone-'));
  chmodSync(parent, 0o700);
  clone = path.join(parent, 'posthorn');
  mkdirSync(clone);
  // The working tree as it is (tracked and new files), as a clone would have it.
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: REPO, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean);
  for (const f of files) if (existsSync(path.join(REPO, f))) cpSync(path.join(REPO, f), path.join(clone, f), { recursive: true });
  // node_modules inside the 0700 folder, as `npm ci` would put it (hard links: instant, no space).
  try {
    execFileSync('cp', ['-al', path.join(REPO, 'node_modules'), path.join(clone, 'node_modules')]);
  } catch {
    execFileSync('cp', ['-a', path.join(REPO, 'node_modules'), path.join(clone, 'node_modules')]);
  }
  env = {
    ...baseEnv('DATABASE_URL', 'POSTHORN_DATA_DIR', 'POSTHORN_BOOTSTRAP_KEY', 'PORT', 'HOST'),
    PORT: String(await freePort()),
    POSTHORN_PG_PORT: String(await freePort()),
    POSTHORN_METRICS_PORT: '0',
    POSTHORN_WORKERS: '1',
    POSTHORN_SHUTDOWN_GRACE_MS: '2000',
  };
}, 120_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  const cluster = existsSync(path.join(clone, '.data', 'pg')) ? clusterDir() : null;
  for (const pid of leftovers())
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  if (cluster && !cluster.startsWith(parent)) rmSync(cluster, { recursive: true, force: true });
  rmSync(parent, { recursive: true, force: true });
}, 60_000);

describe('a checkout in a mode-0700 folder', () => {
  it('starts with the default data dir, serves, makes keys without DATABASE_URL and stops on SIGTERM', async () => {
    const p = posthorn(['start']);
    const url = await ready(p);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const data = path.join(clone, '.data');
    expect(statSync(path.join(data, 'pg-password')).mode & 0o777).toBe(0o600);
    const password = readFileSync(path.join(data, 'pg-password'), 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(password).not.toBe('posthorn');
    // As root, neither the binaries nor the cluster are inside the folder the server cannot reach.
    if (isRoot) {
      expect(clusterDir().startsWith(parent)).toBe(false);
      const exe = realpathSync(`/proc/${postmasterPid()}/exe`);
      expect(exe.startsWith(parent), exe).toBe(false);
    }

    // keys create against the running embedded database, found through the data dir.
    const created = posthorn(['keys', 'create', '--team', 'default', '--role', 'write']);
    expect((await exitOf(created)).code, created.output).toBe(0);
    const key = JSON.parse(created.output.trim().split('\n').pop()!).key as string;
    const list = await fetch(`${url}/api/v1/tasks`, { headers: { authorization: `Bearer ${key}` } });
    expect(list.status).toBe(200);

    p.proc.kill('SIGTERM');
    expect(await exitOf(p), p.output).toEqual({ code: 0, signal: null });
    await noneLeft();

    // keys list with nothing running: the database is started for the command and stopped after.
    const listed = posthorn(['keys', 'list']);
    expect((await exitOf(listed)).code, listed.output).toBe(0);
    expect(listed.output).toContain('"role":"write"');
    await noneLeft();
  }, 180_000);

  it('SIGTERM to `npm start` stops the supervisor, gateway, workers and PostgreSQL', async () => {
    const npm = run('npm', ['start']);
    const url = await ready(npm);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(leftovers().length).toBeGreaterThanOrEqual(3); // supervisor, gateway, worker, postgres
    npm.proc.kill('SIGTERM');
    // npm passes SIGTERM on, waits for the supervisor's graceful stop and exits with its code.
    expect(await exitOf(npm), npm.output).toEqual({ code: 0, signal: null });
    expect(npm.output).toMatch(/"msg":"stopped"/);
    await noneLeft();
  }, 180_000);

  it('recovers from a killed start: an orphaned PostgreSQL, then a stale postmaster.pid', async () => {
    // SIGKILL the supervisor alone: its children stop when their IPC channel closes; the
    // detached PostgreSQL stays, holding postmaster.pid.
    const p = posthorn(['start']);
    await ready(p);
    const pg = postmasterPid();
    p.proc.kill('SIGKILL');
    await waitFor(() => nodeLeft().length === 0, { timeoutMs: 20_000, what: 'the gateway and worker to stop' });
    expect(pgrepF(clusterDir())).toContain(pg);

    const again = posthorn(['start']);
    const url = await ready(again);
    expect(again.output).toMatch(/stopped a PostgreSQL that an earlier start had left running/);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    // SIGKILL everything, PostgreSQL included: its postmaster.pid stays behind. Point it at a
    // live process that is not PostgreSQL (as after a reboot that reused the pid).
    for (const pid of leftovers()) process.kill(pid, 'SIGKILL');
    await noneLeft();
    const lock = path.join(clusterDir(), 'postmaster.pid');
    const lines = readFileSync(lock, 'utf8').split('\n');
    lines[0] = String(process.pid);
    writeFileSync(lock, lines.join('\n'));

    const third = posthorn(['start']);
    const url3 = await ready(third);
    expect((await fetch(`${url3}/readyz`)).status).toBe(200);
    third.proc.kill('SIGTERM');
    expect(await exitOf(third), third.output).toEqual({ code: 0, signal: null });
    await noneLeft();
  }, 240_000);

  it('opens a cluster made with the old constant password and moves it to a generated one', async () => {
    const p = posthorn(['start']);
    await ready(p);
    const pwFile = path.join(clone, '.data', 'pg-password');
    const old = createSql(`postgres://postgres:${readFileSync(pwFile, 'utf8').trim()}@127.0.0.1:${env.POSTHORN_PG_PORT}/postgres`, {
      max: 1,
    });
    await old`alter role postgres password 'posthorn'`;
    await old.end();
    p.proc.kill('SIGTERM');
    expect((await exitOf(p)).code).toBe(0);
    rmSync(pwFile); // as a data dir from before pg-password existed

    const listed = posthorn(['keys', 'list']);
    expect((await exitOf(listed)).code, listed.output).toBe(0);
    const fresh = readFileSync(pwFile, 'utf8').trim();
    expect(fresh).not.toBe('posthorn');
    const again = posthorn(['start']);
    await ready(again);
    const sql = createSql(`postgres://postgres:${fresh}@127.0.0.1:${env.POSTHORN_PG_PORT}/posthorn`, { max: 1 });
    expect((await sql`select 1 as one`)[0]!.one).toBe(1);
    await sql.end();
    again.proc.kill('SIGTERM');
    expect((await exitOf(again)).code).toBe(0);
    await noneLeft();
  }, 180_000);

  it('says in one line why PostgreSQL cannot start (its port taken) and exits non-zero', async () => {
    const blocker = createServer();
    await new Promise<void>((ok) => blocker.listen(Number(env.POSTHORN_PG_PORT), '127.0.0.1', ok));
    try {
      const p = posthorn(['start']);
      const exit = await exitOf(p);
      expect(exit.code, p.output).toBe(1);
      const lines = p.output.trim().split('\n');
      expect(lines, p.output).toHaveLength(1);
      expect(lines[0]).toMatch(/^posthorn: PostgreSQL on port \d+ stopped before it was ready .*(Address already in use|could not)/);
      await noneLeft();
    } finally {
      blocker.close();
    }
  }, 120_000);

  it('runs from a build made on first start and made again when a source changes (bin/build.mjs)', async () => {
    const manifest = () => JSON.parse(readFileSync(path.join(cacheDirFor(`${clone}${path.sep}`), 'manifest.json'), 'utf8'));
    const help = async () => {
      const r = posthorn(['help']);
      expect((await exitOf(r)).code, r.output).toBe(0);
      return r.output;
    };
    expect(await help()).toMatch(/^usage: posthorn <command>$/m);
    const first = manifest();
    expect(Object.keys(first.inputs)).toEqual(expect.arrayContaining(['bin/cli.ts', 'worker/main.ts', 'gateway/app.ts']));
    await help();
    expect(manifest().dir).toBe(first.dir); // unchanged sources: the same build

    const cli = path.join(clone, 'bin', 'cli.ts');
    writeFileSync(cli, readFileSync(cli, 'utf8').replace('usage: posthorn <command>', 'usage: posthorn <command> (edited)'));
    expect(await help()).toMatch(/^usage: posthorn <command> \(edited\)$/m);
    expect(manifest().dir).not.toBe(first.dir);
  }, 60_000);
});
