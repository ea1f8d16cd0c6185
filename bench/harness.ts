// Plumbing for bench/bench.ts: free ports, the local sink, child processes (the real
// `posthorn gateway` / `posthorn worker`), closed- and open-loop drivers, /proc readings.
// Everything listens on and talks to 127.0.0.1 only; every wait has a deadline.
import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((ok, fail) => srv.once('error', fail).listen(0, '127.0.0.1', ok));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((ok) => srv.close(() => ok()));
  return port;
}

/**
 * The delivery target: answers 200 at once and keeps the first receive time (performance.now()
 * in this process) per x-posthorn-task-id. Requests without that header (the raw undici
 * baseline) are only counted.
 */
export type Sink = {
  url: string;
  receipts: Map<string, number>;
  readonly duplicates: number;
  readonly anonymous: number;
  close(): Promise<void>;
};

export async function startSink(): Promise<Sink> {
  const receipts = new Map<string, number>();
  let duplicates = 0;
  let anonymous = 0;
  const server: Server = createServer((req, res) => {
    const at = performance.now();
    const id = req.headers['x-posthorn-task-id'];
    if (typeof id === 'string') {
      if (receipts.has(id)) duplicates++;
      else receipts.set(id, at);
    } else anonymous++;
    req.resume(); // discard the body; the answer does not wait for it
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    receipts,
    get duplicates() {
      return duplicates;
    },
    get anonymous() {
      return anonymous;
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** A forked child (ready within 120 s: a loaded 2-core machine compiles slowly) whose stdout/stderr are kept (last lines) and printed only at pino level ≥ error. */
export type Child = {
  name: string;
  proc: ChildProcess;
  tail: string[];
  ready: Promise<unknown>;
  exited: Promise<void>;
};

export function forkChild(
  name: string,
  modulePath: string,
  args: string[],
  opts: { env: Record<string, string | undefined>; execArgv?: string[]; readyTimeoutMs?: number },
): Child {
  const proc = fork(modulePath, args, {
    env: opts.env as NodeJS.ProcessEnv,
    execArgv: opts.execArgv ?? [],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 30) tail.shift();
      let level = 0;
      try {
        level = JSON.parse(line).level ?? 0;
      } catch {
        level = 50; // not a pino line: a crash trace or similar, show it
      }
      if (level >= 50) process.stderr.write(`[${name}] ${line}\n`);
    }
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((ok) => proc.once('exit', () => ok()));
  // 2 minutes: on the 2-core machine under a load average of 30 a process took 20-25 s to start.
  const readyMs = opts.readyTimeoutMs ?? 120_000;
  const ready = new Promise<unknown>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} not ready after ${readyMs} ms\n${tail.join('\n')}`)), readyMs);
    proc.on('message', (m: { type?: string } | null) => {
      if (m?.type === 'ready') {
        clearTimeout(timer);
        ok(m);
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      fail(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready\n${tail.join('\n')}`));
    });
  });
  ready.catch(() => {}); // observed by whoever awaits it
  return { name, proc, tail, ready, exited };
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
export async function stopChild(c: Child, graceMs = 10_000): Promise<void> {
  const p = c.proc;
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await c.exited;
  clearTimeout(timer);
}

/** Runs fn(0..count-1) with `concurrency` in flight; returns elapsed ms. */
export async function closedLoop(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
  return performance.now() - t0;
}

/**
 * Open loop: starts fn(i) at `ratePerSec` for `seconds`, never more than maxInFlight at once
 * (a request that would exceed it is sent late, and counted). Resolves when all have finished.
 */
export async function openLoop(
  ratePerSec: number,
  seconds: number,
  maxInFlight: number,
  fn: (i: number) => Promise<void>,
): Promise<{ sent: number; late: number; elapsedMs: number }> {
  const total = Math.round(ratePerSec * seconds);
  let sent = 0;
  let late = 0;
  let inFlight = 0;
  const running: Promise<void>[] = [];
  const t0 = performance.now();
  while (sent < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - t0) * ratePerSec) / 1000) + 1);
    while (sent < due && inFlight < maxInFlight) {
      const i = sent++;
      if (now - (t0 + (i * 1000) / ratePerSec) > 50) late++; // sent over 50 ms behind schedule
      inFlight++;
      running.push(fn(i).finally(() => inFlight--));
    }
    await sleep(2);
    if (performance.now() - t0 > seconds * 1000 * 3 + 10_000) break; // bounded even if the gateway stalls
  }
  await Promise.all(running);
  return { sent, late, elapsedMs: performance.now() - t0 };
}

export const rate = (count: number, ms: number) => (ms > 0 ? (count * 1000) / ms : 0);

/**
 * CPU seconds (user + system) a process has used, from /proc (Linux; NaN elsewhere).
 * withReaped adds what its exited, reaped children used (PostgreSQL's short-lived backends).
 */
export function procCpuSeconds(pid: number | undefined, withReaped = false): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // f[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    return (f[11]! + f[12]! + (withReaped ? f[13]! + f[14]! : 0)) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
const CLOCK_TICKS = 100; // USER_HZ; 100 on every mainstream Linux

/** CPU seconds of a PostgreSQL server: the postmaster, its live children and its reaped ones. */
export function postgresCpuSeconds(dataDir: string): number {
  let postmaster: number;
  try {
    postmaster = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return NaN;
  }
  let total = procCpuSeconds(postmaster, true);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === postmaster) total += procCpuSeconds(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return total;
}

/** Busy CPU seconds of the whole machine so far (all cores; /proc/stat, Linux; NaN elsewhere). */
export function machineBusySeconds(): number {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = cpu;
    return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** Read and write system calls a process has made so far (/proc/<pid>/io; zeros elsewhere). */
export function procSyscalls(pid: number | undefined): { reads: number; writes: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return { reads: Number(/syscr: (\d+)/.exec(io)![1]), writes: Number(/syscw: (\d+)/.exec(io)![1]) };
  } catch {
    return { reads: 0, writes: 0 };
  }
}

/** Peak resident set size of a live process in MiB (VmHWM in /proc/<pid>/status; NaN elsewhere). */
export function procPeakRssMb(pid: number | undefined): number {
  try {
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    return Math.round((kb / 1024) * 10) / 10;
  } catch {
    return NaN;
  }
}
