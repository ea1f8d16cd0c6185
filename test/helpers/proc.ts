// Real `posthorn` processes for multi-process tests: spawned with node, their output kept for
// assertions and for the failure message, and every one of them killed when the file ends.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { waitFor } from './net.ts';

export const POSTHORN_BIN = fileURLToPath(new URL('../../bin/posthorn.js', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type Proc = {
  proc: ChildProcess;
  pid: number;
  /** stdout and stderr as received so far. */
  readonly stdout: string;
  readonly stderr: string;
  readonly output: string;
  /** Resolves with the first match of `re` in the output (stdout and stderr). */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the IPC 'ready' message (only with ipc: true). */
  ready: Promise<any>;
};

const live = new Set<ChildProcess>();

/** Environment of the test process without the variables a test wants to decide itself. */
export function baseEnv(...drop: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !drop.includes(k)) env[k] = v;
  return env;
}

/** `detached`: in a process group of its own, so a test can signal the whole group as a terminal's Ctrl-C does. */
/**
 * The environment of a test's worker process: its database, a 2 s lease, a 100 ms poll, local
 * targets allowed (sinks live on 127.0.0.1), any free metrics port, warnings only; `extra` wins.
 */
export function testWorkerEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...baseEnv(),
    DATABASE_URL: databaseUrl,
    POSTHORN_LEASE_MS: '2000',
    POSTHORN_POLL_INTERVAL_MS: '100',
    POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
    POSTHORN_LOG_LEVEL: 'warn',
    POSTHORN_METRICS_PORT: '0',
    ...extra,
  };
}

export function spawnPosthorn(args: string[], env: Record<string, string>, opts: { ipc?: boolean; detached?: boolean } = {}): Proc {
  const proc = spawn(process.execPath, [POSTHORN_BIN, ...args], {
    cwd: REPO_ROOT,
    env,
    detached: opts.detached ?? false,
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let stdout = '';
  let stderr = '';
  let output = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    output += d;
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    output += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    }),
  );
  const ready = new Promise<any>((resolve, reject) => {
    proc.on('message', (m: any) => m?.type === 'ready' && resolve(m));
    void exited.then((e) => reject(new Error(`posthorn ${args.join(' ')} exited before it was ready (${JSON.stringify(e)}):\n${output}`)));
  });
  ready.catch(() => {}); // only awaited by tests that asked for ipc
  return {
    proc,
    pid: proc.pid!,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get output() {
      return output;
    },
    waitForOutput: (re, timeoutMs = 30_000) =>
      waitFor(() => output.match(re), { timeoutMs, intervalMs: 50, what: `${re} in the output of posthorn ${args.join(' ')}:\n${output}` }),
    exited,
    ready,
  };
}

/** SIGKILLs every process spawned by this file that is still running (afterAll). */
export async function killAll() {
  const procs = [...live];
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        }),
    ),
  );
}

/** Direct children of a process, from /proc (Linux). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      out.push(...readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      /* thread ended */
    }
  }
  return out;
}

/** The command line of a process ('' when it is gone). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Processes whose command line contains `needle` (like `pgrep -f`), excluding this one. */
export function pgrepF(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    if (cmdline(Number(d)).includes(needle)) out.push(Number(d));
  }
  return out;
}

/** Sends `signal` to each pid; one that is already gone is skipped. */
export function signalEach(pids: number[], signal: NodeJS.Signals) {
  for (const pid of pids)
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
}

/** SIGTERM to a process that still runs, then up to `ms` for it to exit (killAll() is for what does not). */
export async function stopGracefully(p: Proc | null, ms = 20_000) {
  if (!p || p.proc.exitCode !== null) return;
  p.proc.kill('SIGTERM');
  await Promise.race([p.exited, new Promise((r) => setTimeout(r, ms))]);
}

/** SIGKILLs whatever still runs from a data directory (a PostgreSQL cluster in it), then removes it (afterAll). */
export function removeDataDir(dir: string) {
  signalEach(pgrepF(dir), 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
