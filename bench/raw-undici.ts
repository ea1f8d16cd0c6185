// The raw delivery baseline, run as a child process (like a worker): POSTs to the sink with
// undici, the same Agent settings and about the same request as worker/executor.ts, but no
// queue behind it. bench.ts forks two of these to mirror 2 workers × 64 slots.
// argv: <url> <count> <concurrency>; waits for {type:'go'}, answers {type:'done', ms, errors}.
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';

const [url, countArg, concurrencyArg] = process.argv.slice(2);
const count = Number(countArg);
const concurrency = Number(concurrencyArg);
const agent = new Agent({ connections: 256, keepAliveTimeout: 10_000, connectTimeout: 10_000 });
const body = JSON.stringify({ event: 'bench', i: 0 });

async function once(): Promise<boolean> {
  const res = await request(url!, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'posthorn-bench', 'x-posthorn-attempt': '1' },
    body,
    dispatcher: agent,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  for await (const _ of res.body) {
    /* read it all, as the executor does */
  }
  return res.statusCode === 200;
}

async function run() {
  let next = 0;
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        next++;
        if (!(await once().catch(() => false))) errors++;
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, errors, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

process.on('message', (m: { type?: string } | null) => {
  if (m?.type !== 'go') return;
  run()
    .then((r) => process.send!({ type: 'done', ...r }))
    .catch((err) => process.send!({ type: 'done', ms: 0, errors: count, error: String(err) }))
    .finally(() => {
      void agent.close().finally(() => process.disconnect());
    });
});
// A short warm-up (JIT, sockets) before reporting ready, so the timed run is steady state.
for (let i = 0; i < Math.min(500, count); i += concurrency) {
  await Promise.all(Array.from({ length: concurrency }, () => once().catch(() => false)));
}
process.send!({ type: 'ready' });
