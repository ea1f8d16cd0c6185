// Summarises V8 .cpuprofile files (from `BENCH_CPU_PROF=gateway|worker|all npm run bench`):
// self time by package / project file, and the top functions.
//   node --import tsx bench/prof-summary.ts <file.cpuprofile>... [--top 25]
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

type CallFrame = { functionName: string; url: string; lineNumber: number; columnNumber: number };
type Node = { id: number; callFrame: CallFrame; children?: number[] };
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args[topAt + 1]) : 25;
const callersAt = args.indexOf('--callers');
const callersOf = callersAt >= 0 ? args[callersAt + 1] : undefined;
const valueAt = new Set([topAt + 1, callersAt + 1].filter((i) => i > 0));
const files = args.filter((a, i) => !a.startsWith('--') && !valueAt.has(i));

function bucket(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native/v8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) return url;
  const m = /\/((?:bin|gateway|worker|shared|bench)\/.+)$/.exec(url.replace(/\?.*$/, ''));
  return m ? m[1]! : path.basename(url);
}

// The processes run from the build in node_modules/.cache/posthorn (bin/build.mjs): its source
// maps turn a position in a bundle back into the TypeScript file and line it came from.
const maps = new Map<string, SourceMap | null>();
function sourceMapOf(url: string): SourceMap | null {
  if (!maps.has(url)) {
    const file = `${fileURLToPath(url)}.map`;
    maps.set(url, existsSync(file) ? new SourceMap(JSON.parse(readFileSync(file, 'utf8'))) : null);
  }
  return maps.get(url)!;
}

/** The call frame with its url and line in the sources, where the frame is in the build. */
function original(f: CallFrame): CallFrame {
  if (!f.url.includes('/node_modules/.cache/posthorn/')) return f;
  const entry = sourceMapOf(f.url)?.findEntry(f.lineNumber, f.columnNumber);
  if (!entry || !('originalSource' in entry)) return f;
  return { ...f, url: new URL(entry.originalSource, f.url).href, lineNumber: entry.originalLine };
}

for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  for (const n of p.nodes) n.callFrame = original(n.callFrame);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self.entries()].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0);
  const busy = total - idle;
  const buckets = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, t] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    const b = bucket(url, functionName);
    buckets.set(b, (buckets.get(b) ?? 0) + t);
    const f = `${functionName || '(anonymous)'}  ${b}:${lineNumber + 1}`;
    fns.set(f, (fns.get(f) ?? 0) + t);
  }
  const pct = (t: number) => `${((100 * t) / busy).toFixed(1).padStart(5)}%`;
  console.log(
    `\n== ${path.basename(file)}: ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy (${((100 * busy) / total).toFixed(0)}%)`,
  );
  console.log('-- self time by package / file (share of busy time)');
  for (const [b, t] of [...buckets].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t)}  ${b}`);
  console.log('-- top functions by self time');
  for (const [f, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t)}  ${f}`);

  // Inclusive time: each sample counts once for every distinct function on its stack.
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: Node) =>
    `${n.callFrame.functionName || '(anonymous)'}  ${bucket(n.callFrame.url, n.callFrame.functionName)}:${n.callFrame.lineNumber + 1}`;
  const incl = new Map<string, number>();
  const via = new Map<string, number>();
  for (const [id, t] of self) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    const chain: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      chain.push(l);
      if (!seen.has(l)) incl.set(l, (incl.get(l) ?? 0) + t);
      seen.add(l);
    }
    if (callersOf) {
      const at = chain.findIndex((l) => l.startsWith(`${callersOf} `));
      if (at >= 0) {
        const path = chain
          .slice(at, at + 6)
          .map((l) => l.split('  ')[0])
          .join(' ← ');
        via.set(path, (via.get(path) ?? 0) + t);
      }
    }
  }
  console.log('-- top functions by inclusive time (project code and packages, not node internals)');
  for (const [f, t] of [...incl]
    .filter(([l]) => !/ node:|\(native|\(root|\(program|\(garbage/.test(l))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    console.log(`  ${pct(t)}  ${f}`);
  if (callersOf) {
    console.log(`-- ${callersOf}: call paths by time`);
    for (const [f, t] of [...via].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${pct(t)}  ${f}`);
  }
}
