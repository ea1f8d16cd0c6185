// The status pages over plain HTTP (app.request): /ui/status for each role (Reset and the
// public switch for admins only, a read key's crafted POST refused), escaping of what a target
// answered, and /status/<token>: no sign-in, origins and states only, 404 once revoked.
// The browser test (live refresh through closed → open → closed) is test/status-browser.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BREAKER_SETTINGS } from '../worker/breaker.ts';
import { applyEvent } from '../worker/breaker-store.ts';
import { seedTeam } from './helpers/db.ts';
import { startHarness } from './helpers/harness.ts';
import { uiClient } from './helpers/ui.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
const OPEN = 'https://api.example.com:443';
const CLOSED = 'http://quiet.example:8080';
const SECRET_PATH = '/v1/customers/cus_4711/charge';
const EVIL = '<script>window.__x=1</script>';

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const t = h.team.teamId;
  await openIt();
  for (const [origin, failures, error] of [
    [OPEN, 12, `HTTP 503 ${EVIL}`],
    [CLOSED, 0, null],
  ] as const) {
    await h.sql`insert into circuit_hours (team_id, origin, hour, requests, failures, last_error, last_error_at)
      values (${t}, ${origin}, date_trunc('hour', now()), 12, ${failures}, ${error}, now())`;
    await h.sql`insert into circuit_endpoints (team_id, origin, path, hour, requests, successes, last_status, last_outcome, last_attempt_at)
      values (${t}, ${origin}, ${origin === OPEN ? SECRET_PATH : '/ping<b>'}, date_trunc('hour', now()), 12, ${12 - failures},
              ${failures ? 503 : 200}, ${failures ? 'http_error' : 'success'}, now())`;
  }
});
afterAll(async () => h?.close());

/** 12 failures of 12 in the last minute: the breaker opens (as a worker would report them). */
async function openIt() {
  await h.sql`insert into circuit_buckets (team_id, origin, bucket, requests, failures) values (${h.team.teamId}, ${OPEN}, now(), 12, 12)`;
  const step = await applyEvent(h.sql, h.team.teamId, OPEN, { type: 'window', requests: 12, failures: 12 }, DEFAULT_BREAKER_SETTINGS);
  expect(step.after.state).toBe('open');
}

async function signedIn(role: 'read' | 'write' | 'admin') {
  const ui = uiClient(h.app);
  expect((await ui.signIn(h.team.keys[role])).status).toBe(303);
  return ui;
}
const resetButtons = (html: string) => (html.match(/action="\/ui\/status\/reset"/g) ?? []).length;
const stateOf = async (origin: string) =>
  ((await h.sql`select state from circuits where team_id = ${h.team.teamId} and origin = ${origin}`)[0]?.state as string) ?? 'closed';

