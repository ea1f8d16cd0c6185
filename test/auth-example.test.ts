// docs/auth.md's receiver, run as it stands in a process of its own: real deliveries from a
// worker, with a text body and a JSON body, verify; a forged one gets 401. The block is taken
// from the doc, so the doc cannot drift from what works.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness } from './helpers/harness.ts';
import { freePort, waitFor } from './helpers/net.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const doc = readFileSync(new URL('../docs/auth.md', import.meta.url), 'utf8');
const block = /<!-- receiver-example[^>]*-->\s*```js\n([\s\S]*?)```/.exec(doc)?.[1];

let h: Awaited<ReturnType<typeof startHarness>>;
let receiver: ReturnType<typeof spawn>;
let out = '';
let url = '';

beforeAll(async () => {
  expect(block, 'the receiver example in docs/auth.md').toBeTruthy();
  h = await startHarness({ worker: {} });
  const secret = (await h.api('GET', '/api/v1/signing-keys')).body.current as string;
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  // -e with the repository as cwd: `standardwebhooks` resolves from its node_modules.
  receiver = spawn(process.execPath, ['--input-type=module', '-e', block!], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', POSTHORN_SIGNING_SECRET: secret, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  receiver.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  receiver.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  await waitFor(async () => (await fetch(url, { method: 'POST' }).catch(() => null))?.status === 401, {
    what: `the receiver to listen:\n${out}`,
  });
});

afterAll(async () => {
  receiver?.kill('SIGKILL');
  await h?.close();
});

describe('the verification example in docs/auth.md', () => {
  it('verifies a text body and a JSON body delivered by a worker', async () => {
    const text = await h.enqueue({ url: `${url}/text`, body: 'hello, not JSON' });
    const json = await h.enqueue({ url: `${url}/json`, body: { user_id: '123', note: 'grüße' } });
    for (const id of [text, json])
      await waitFor(async () => (await h.task(id)).status === 'succeeded', { timeoutMs: 20_000, what: `task ${id} to succeed:\n${out}` });
    expect(out).toContain(`verified ${text} "hello, not JSON"`);
    expect(out).toContain(`verified ${json} {"user_id":"123","note":"grüße"}`);
  });

  it('without { jsonParse: false } the library throws on that text body, which is why the example passes it', () => {
    const secret = `whsec_${Buffer.from('k'.repeat(32)).toString('base64')}`;
    const wh = new Webhook(secret);
    const id = 'msg_1';
    const now = new Date();
    const headers = {
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': wh.sign(id, now, 'hello'),
    };
    expect(() => wh.verify('hello', headers)).toThrow(SyntaxError);
    expect(wh.verify('hello', headers, { jsonParse: false })).toBeUndefined();
  });

  it('refuses a forged delivery with 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const forged = await fetch(`${url}/text`, {
      method: 'POST',
      headers: { 'webhook-id': 'x', 'webhook-timestamp': String(now), 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}` },
      body: 'hello',
    });
    expect(forged.status).toBe(401);
  });
});
