// CPU per attempt of attempt tracing alone (worker/observe-attempt.ts): the attempt span, its
// client span, their attributes and their export to a local OTLP receiver (bench/otlp-receiver.ts),
// without the HTTP request or the database. Run in one process per mode so the modes do not
// share a heap:
//
//   node --import tsx bench/attempt-trace-cost.ts off|on [attempts] [http/protobuf|http/json]
//
// Prints `TRACE_COST {...}` with CPU µs per attempt (user + system, process.cpuUsage), the
// export and wall time. The receiver runs in a child process so its CPU is not counted.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClaimedTask } from '../worker/producer.ts';

if (process.argv[2] === 'receiver') {
  const { startOtlpReceiver } = await import('./otlp-receiver.ts');
  const r = await startOtlpReceiver();
  process.send!({ url: r.url });
  process.on('message', () => process.send!({ stats: r.stats }));
} else {
  const mode = process.argv[2] ?? 'on';
  const n = Number(process.argv[3] ?? 20000);
  const protocol = (process.argv[4] ?? 'http/protobuf') as 'http/protobuf' | 'http/json';
  const child = fork(fileURLToPath(import.meta.url), ['receiver'], { execArgv: ['--import', 'tsx'] });
  const url = await new Promise<string>((ok) => child.once('message', (m: { url: string }) => ok(m.url)));
  const { initTelemetry, shutdownTelemetry } = await import('../shared/telemetry.ts');
  const { observeAttempt } = await import('../worker/observe-attempt.ts');
  if (mode === 'on') {
    await initTelemetry(
      { tracesUrl: `${url}/v1/traces`, protocol, serviceName: undefined, sampler: 'parentbased_always_on', samplerRatio: 1 },
      'posthorn-worker',
    );
  }
  const task = (i: number): ClaimedTask => ({
    id: `0193a5b4-7c1e-7000-8000-${String(i).padStart(12, '0')}`,
    team_id: '1',
    url: 'http://127.0.0.1:8080/hooks/orders?token=secret',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"n":1}',
    body_is_json: true,
    max_retries: 3,
    min_backoff_ms: 1000,
    max_backoff_ms: 60000,
    timeout_ms: 30000,
    schedule_id: null,
    attempts: 1,
    retry_base: 0,
    lease_token: 'x',
    traceparent: `00-${(i + 1).toString(16).padStart(32, '0')}-${(i + 1).toString(16).padStart(16, '0')}-01`,
    run_at: new Date(),
  });
  const once = (i: number) => {
    const t = task(i);
    const now = Date.now();
    const o = observeAttempt(t, now);
    const c = o.clientSpan?.(t);
    const result = {
      outcome: 'success' as const,
      statusCode: 200,
      responseHeaders: null,
      responseBody: null,
      responseEncoding: null,
      responseTruncated: false,
      error: null,
      startedAt: new Date(now),
      finishedAt: new Date(),
    };
    c?.end(result);
    o.end(result, { status: 'succeeded' });
  };
  // Warm up (JIT, the exporter's connection), then measure; yield every 64 attempts, as a
  // worker does between claims, so the batch processor's timer and exports run in between.
  for (let i = 0; i < 2000; i++) once(i);
  await new Promise((r) => setTimeout(r, 200));
  const t0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < n; i++) {
    once(i);
    if (i % 64 === 63) await new Promise((r) => setImmediate(r));
  }
  await shutdownTelemetry(); // exports what is left; its CPU counts
  const cpu = process.cpuUsage(t0);
  const wall = performance.now() - w0;
  child.send('stats');
  const stats = await new Promise<{ requests: number; bytes: number }>((ok) =>
    child.once('message', (m: { stats: typeof stats }) => ok(m.stats)),
  );
  child.kill();
  console.log(
    `TRACE_COST ${JSON.stringify({ mode, protocol, attempts: n, cpu_us_per_attempt: +((cpu.user + cpu.system) / n).toFixed(1), wall_ms: Math.round(wall), exports: stats.requests, kib: Math.round(stats.bytes / 1024) })}`,
  );
}