describe('/ui/status', () => {
  it('shows every origin with its endpoints, state, rate, requests, error and a 24-cell strip, escaped', async () => {
    const ui = await signedIn('read');
    const r = await ui.get('/ui/status');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(r.text).not.toMatch(/<script>|style="|onclick=/i);
    expect(r.text).toContain('data-live="2"');
    // Open first, then by origin; both with their endpoint beneath.
    expect(r.text.indexOf(`data-origin="${OPEN}"`)).toBeLessThan(r.text.indexOf(`data-origin="${CLOSED}"`));
    expect(r.text).toContain(`↳ ${SECRET_PATH}`);
    expect(r.text).toContain('↳ /ping&lt;b&gt;');
    expect(r.text).toContain('HTTP 503 &lt;script&gt;window.__x=1&lt;/script&gt;');
    expect(r.text).not.toContain(EVIL);
    expect(r.text).toContain('100%');
    expect(r.text).toContain('12 (12 failed)');
    const origins = r.text.split('class="origin-row"').slice(1);
    expect(origins).toHaveLength(2);
    for (const row of origins) {
      const strip = row.slice(row.indexOf('class="strip"'), row.indexOf('</td>', row.indexOf('class="strip"')));
      expect(strip.match(/class="cell /g)).toHaveLength(24);
    }
    // The current hour of the open one is open, and says so in its title.
    expect(origins[0]).toMatch(/class="cell open" title="\d{4}-\d\d-\d\d \d\d:00 UTC: open, 12 requests, 12 failed"/);
    expect(r.text).toContain('Status</a>'); // in the navigation
  });

  it('a read key sees no Reset and no public switch, and its crafted POSTs are 403 and change nothing', async () => {
    const ui = await signedIn('read');
    const r = await ui.get('/ui/status');
    expect(resetButtons(r.text)).toBe(0);
    expect(r.text).not.toContain('/ui/status/public');
    const csrf = await ui.csrf('/ui/status');
    expect((await ui.post('/ui/status/reset', { _csrf: csrf, origin: OPEN })).status).toBe(403);
    expect((await ui.post('/ui/status/public', { _csrf: csrf, public: '1' })).status).toBe(403);
    expect(await stateOf(OPEN)).toBe('open');
    expect((await h.sql`select 1 from status_pages where team_id = ${h.team.teamId}`).length).toBe(0);
    const write = await signedIn('write');
    expect((await write.post('/ui/status/reset', { _csrf: await write.csrf('/ui/status'), origin: OPEN })).status).toBe(403);
    expect(await stateOf(OPEN)).toBe('open');
  });

  it('an admin resets an open origin (with CSRF), and a bad origin is shown, not a 500', async () => {
    const ui = await signedIn('admin');
    const page = await ui.get('/ui/status');
    expect(resetButtons(page.text)).toBe(1); // the open one only
    expect((await ui.post('/ui/status/reset', { origin: OPEN })).status).toBe(403); // no token
    expect(await stateOf(OPEN)).toBe('open');
    const csrf = await ui.csrf('/ui/status');
    const bad = await ui.post('/ui/status/reset', { _csrf: csrf, origin: 'http://x.example/path' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('expected an origin');
    expect((await ui.post('/ui/status/reset', { _csrf: csrf, origin: 'https://nowhere.example' })).status).toBe(404);
    const done = await ui.post('/ui/status/reset', { _csrf: csrf, origin: OPEN });
    expect([done.status, done.location]).toEqual([303, '/ui/status?done=reset']);
    expect(await stateOf(OPEN)).toBe('closed');
    expect(resetButtons((await ui.get('/ui/status?done=reset')).text)).toBe(0);
    // Re-open it for the public page below.
    await openIt();
  });
});

describe('/status/<token>', () => {
  it('an admin makes it public; anyone sees origins and states only; revoked, it is a 404', async () => {
    const ui = await signedIn('admin');
    const csrf = await ui.csrf('/ui/status');
    const on = await ui.post('/ui/status/public', { _csrf: csrf, public: '1' });
    expect([on.status, on.location]).toEqual([303, '/ui/status?done=public']);
    const admin = await ui.get('/ui/status');
    const url = /href="(\/status\/[A-Za-z0-9_-]{43})"/.exec(admin.text)?.[1];
    expect(url).toBeTruthy();

    const r = await h.app.request(url!); // no cookie, no key
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('referrer-policy')).toBe('same-origin');
    expect(r.headers.get('content-security-policy')).toContain("script-src 'self'");
    const text = await r.text();
    expect(text).toContain(`data-origin="${OPEN}"`);
    expect(text).toContain(`data-origin="${CLOSED}"`);
    expect(text).toContain('data-live="2"');
    expect(text.match(/class="cell /g)!.length).toBeGreaterThanOrEqual(48);
    expect(text).toMatch(/class="cell open" title="[^"]*UTC: open"/);
    // Nothing but origins and states: no path, error, count, form or navigation.
    for (const absent of [
      SECRET_PATH,
      'cus_4711',
      '/ping',
      'HTTP 503',
      'script&gt;',
      '12 failed',
      'requests',
      '<form',
      '/ui/tasks',
      'name="_csrf"',
    ]) {
      expect(text, absent).not.toContain(absent);
    }

    // Another team's page shows nothing of this one.
    const other = await seedTeam(h.sql);
    const otherUrl = (await h.api('PUT', '/api/v1/status-page', { public: true }, { key: other.keys.admin })).body.public_url;
    const otherText = await (await h.app.request(otherUrl)).text();
    expect(otherText).not.toContain(OPEN);

    const off = await ui.post('/ui/status/public', { _csrf: csrf, public: '0' });
    expect(off.location).toBe('/ui/status?done=private');
    const gone = await h.app.request(url!);
    expect(gone.status).toBe(404);
    expect(gone.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await gone.text()).not.toContain(OPEN);
    for (const bad of ['/status/nope', `/status/${'A'.repeat(43)}`, '/status/%00', '/status/']) {
      expect((await h.app.request(bad)).status, bad).toBe(404);
    }
  });
});
