// Debian's Chromium driven by playwright-core, and the gateway app on a real port, for the
// browser tests (test/ui-browser.test.ts, test/status-browser.test.ts). Never a downloaded
// browser: without /usr/bin/chromium (.ci/run installs it) those files skip and say why.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { chromium, type Page } from 'playwright-core';

// Debian's path; POSTHORN_TEST_CHROMIUM points elsewhere (or at nothing, to see the skip).
export const CHROMIUM = process.env.POSTHORN_TEST_CHROMIUM || '/usr/bin/chromium';

/** Whether Chromium is there; when not, warns once naming the test file that skips. */
export function chromiumOrSkip(testFile: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  console.warn(
    `${testFile} skipped: no Chromium at ${CHROMIUM}. Install Debian's (apt-get install chromium, as .ci/run does) to run the web UI's browser tests.`,
  );
  return false;
}

/** Headless Chromium with a fresh profile and no background traffic (this machine's network is closed). */
export async function launchBrowser() {
  const profile = mkdtempSync(path.join(tmpdir(), 'posthorn-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
    timezoneId: 'Europe/Oslo',
    locale: 'en-GB',
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(20_000);
  return {
    context: browser,
    page,
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Serves a fetch handler (the gateway app) on a free port of 127.0.0.1. */
export async function serveOnPort(fetch: (req: Request) => Response | Promise<Response>) {
  const server = serve({ fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((ok) => server.once('listening', ok));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

/** Saves a screenshot under POSTHORN_SCREENSHOTS_DIR (docs/screenshots) when that is set. */
export async function screenshot(page: Page, name: string, width = 1280) {
  const dir = process.env.POSTHORN_SCREENSHOTS_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.setViewportSize({ width, height: width < 600 ? 844 : 800 });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: width >= 600 });
  await page.setViewportSize({ width: 1280, height: 800 });
}
