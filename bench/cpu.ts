// Where the CPU goes, per phase: seconds used by the gateway(s), the workers, PostgreSQL and
// the bench process itself, out of cores × wall seconds; `others` is what the rest of the
// machine did meanwhile (other test runs share it, and skew throughput, not CPU per task).
// Also the write transactions a phase cost PostgreSQL.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Sql } from '../shared/db.ts';
import { type Child, machineBusySeconds, postgresCpuSeconds, procCpuSeconds, procSyscalls } from './harness.ts';

export type CpuSplit = Record<'gateway' | 'workers' | 'postgres' | 'bench' | 'raw' | 'peers' | 'others', number>;
/** syscalls: read/write system calls of the gateways and of the workers (socket sends are writes). */
export type CpuPhase = {
  wall: number;
  write_tx: number;
  syscalls: Record<'gateway' | 'workers', { reads: number; writes: number }>;
} & CpuSplit;

export function createCpuMeter(o: { children: Child[]; pgDataDir: string; sql: () => Sql }) {
  const phases: Record<string, CpuPhase> = {};

  function now(): CpuSplit {
    const of = (prefix: string) =>
      o.children
        .filter((c) => c.name.startsWith(prefix) && c.proc.exitCode === null)
        .reduce((n, c) => n + (procCpuSeconds(c.proc.pid) || 0), 0);
    const own = process.cpuUsage();
    const split = {
      gateway: of('gateway'),
      workers: of('worker-'),
      raw: of('raw-undici-'),
      peers: of('peer-'),
      postgres: postgresCpuSeconds(path.join(o.pgDataDir, 'pg')),
      bench: (own.user + own.system) / 1e6,
    };
    const ours = split.gateway + split.workers + split.raw + split.peers + split.postgres + split.bench;
    return { ...split, others: machineBusySeconds() - ours };
  }

  function syscalls() {
    const sum = (prefix: string) =>
      o.children
        .filter((c) => c.name.startsWith(prefix) && c.proc.exitCode === null)
        .map((c) => procSyscalls(c.proc.pid))
        .reduce((a, b) => ({ reads: a.reads + b.reads, writes: a.writes + b.writes }), { reads: 0, writes: 0 });
    return { gateway: sum('gateway'), workers: sum('worker-') };
  }

  // The next transaction id, without taking one: its rise over a phase counts the write
  // transactions (each INSERT/UPDATE statement outside a transaction block is one).
  const nextXid = async () => Number((await o.sql()`select pg_snapshot_xmax(pg_current_snapshot())::text as x`)[0]!.x);

  /** Starts measuring a phase; the returned function ends it. */
  async function span(name: string) {
    const a = now();
    const ia = syscalls();
    const xa = await nextXid();
    const t = performance.now();
    return async (): Promise<CpuPhase> => {
      const wall = (performance.now() - t) / 1000;
      const b = now();
      const ib = syscalls();
      const d = Object.fromEntries(Object.keys(a).map((k) => [k, b[k as keyof CpuSplit] - a[k as keyof CpuSplit]])) as CpuSplit;
      const delta = (k: 'gateway' | 'workers') => ({ reads: ib[k].reads - ia[k].reads, writes: ib[k].writes - ia[k].writes });
      return (phases[name] = {
        wall,
        write_tx: (await nextXid()) - xa,
        syscalls: { gateway: delta('gateway'), workers: delta('workers') },
        ...d,
      });
    };
  }

  /** CPU µs per task of one side in one phase. */
  const perTask = (phase: string, who: keyof CpuSplit, n: number) => {
    const c = phases[phase];
    return c && n > 0 ? Math.round((c[who] * 1e6) / n) : NaN;
  };

  return { span, phases, perTask };
}
