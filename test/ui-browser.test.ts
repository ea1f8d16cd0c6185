// The web UI in a real browser: Debian's Chromium driven by playwright-core, the gateway on a
// real port, an in-process worker delivering to a target on 127.0.0.1 that fails, then
// succeeds. Without /usr/bin/chromium the file is skipped and says so (.ci/run installs it).
// POSTHORN_SCREENSHOTS_DIR=docs/screenshots also saves the screenshots used by docs/ui.md.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumOrSkip, launchBrowser, screenshot, serveOnPort } from './helpers/browser.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { startSink } from './helpers/sink.ts';

const haveChromium = chromiumOrSkip('test/ui-browser.test.ts');

let h: Awaited<ReturnType<typeof startHarness>>;
let sink: Awaited<ReturnType<typeof startSink>>;
let server: Awaited<ReturnType<typeof serveOnPort>>;
let base: string;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let page: Page;

/** Fails the first two calls of each /flaky path, and the first of each /once path, with 503; then 200. */
const behaviour = (req: { path: string }, nth: number) =>
  (req.path.startsWith('/flaky') && nth <= 2) || (req.path.startsWith('/once') && nth === 1)
    ? { status: 503, headers: { 'content-type': 'text/plain' }, body: 'upstream busy, try later' }
    : { status: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' };

const shot = (name: string, width?: number) => screenshot(page, name, width);

async function signIn(key: string) {
  await page.goto(`${base}/ui/tasks`);
  expect(new URL(page.url()).pathname).toBe('/ui/login');
  await page.fill('input[name="key"]', key);
  await page.click('button:has-text("Sign in")');
  await page.waitForURL(`${base}/ui/tasks`);
}

const taskStatus = async (id: string) => (await h.task(id)).status as string;

describe.skipIf(!haveChromium)('web UI in Chromium', () => {
  beforeAll(async () => {
    h = await startHarness({ worker: { workerConcurrency: 8, metricsPort: 0 } });
    sink = await startSink(behaviour);
    server = await serveOnPort(h.app.fetch);
    base = server.base;
    browser = await launchBrowser();
    page = browser.page;
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await h?.close();
    await sink?.close();
  });

  it('signs in, finds a failed task by label, reads its attempts, replays it and sees it succeed', async () => {
    // Some traffic so the pages show more than one row.
    for (const [label, p] of [
      ['welcome-mail', '/hooks/welcome'],
      ['invoice.paid', '/hooks/invoices'],
      ['welcome-mail', '/hooks/welcome'],
    ]) {
      await h.enqueue({ url: `${sink.url}${p}`, label, queue: 'emails', body: { user_id: 42 } });
    }
    await h.enqueue({ url: 'https://api.example.com/v1/reminders', label: 'reminder', delay: '2h', body: 'remind' });
    const id = await h.enqueue({
      url: `${sink.url}/flaky/orders`,
      label: 'order-sync',
      headers: { 'x-tenant': '42' },
      body: { order: 1001, items: 3 },
      retry: { max_retries: 1, min_backoff_ms: 10, max_backoff_ms: 10 },
    });
    await waitFor(async () => (await taskStatus(id)) === 'failed', { what: 'the flaky task to fail twice' });

    await signIn(h.team.keys.admin);
    await page.fill('form.filters input[name="label"]', 'order-sync');
    await page.click('form.filters button:has-text("Filter")');
    await page.waitForURL(/label=order-sync/);
    const rows = page.locator('tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().locator('.badge').innerText()).toContain('failed');
    await page.fill('form.filters input[name="label"]', '');
    await page.click('form.filters button:has-text("Filter")');
    await shot('tasks');
    await shot('tasks-phone', 390);
    await page.goto(`${base}/ui/tasks?label=order-sync`);
    await page.click(`a[href="/ui/tasks/${id}"]`);
    await page.waitForURL(`${base}/ui/tasks/${id}`);

    const attempts = page.locator('section.attempt');
    expect(await attempts.count()).toBe(2);
    const latest = attempts.first();
    expect(await latest.locator('h3').innerText()).toBe('Attempt 2');
    expect(await latest.innerText()).toContain('HTTP 503');
    expect(await latest.locator('pre').innerText()).toBe('upstream busy, try later');
    // Times show in the browser's zone, with UTC on hover.
    const time = latest.locator('time').first();
    expect(await time.getAttribute('title')).toMatch(/ UTC$/);
    expect(await time.innerText()).not.toContain('UTC');
    await latest.locator('summary', { hasText: 'Request sent' }).click();
    expect(await latest.innerText()).toContain('x-posthorn-attempt');
    expect(await latest.innerText()).toContain('x-tenant');

    await page.click('button:has-text("Replay")');
    await page.waitForURL(`${base}/ui/tasks/${id}?notice=replayed`);
    // The page refreshes itself (ui.js) until the task has finished.
    await page.waitForSelector('h1 .badge:has-text("succeeded")', { timeout: 30_000 });
    expect(await page.locator('section.attempt').count()).toBe(3);
    expect(await page.locator('section.attempt').first().innerText()).toContain('HTTP 200');
    expect(await taskStatus(id)).toBe('succeeded');
    await shot('task');
    await shot('task-phone', 390);
  });

  it('replays all dead letters matching a filter after the browser asks', async () => {
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      ids.push(
        await h.enqueue({
          url: `${sink.url}/once/export-${n}`,
          label: 'crm-export',
          queue: 'exports',
          retry: { max_retries: 0, min_backoff_ms: 10, max_backoff_ms: 10 },
        }),
      );
    }
    for (const id of ids) await waitFor(async () => (await taskStatus(id)) === 'failed', { what: `${id} to fail` });
    await page.goto(`${base}/ui/dead-letters?label=crm-export`);
    expect(await page.locator('tbody tr').count()).toBe(3);
    await page.goto(`${base}/ui/dead-letters`);
    await shot('dead-letters');
    await page.goto(`${base}/ui/dead-letters?label=crm-export`);
    let asked = '';
    page.once('dialog', (d) => {
      asked = d.message();
      void d.accept();
    });
    await page.click('button:has-text("Replay all matching")');
    await page.waitForURL(/replayed=3/);
    expect(asked).toContain('crm-export');
    expect(await page.locator('.notice').innerText()).toBe('Replayed 3 failed tasks.');
    for (const id of ids) await waitFor(async () => (await taskStatus(id)) === 'succeeded', { what: `${id} to succeed on replay` });
  });

  it('creates a schedule, triggers it, and shows its task run', async () => {
    await page.goto(`${base}/ui/schedules`);
    await page.fill('input[name="name"]', 'nightly-report');
    await page.fill('input[name="cron"]', '0 3 * * *');
    await page.fill('input[name="timezone"]', 'Europe/Oslo');
    await page.fill('input[name="url"]', `${sink.url}/reports/nightly`);
    await page.fill('input[name="label"]', 'report');
    await page.click('button:has-text("Create schedule")');
    await page.waitForURL(`${base}/ui/schedules?notice=schedule-created`);
    const row = page.locator('tr', { hasText: 'nightly-report' });
    expect(await row.locator('ol.runs time').count()).toBe(5);
    await h.api('POST', '/api/v1/schedules', { name: 'hourly-sync', cron: '0 * * * *', url: 'https://crm.example.com/sync', paused: true });
    await page.reload();
    await shot('schedules');
    await row.locator('button:has-text("Trigger")').click();
    await page.waitForURL(/\/ui\/tasks\/[0-9a-f-]{36}\?notice=triggered/);
    await page.waitForSelector('h1 .badge:has-text("succeeded")', { timeout: 30_000 });
    expect(sink.received.some((r) => r.path === '/reports/nightly')).toBe(true);
  });

  it('shows a task body with HTML as text and runs none of it', async () => {
    const id = await h.enqueue({
      url: 'https://api.example.com/x',
      delay: '1h',
      body: '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>',
    });
    await page.goto(`${base}/ui/tasks/${id}`);
    expect(await page.locator('#task-body pre').innerText()).toBe('<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>');
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('main img, main script').count()).toBe(0);
  });

  it('keys: an admin makes a key and sees it once', async () => {
    await page.goto(`${base}/ui/keys`);
    await page.fill('input[name="name"]', 'deploy bot');
    await page.selectOption('select[name="role"]', 'read');
    await page.click('button:has-text("Create key")');
    const secret = await page.locator('.secret code').innerText();
    expect(secret).toMatch(/^ph_[A-Za-z0-9]{40}$/);
    await shot('keys');
    await page.goto(`${base}/ui/keys`);
    expect(await page.content()).not.toContain(secret);
  });

  it('a read key sees no write buttons, and its crafted POST is refused', async () => {
    const failed = await h.enqueue({
      url: `${sink.url}/flaky/read-check`,
      retry: { max_retries: 0, min_backoff_ms: 10, max_backoff_ms: 10 },
    });
    await waitFor(async () => (await taskStatus(failed)) === 'failed', { what: 'a failed task' });
    await page.click('button:has-text("Sign out")');
    await page.waitForURL(`${base}/ui/login`);
    await shot('login');
    await signIn(h.team.keys.read);
    for (const p of [`/ui/tasks/${failed}`, '/ui/dead-letters', '/ui/schedules']) {
      await page.goto(`${base}${p}`);
      expect(await page.locator('main form[method="post"]').count(), p).toBe(0);
      expect(await page.locator('main button', { hasText: /Replay|Cancel|Pause|Resume|Trigger|Create/ }).count(), p).toBe(0);
    }
    expect(await page.locator('nav a', { hasText: 'Keys' }).count()).toBe(0);
    await page.goto(`${base}/ui/tasks/${failed}`);
    // The form a write key would have had, posted from this page with this session's own CSRF token.
    const statuses = await page.evaluate(async (id) => {
      const csrf = (document.querySelector('input[name="_csrf"]') as HTMLInputElement).value;
      const post = (body: string) =>
        fetch(`/ui/tasks/${id}/replay`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          redirect: 'manual',
        }).then((r) => r.status);
      return { withToken: await post(`_csrf=${encodeURIComponent(csrf)}`), withoutToken: await post('') };
    }, failed);
    expect(statuses).toEqual({ withToken: 403, withoutToken: 403 });
    expect(await taskStatus(failed)).toBe('failed');
  });
});
