// Plumbing for bench/bench.ts: free ports, the local sink, child processes (the real
// `posthorn gateway` / `posthorn worker`), closed- and open-loop drivers, percentiles.
// Everything listens on and talks to 127.0.0.1 only; every wait has a deadline.
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
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

/** A forked child whose stdout/stderr are kept (last lines) and printed only at pino level ≥ error. */
export type Child = {
  name: string;
  proc: ChildProcess;
  tail: string[];
  ready: Promise<any>;
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
  const ready = new Promise<any>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} not ready after ${opts.readyTimeoutMs ?? 30_000} ms\n${tail.join('\n')}`)), opts.readyTimeoutMs ?? 30_000);
    proc.on('message', (m: any) => {
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

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export const rate = (count: number, ms: number) => (ms > 0 ? (count * 1000) / ms : 0);
