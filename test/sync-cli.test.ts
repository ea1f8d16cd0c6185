// `posthorn sync <file.json>` as a real process against a real gateway on 127.0.0.1: it PUTs the
// file with POSTHORN_API_KEY to POSTHORN_URL, prints what changed, and exits 1 on a refusal.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness } from './helpers/harness.ts';
import { baseEnv, POSTHORN_BIN } from './helpers/proc.ts';

const EXAMPLE = fileURLToPath(new URL('../docs/sync-example.json', import.meta.url));
let h: Awaited<ReturnType<typeof startHarness>>;
let server: ReturnType<typeof serve>;
let url: string;

beforeAll(async () => {
  h = await startHarness({ worker: false });
  server = serve({ fetch: h.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((ok) => server.once('listening', ok));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((ok) => server?.close(() => ok()));
  await h?.close();
});

function run(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [POSTHORN_BIN, ...args],
      { env: { ...baseEnv('DATABASE_URL'), ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('posthorn sync', () => {
  it('applies the example file, then finds nothing to change', async () => {
    const env = { POSTHORN_URL: url, POSTHORN_API_KEY: h.team.keys.admin };
    const first = await run(['sync', EXAMPLE], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('created schedules: nightly-report, cache-warmup');
    expect(first.stdout).toContain('created endpoints: stripe, github');
    expect(first.stdout).toContain('posthorn sync: done');
    expect(first.stdout + first.stderr).not.toContain(h.team.keys.admin);
    const second = await run(['sync', EXAMPLE], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('posthorn sync: nothing to change');
    expect((await h.api('GET', '/api/v1/monitors')).body.data).toHaveLength(2);
  });

  it('a refused document exits 1 naming the field; a missing key or file is a one-line error', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'posthorn-sync-'));
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ monitors: [{ name: 'x', cron: 'never' }] }));
    const r = await run(['sync', bad], { POSTHORN_URL: url, POSTHORN_API_KEY: h.team.keys.admin });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('400 validation_failed');
    expect(r.stdout).toContain('monitors.0.cron');
    const noKey = await run(['sync', EXAMPLE], { POSTHORN_URL: url });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr.trim()).toBe('posthorn: POSTHORN_API_KEY must be set to an admin key of the team to sync');
    const noFile = await run(['sync', path.join(dir, 'missing.json')], { POSTHORN_URL: url, POSTHORN_API_KEY: h.team.keys.admin });
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toContain('cannot read');
    const writeKey = await run(['sync', EXAMPLE], { POSTHORN_URL: url, POSTHORN_API_KEY: h.team.keys.write });
    expect(writeKey.code).toBe(1);
    expect(writeKey.stdout).toContain('403 forbidden');
  });
});
