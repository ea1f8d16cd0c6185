// CPU per task and enqueue latency at a given steady rate, of the whole all-in-one as a user
// runs it (`posthorn start`, embedded PostgreSQL): the main bench measures at full speed, where
// batching amortises every fixed cost; this one shows what a task costs at the rates most
// deployments see. Open loop: a POST every 1/rate s for `seconds`, to a sink on 127.0.0.1.
//
//   node --import tsx bench/rate-cost.ts [rate=200] [seconds=10] [workers=2]
//
// Prints `RATE_COST {...}`: POST → 202 p50/p99 (ms), deliveries, and CPU ms per task of the
// gateway, the workers, PostgreSQL and this process (from /proc through bench/harness.ts, Linux only).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { postgresCpuSeconds, procCpuSeconds, sleep } from './harness.ts';
import { percentiles } from './report.ts';

const [rate, seconds, workers] = [Number(process.argv[2] ?? 200), Number(process.argv[3] ?? 10), process.argv[4] ?? '2'];
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const dir = mkdtempSync(path.join(tmpdir(), 'posthorn-rate-'));

/** CPU seconds so far per role: this process, the gateway and workers, and the embedded PostgreSQL. */
function cpuSeconds(): Record<string, number> {
  const m: Record<string, number> = {
    bench: procCpuSeconds(process.pid),
    gateway: 0,
    workers: 0,
    postgres: postgresCpuSeconds(path.join(dir, 'data', 'pg')),
  };
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      const role = cmd.includes('posthorn.js\0gateway') ? 'gateway' : cmd.includes('posthorn.js\0worker') ? 'workers' : null;
      if (role) m[role]! += procCpuSeconds(Number(d));
    } catch {
      /* the process ended meanwhile */
    }
  }
  return m;
}

const port = 20000 + Math.floor(Math.random() * 20000);
const key = `ph_${'RateCost0Key'.repeat(4)}`;
const start = spawn(process.execPath, [path.join(ROOT, 'bin/posthorn.js'), 'start'], {
  cwd: ROOT,
  env: {
    ...process.env,
    POSTHORN_DATA_DIR: path.join(dir, 'data'),
    PORT: String(port),
    POSTHORN_BOOTSTRAP_KEY: key,
    POSTHORN_WORKERS: workers,
    POSTHORN_ALLOW_PRIVATE_TARGETS: 'true',
    POSTHORN_RATE_LIMIT: '1000000/1s',
    POSTHORN_LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
start.stdout!.on('data', (d: Buffer) => {
  out += d.toString();
});
try {
  for (let i = 0; !out.includes('posthorn ready'); i++) {
    if (i > 1200) throw new Error('posthorn start was not ready within 120 s');
    await sleep(100);
  }
  let delivered = 0;
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      delivered++;
      res.end('ok');
    });
  });
  await new Promise<void>((ok) => sink.listen(0, '127.0.0.1', ok));
  const hook = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hook`;
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64 });
  const body = JSON.stringify({ url: hook, body: { n: 1 } });
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const post = () => pool.request({ path: '/api/v1/queue', method: 'POST', headers, body }).then((r) => r.body.text());
  for (let i = 0; i < 200; i++) await post(); // warm up (JIT, connections)
  await sleep(2000);

  const latencies: number[] = [];
  const before = cpuSeconds();
  const t0 = performance.now();
  let sent = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const due = ((performance.now() - t0) / 1000) * rate;
    for (; sent < due; sent++) {
      const ts = performance.now();
      void post().then(() => latencies.push(performance.now() - ts));
    }
    await sleep(1);
  }
  await sleep(1000); // the last ones delivered
  const after = cpuSeconds();
  const lat = percentiles(latencies);
  const cpuMsPerTask = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, +(((v - before[k]!) * 1000) / sent).toFixed(2)]));
  console.log(
    `RATE_COST ${JSON.stringify({ rate, seconds, workers: Number(workers), sent, delivered: delivered - 200, post_to_202_ms: { p50: +lat.p50.toFixed(1), p99: +lat.p99.toFixed(1) }, cpu_ms_per_task: cpuMsPerTask })}`,
  );
  await pool.close();
  sink.close();
} finally {
  start.kill('SIGTERM');
  await new Promise((r) => start.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
