// A small parser for the Prometheus text exposition format (version 0.0.4): enough to check
// names, labels and values, and strict enough to fail on a malformed line.
export type Sample = { name: string; labels: Record<string, string>; value: number };
export type Exposition = { samples: Sample[]; types: Map<string, string> };

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/;
const LABEL_RE = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

function parseLabels(raw: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL_RE.lastIndex = 0;
  while (LABEL_RE.lastIndex < raw.length) {
    const m = LABEL_RE.exec(raw);
    if (!m) throw new Error(`malformed labels in: ${line}`);
    labels[m[1]!] = m[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  }
  return labels;
}

function parseValue(v: string, line: string): number {
  // Prometheus parses values with Go's ParseFloat: NaN and Inf in any letter case.
  if (/^\+?inf$/i.test(v)) return Number.POSITIVE_INFINITY;
  if (/^-inf$/i.test(v)) return Number.NEGATIVE_INFINITY;
  if (/^nan$/i.test(v)) return Number.NaN;
  const n = Number(v);
  if (v === '' || Number.isNaN(n)) throw new Error(`malformed value in: ${line}`);
  return n;
}

export function parseProm(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (t) types.set(t[1]!, t[2]!);
      else if (!/^# HELP \S+/.test(line)) throw new Error(`malformed comment: ${line}`);
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`malformed sample: ${line}`);
    samples.push({ name: m[1]!, labels: m[2] ? parseLabels(m[2], line) : {}, value: parseValue(m[3]!, line) });
  }
  // Every sample belongs to a declared family (histograms add _bucket, _sum and _count).
  for (const s of samples) {
    const family = types.has(s.name) ? s.name : s.name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(family)) throw new Error(`sample ${s.name} has no # TYPE line`);
  }
  return { samples, types };
}

/** The one sample named `name` whose labels include `labels`; undefined when absent. */
export function sampleValue(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = e.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${hits.length} samples`);
  return hits[0]?.value;
}

/** Sum over every sample named `name` (all label values). */
export const sampleSum = (e: Exposition, name: string) => e.samples.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
