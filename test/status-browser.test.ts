// The status page in a real browser (Debian's Chromium via playwright-core, test/helpers/browser.ts):
// an in-process worker with low breaker thresholds delivers to a switchable target; the page,
// loaded once, shows its origin go closed → open → closed without a reload. Skipped without
// /usr/bin/chromium. POSTHORN_SCREENSHOTS_DIR=docs/screenshots saves status.png and
// status-public.png for docs/circuits.md and docs/ui.md.
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumOrSkip, launchBrowser, screenshot, serveOnPort } from './helpers/browser.ts';
import { startHarness } from './helpers/harness.ts';
import { startSink } from './helpers/sink.ts';
import { startTarget } from './helpers/target.ts';

const haveChromium = chromiumOrSkip('test/status-browser.test.ts');
const shots = process.env.POSTHORN_SCREENSHOTS_DIR;

let h: Awaited<ReturnType<typeof startHarness>>;
let target: Awaited<ReturnType<typeof startTarget>>;
let healthy: Awaited<ReturnType<typeof startSink>>;
let server: Awaited<ReturnType<typeof serveOnPort>>;
let base: string;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let page: Page;

const shot = (name: string) => screenshot(page, name);

const failingTasks = (n: number, p: string) =>
  Array.from({ length: n }, (_, i) => ({
    url: `${target.url}${p}?n=${i}`,
    retry: { max_retries: 0, min_backoff_ms: 10, max_backoff_ms: 10 },
  }));

describe.skipIf(!haveChromium)('status page in Chromium', () => {
  beforeAll(async () => {
    // Open for 3 s: the probe comes soon after the target heals, so the test sees it close.
    h = await startHarness({
      worker: { workerConcurrency: 8, metricsPort: 0, circuit: { openMs: 3_000, maxOpenMs: 3_000, minRequests: 10, failureRate: 0.5 } },
    });
    target = await startTarget({ mode: 'healthy' });
    healthy = await startSink(() => ({ status: 200, body: 'ok' }));
    server = await serveOnPort(h.app.fetch);
    base = server.base;
    browser = await launchBrowser();
    page = browser.page;
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await h?.close();
    await target?.close();
    await healthy?.close();
  });

  it('shows an origin go closed → open → closed without a reload', async () => {
    // Two healthy origins and a first delivery to the target, so every row starts closed.
    await h.api('POST', '/api/v1/queue/batch', {
      tasks: [{ url: `${healthy.url}/hooks/orders` }, { url: `${healthy.url}/hooks/invoices` }, { url: `${target.url}/webhooks/payments` }],
    });
    const row = () => page.locator(`tbody.origin[data-origin="${target.origin}"]`);

    await page.goto(`${base}/ui/login`);
    await page.fill('input[name="key"]', h.team.keys.admin);
    await page.click('button:has-text("Sign in")');
    await page.waitForURL(`${base}/ui/tasks`);
    await page.goto(`${base}/ui/status`);
    await page.waitForSelector(`tbody.origin[data-origin="${target.origin}"] .badge:has-text("closed")`, { timeout: 30_000 });
    // Public too: both documents, loaded once, must follow the breaker from here on.
    await page.click('button:has-text("Make public")');
    await page.waitForURL(`${base}/ui/status?done=public`);
    const href = (await page.locator('.public-page a').getAttribute('href'))!;
    const pub = await browser.context.newPage();
    await pub.setViewportSize({ width: 1000, height: 400 });
    await pub.goto(`${base}${href}`);
    expect(await pub.locator(`tr[data-origin="${target.origin}"] .badge`).innerText()).toContain('closed');
    // Marks each document: a reload would lose it.
    for (const p of [page, pub]) {
      await p.evaluate(() => {
        (window as unknown as { __loaded: boolean }).__loaded = true;
      });
    }

    await target.set('failing');
    expect((await h.api('POST', '/api/v1/queue/batch', { tasks: failingTasks(12, '/webhooks/payments') })).status).toBe(202);
    await page.waitForSelector(`tbody.origin[data-origin="${target.origin}"] .badge:has-text("open")`, { timeout: 30_000 });
    expect(await row().locator('.origin-row .badge').innerText()).toContain('open');
    expect(await row().locator('.cell').last().getAttribute('class')).toBe('cell open');
    expect(await row().locator('button:has-text("Reset")').count()).toBe(1);
    expect(await row().innerText()).toContain('HTTP 503');
    await shot('status');
    await pub.waitForSelector(`tr[data-origin="${target.origin}"] .badge:has-text("open")`, { timeout: 30_000 });
    expect(await pub.content()).not.toContain('/webhooks/payments');
    expect(await pub.content()).not.toContain('HTTP 503');
    if (shots) await pub.screenshot({ path: path.join(shots, 'status-public.png'), fullPage: true });

    // Healed: the next probe succeeds and the same document shows it closed.
    await target.set('healthy');
    // A task for it, held until the probe (at most 3 s away) and then sent as the probe.
    await h.enqueue({ url: `${target.url}/webhooks/payments` });
    await page.waitForSelector(`tbody.origin[data-origin="${target.origin}"] .origin-row .badge:has-text("closed")`, { timeout: 30_000 });
    await pub.waitForSelector(`tr[data-origin="${target.origin}"] .badge:has-text("closed")`, { timeout: 30_000 });
    for (const p of [page, pub]) expect(await p.evaluate(() => (window as unknown as { __loaded?: boolean }).__loaded)).toBe(true);
    // This hour was open at some point: its cell stays so.
    expect(await row().locator('.cell').last().getAttribute('class')).toBe('cell open');
    // Made private: the open public page says so on its next refresh, and stops refreshing.
    await page.click('button:has-text("Make private")');
    await page.waitForURL(`${base}/ui/status?done=private`);
    await pub.waitForSelector('main:has-text("There is no status page here")', { timeout: 30_000 });
    expect(await pub.locator('tr[data-origin]').count()).toBe(0);
    await pub.close();
  });
});
