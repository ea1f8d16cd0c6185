// The web UI over plain HTTP (app.request): sign-in and cookies, sessions stored hashed and
// ended by revocation, CSRF, roles enforced on the server, escaping, security headers, and
// every page and action against a real database. The browser test is test/ui-browser.test.ts.
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../gateway/app.ts';
import { createEnqueueBatcher } from '../gateway/enqueue-batcher.ts';
import { createGatewayLimits } from '../gateway/rate-limit.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { uiClient } from './helpers/ui.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
const target = 'http://127.0.0.1:9/hook'; // never called: no worker runs in this file

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => h?.close());

async function signedIn(role: 'read' | 'write' | 'admin') {
  const ui = uiClient(h.app);
  const r = await ui.signIn(h.team.keys[role]);
  expect(r.status).toBe(303);
  return ui;
}

const failTask = (id: string) => h.sql`update tasks set status = 'failed', finished_at = now() where id = ${id}`;
const statusOf = async (id: string) => (await h.sql`select status from tasks where id = ${id}`)[0]!.status as string;

describe('sign-in and sessions', () => {
  it('sends a visitor without a session to the sign-in page, and serves it with strict headers', async () => {
    const ui = uiClient(h.app);
    for (const path of ['/ui', '/ui/tasks', '/ui/tasks/00000000-0000-7000-8000-000000000000', '/ui/keys', '/ui/nowhere']) {
      const r = await ui.get(path);
      expect(r.status, path).toBe(303);
      expect(r.location, path).toBe('/ui/login');
    }
    const post = await ui.post('/ui/tasks/x/cancel', {});
    expect([post.status, post.location]).toEqual([303, '/ui/login']);

    const login = await ui.get('/ui/login');
    expect(login.status).toBe(200);
    expect(login.text).toContain('name="key"');
    const csp = login.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(login.headers.get('x-frame-options')).toBe('DENY');
    expect(login.headers.get('x-content-type-options')).toBe('nosniff');
    expect(login.headers.get('cache-control')).toBe('no-store');
    // Nothing inline: the one script and stylesheet are files (CSP would block anything else).
    expect(login.text).not.toMatch(/<script>|<style|style="|onclick=|onsubmit=/i);
  });

  it('signs in with a key: 303 to /ui, an HttpOnly Lax cookie, and only the token hash stored', async () => {
    const ui = uiClient(h.app);
    const r = await ui.signIn(h.team.keys.write);
    expect(r.status).toBe(303);
    expect(r.location).toBe('/ui');
    const cookie = r.headers.getSetCookie().find((c) => c.startsWith('posthorn_session='))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).not.toMatch(/Secure/);
    expect(r.text).not.toContain(h.team.keys.write);
    const token = ui.jar.get('posthorn_session')!;
    expect(token.length).toBeGreaterThanOrEqual(43);
    const rows = await h.sql`select * from ui_sessions where token_hash = ${createHash('sha256').update(token).digest()}`;
    expect(rows.length).toBe(1);
    expect(JSON.stringify(rows)).not.toContain(token);
    const home = await ui.get('/ui');
    expect([home.status, home.location]).toEqual([302, '/ui/tasks']);
    const tasks = await ui.get('/ui/tasks');
    expect(tasks.status).toBe(200);
    expect(tasks.text).toContain('<h1>Tasks</h1>');
    expect(tasks.text).not.toContain(h.team.keys.write);
  });

  it('marks the cookie Secure when the request came over HTTPS, directly or through a TLS proxy', async () => {
    const direct = uiClient(h.app, 'https://posthorn.example');
    const a = await direct.signIn(h.team.keys.read);
    expect(a.headers.getSetCookie().find((c) => c.startsWith('posthorn_session='))).toMatch(/Secure/);
    const proxied = uiClient(h.app);
    const form = await proxied.get('/ui/login');
    const token = /name="login_token" value="([^"]+)"/.exec(form.text)![1]!;
    const b = await proxied.post('/ui/login', { login_token: token, key: h.team.keys.read }, { 'x-forwarded-proto': 'https' });
    expect(b.headers.getSetCookie().find((c) => c.startsWith('posthorn_session='))).toMatch(/Secure/);
  });

  it('refuses a wrong key (401) and a sign-in form it did not hand out (403), making no session', async () => {
    const before = (await h.sql`select count(*)::int as n from ui_sessions`)[0]!.n;
    const ui = uiClient(h.app);
    const wrong = await ui.signIn(`ph_${'x'.repeat(40)}`);
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('not valid');
    expect(wrong.text).not.toContain('x'.repeat(40));
    const forged = await uiClient(h.app).post('/ui/login', { key: h.team.keys.admin });
    expect(forged.status).toBe(403);
    expect(forged.headers.getSetCookie().some((c) => c.startsWith('posthorn_session='))).toBe(false);
    expect((await h.sql`select count(*)::int as n from ui_sessions`)[0]!.n).toBe(before);
  });

  it('counts wrong keys towards the per-address failure limit: 429 after 20 in a minute, a right key still signs in', async () => {
    const app = createApp({
      sql: h.sql,
      batcher: createEnqueueBatcher(h.sql),
      logger: pino({ level: 'silent' }),
      maxBodyBytes: 1_048_576,
      limits: createGatewayLimits({ sql: h.sql, defaultLimit: null }),
    });
    const ui = uiClient(app);
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await ui.signIn(`ph_${'w'.repeat(39)}${i % 10}`)).status);
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    const refused = await ui.signIn(`ph_${'w'.repeat(40)}`);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await ui.signIn(h.team.keys.read)).status).toBe(303);
  });

  it('returns to the page that asked for sign-in, without putting it or the key in the URL', async () => {
    const ui = uiClient(h.app);
    expect((await ui.get('/ui/dead-letters?label=x')).location).toBe('/ui/login');
    const r = await ui.signIn(h.team.keys.read);
    expect(r.location).toBe('/ui/dead-letters?label=x');
  });

  it('ends sessions on sign-out, on expiry and when the key is revoked', async () => {
    const ui = await signedIn('write');
    const csrf = await ui.csrf();
    const out = await ui.post('/ui/logout', { _csrf: csrf });
    expect([out.status, out.location]).toEqual([303, '/ui/login']);
    expect((await ui.get('/ui/tasks')).location).toBe('/ui/login');

    const expiring = await signedIn('write');
    const hash = createHash('sha256').update(expiring.jar.get('posthorn_session')!).digest();
    await h.sql`update ui_sessions set expires_at = now() - interval '1 second' where token_hash = ${hash}`;
    expect((await expiring.get('/ui/tasks')).location).toBe('/ui/login');

    const made = await h.api('POST', '/api/v1/keys', { name: 'short-lived', role: 'write' });
    const ui2 = uiClient(h.app);
    expect((await ui2.signIn(made.body.key)).status).toBe(303);
    expect((await ui2.get('/ui/tasks')).status).toBe(200);
    expect((await h.api('DELETE', `/api/v1/keys/${made.body.id}`)).status).toBe(204);
    expect((await ui2.get('/ui/tasks')).location).toBe('/ui/login');
  });
});

describe('CSRF and roles', () => {
  it("refuses a POST without the session CSRF token, or with another session's, changing nothing", async () => {
    const id = await h.enqueue({ url: target, delay: '1h' });
    const ui = await signedIn('write');
    const other = await signedIn('write');
    const missing = await ui.post(`/ui/tasks/${id}/cancel`, {});
    expect(missing.status).toBe(403);
    expect(missing.text).toContain('CSRF');
    const foreign = await ui.post(`/ui/tasks/${id}/cancel`, { _csrf: await other.csrf() });
    expect(foreign.status).toBe(403);
    expect(await statusOf(id)).toBe('pending');
    const ok = await ui.post(`/ui/tasks/${id}/cancel`, { _csrf: await ui.csrf() });
    expect([ok.status, ok.location]).toEqual([303, `/ui/tasks/${id}?notice=canceled`]);
    expect(await statusOf(id)).toBe('canceled');
  });

  it('shows a read key no write buttons and refuses its crafted POSTs (403), even with a valid CSRF token', async () => {
    const pending = await h.enqueue({ url: target, delay: '1h', label: 'read-check' });
    const failed = await h.enqueue({ url: target, label: 'read-check' });
    await failTask(failed);
    const sched = await h.api('POST', '/api/v1/schedules', { name: 'read-check', cron: '0 3 * * *', url: target });
    const ui = await signedIn('read');
    const csrf = await ui.csrf();
    for (const path of [`/ui/tasks/${pending}`, `/ui/tasks/${failed}`, '/ui/dead-letters', '/ui/schedules']) {
      const page = await ui.get(path);
      expect(page.status, path).toBe(200);
      // The only form a read key gets is sign-out.
      expect(page.text.match(/method="post"/g), path).toEqual(['method="post"']);
      expect(page.text, path).not.toMatch(/>(Cancel|Replay|Replay all matching|Pause|Resume|Trigger|Create schedule)</);
    }
    expect((await ui.get('/ui/tasks')).text).not.toContain('>Keys<');
    expect((await ui.get('/ui/keys')).status).toBe(403);

    const attempts: [string, Record<string, string>][] = [
      [`/ui/tasks/${pending}/cancel`, {}],
      [`/ui/tasks/${failed}/replay`, {}],
      [`/ui/dead-letters/${failed}/replay`, {}],
      ['/ui/dead-letters/replay-all', { confirmed: '1' }],
      [`/ui/schedules/${sched.body.id}/pause`, {}],
      [`/ui/schedules/${sched.body.id}/trigger`, {}],
      ['/ui/schedules', { name: 'x', cron: '* * * * *', url: target }],
      ['/ui/keys', { role: 'admin' }],
      ['/ui/signing-keys/rotate', {}],
      ['/ui/signing-keys/reveal', {}],
    ];
    for (const [path, form] of attempts) {
      const r = await ui.post(path, { ...form, _csrf: csrf });
      expect(r.status, path).toBe(403);
      expect(r.text, path).not.toContain('whsec_');
    }
    expect(await statusOf(pending)).toBe('pending');
    expect(await statusOf(failed)).toBe('failed');
    const s = await h.api('GET', `/api/v1/schedules/${sched.body.id}`);
    expect(s.body.paused).toBe(false);
    expect((await h.sql`select count(*)::int as n from tasks where schedule_id = ${sched.body.id}`)[0]!.n).toBe(0);
    expect((await h.sql`select count(*)::int as n from schedules where name = 'x'`)[0]!.n).toBe(0);
  });

  it('keeps the keys page to admins: a write key gets 403 and no Keys link', async () => {
    const ui = await signedIn('write');
    expect((await ui.get('/ui/tasks')).text).not.toContain('>Keys<');
    expect((await ui.get('/ui/keys')).status).toBe(403);
    const r = await ui.post('/ui/keys', { role: 'admin', _csrf: await ui.csrf() });
    expect(r.status).toBe(403);
  });
});

describe('pages', () => {
  it('renders a task body holding HTML as text', async () => {
    const id = await h.enqueue({ url: target, body: '<script>alert(1)</script><img src=x onerror=alert(2)>', label: '<b>bold</b>' });
    const ui = await signedIn('read');
    const page = await ui.get(`/ui/tasks/${id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(page.text).not.toContain('<script>alert');
    expect(page.text).not.toContain('<img src=x');
    const list = await ui.get('/ui/tasks?label=%3Cb%3Ebold%3C%2Fb%3E');
    expect(list.text).toContain('&lt;b&gt;bold&lt;/b&gt;');
    expect(list.text).not.toContain('<b>bold');
  });

  it('filters tasks by label, status and queue and pages with the API cursor', async () => {
    const label = 'paging-check';
    const ids: string[] = [];
    for (let i = 0; i < 55; i++) ids.push(await h.enqueue({ url: target, label, queue: i % 2 ? 'odd' : 'even' }));
    await failTask(ids[0]!);
    const ui = await signedIn('read');
    const first = await ui.get(`/ui/tasks?label=${label}`);
    expect(first.status).toBe(200);
    const rowsOf = (html: string) => [...html.matchAll(/<a class="mono task-id" href="\/ui\/tasks\/([0-9a-f-]{36})"/g)].map((m) => m[1]);
    expect(rowsOf(first.text)).toEqual([...ids].reverse().slice(0, 50));
    const older = /href="(\/ui\/tasks\?[^"]*cursor=[^"]+)"/.exec(first.text)![1]!.replaceAll('&amp;', '&');
    expect(older).toContain(`label=${label}`);
    const second = await ui.get(older);
    expect(rowsOf(second.text)).toEqual([...ids].reverse().slice(50));
    expect(second.text).toContain('end of list');
    expect(rowsOf((await ui.get(`/ui/tasks?label=${label}&status=failed`)).text)).toEqual([ids[0]]);
    expect(rowsOf((await ui.get(`/ui/tasks?label=${label}&queue=odd`)).text).length).toBe(27);
    // Bad input is a 400 page, never a 500.
    for (const q of ['status=bogus', 'cursor=nope', 'schedule_id=1', `label=${'x'.repeat(200)}`]) {
      expect((await ui.get(`/ui/tasks?${q}`)).status, q).toBe(400);
    }
    expect((await ui.get('/ui/tasks/not-a-task')).status).toBe(404);
    expect((await ui.get(`/ui/tasks?id=${ids[3]}`)).location).toBe(`/ui/tasks/${ids[3]}`);
  });

  it("shows a task's attempts with the response, and cancels and replays through the API's rules", async () => {
    const id = await h.enqueue({ url: target, label: 'attempts-check', headers: { 'x-tenant': '42' } });
    await h.sql`
      insert into task_attempts (task_id, attempt, team_id, started_at, finished_at, duration_ms, outcome, status_code, response_headers, response_body)
      values (${id}, 1, ${h.team.teamId}, now() - interval '2 seconds', now() - interval '1 second', 1000, 'http_error', 503,
        ${h.sql.json({ 'retry-after': '5' })}, 'upstream down')`;
    await h.sql`update tasks set attempts = 1, status = 'failed', finished_at = now() where id = ${id}`;
    const ui = await signedIn('write');
    const page = await ui.get(`/ui/tasks/${id}`);
    expect(page.text).toContain('Attempt 1');
    expect(page.text).toContain('HTTP 503');
    expect(page.text).toContain('upstream down');
    expect(page.text).toContain('retry-after');
    expect(page.text).toContain('x-posthorn-attempt');
    expect(page.text).toContain('x-tenant');
    expect(page.text).toContain('1000 ms');
    expect(page.text).toContain('>Replay<');
    expect(page.text).not.toContain('>Cancel<');
    const csrf = await ui.csrf();
    const cancel = await ui.post(`/ui/tasks/${id}/cancel`, { _csrf: csrf });
    expect(cancel.location).toBe(`/ui/tasks/${id}?notice=finished`);
    const replay = await ui.post(`/ui/tasks/${id}/replay`, { _csrf: csrf });
    expect(replay.location).toBe(`/ui/tasks/${id}?notice=replayed`);
    expect(await statusOf(id)).toBe('pending');
    const again = await ui.post(`/ui/tasks/${id}/replay`, { _csrf: csrf });
    expect(again.location).toBe(`/ui/tasks/${id}?notice=not-replayable`);
    expect((await ui.get(again.location!)).text).toContain('Only failed or canceled tasks');
    // Another team's task is not found, through the same check the API makes.
    const other = await h.sql`insert into teams (slug, name) values ('ui-other', 'other') returning id`;
    const [foreign] = await h.sql`
      insert into tasks (id, team_id, status, url, method, run_at, max_retries, min_backoff_ms, max_backoff_ms, timeout_ms, finished_at)
      values (gen_random_uuid(), ${other[0]!.id}, 'failed', ${target}, 'POST', now(), 1, 1, 1, 1000, now()) returning id`;
    expect((await ui.get(`/ui/tasks/${foreign!.id}`)).status).toBe(404);
    expect((await ui.post(`/ui/tasks/${foreign!.id}/replay`, { _csrf: csrf })).status).toBe(404);
  });

  it('lists dead letters and replays all matching a filter, after a confirmation', async () => {
    const label = 'dlq-check';
    const mine: string[] = [];
    for (let i = 0; i < 4; i++) mine.push(await h.enqueue({ url: target, label }));
    const others = await h.enqueue({ url: target, label: 'dlq-other' });
    for (const id of [...mine, others]) await failTask(id);
    const ui = await signedIn('write');
    const page = await ui.get(`/ui/dead-letters?label=${label}`);
    expect(page.text).toContain('Replay all matching');
    for (const id of mine) expect(page.text).toContain(id);
    expect(page.text).not.toContain(others);
    const csrf = await ui.csrf();
    const ask = await ui.post('/ui/dead-letters/replay-all', { _csrf: csrf, label, queue: '' });
    expect(ask.status).toBe(200);
    expect(ask.text).toContain('Replay all matching?');
    expect(await statusOf(mine[0]!)).toBe('failed');
    const done = await ui.post('/ui/dead-letters/replay-all', { _csrf: csrf, label, queue: '', confirmed: '1' });
    expect(done.location).toBe(`/ui/dead-letters?label=${label}&replayed=4`);
    for (const id of mine) expect(await statusOf(id)).toBe('pending');
    expect(await statusOf(others)).toBe('failed');
    const one = await ui.post(`/ui/dead-letters/${others}/replay`, { _csrf: csrf, label: 'dlq-other' });
    expect(one.location).toBe('/ui/dead-letters?label=dlq-other&replayed=1');
    expect(await statusOf(others)).toBe('pending');
  });

  it("creates, pauses, resumes and triggers schedules, showing the next five runs and the API's refusals", async () => {
    const ui = await signedIn('write');
    const csrf = await ui.csrf('/ui/schedules');
    const bad = await ui.post('/ui/schedules', {
      _csrf: csrf,
      name: 'nightly',
      cron: '61 * * * *',
      url: target,
      body: '{',
      body_json: '1',
    });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('body: not valid JSON');
    const badCron = await ui.post('/ui/schedules', {
      _csrf: csrf,
      name: 'nightly',
      cron: '61 * * * *',
      url: target,
      timezone: 'Mars/Olympus',
    });
    expect(badCron.status).toBe(400);
    expect(badCron.text).toContain('cron:');
    expect(badCron.text).toContain('timezone:');
    expect(badCron.text).toContain('value="Mars/Olympus"'); // the form keeps what was typed

    const made = await ui.post('/ui/schedules', {
      _csrf: csrf,
      name: 'nightly-report',
      cron: '0 3 * * *',
      timezone: 'Europe/Oslo',
      method: 'PUT',
      url: target,
      headers: 'X-Report: daily\n',
      body: '{"kind":"daily"}',
      body_json: '1',
      label: 'report',
    });
    expect([made.status, made.location]).toEqual([303, '/ui/schedules?notice=schedule-created']);
    const [s] = await h.sql`select * from schedules where name = 'nightly-report'`;
    expect(s!.template).toMatchObject({ method: 'PUT', headers: { 'X-Report': 'daily' }, body: { kind: 'daily' }, label: 'report' });
    const list = await ui.get('/ui/schedules');
    const row = list.text.slice(list.text.indexOf('nightly-report'));
    expect(row.slice(0, row.indexOf('</tr>')).match(/<time /g)?.length).toBe(5);

    expect((await ui.post(`/ui/schedules/${s!.id}/pause`, { _csrf: csrf })).location).toBe('/ui/schedules?notice=paused');
    expect((await h.sql`select paused from schedules where id = ${s!.id}`)[0]!.paused).toBe(true);
    expect((await ui.get('/ui/schedules')).text).toContain('>Resume<');
    expect((await ui.post(`/ui/schedules/${s!.id}/resume`, { _csrf: csrf })).location).toBe('/ui/schedules?notice=resumed');
    const trig = await ui.post(`/ui/schedules/${s!.id}/trigger`, { _csrf: csrf });
    const [task] = await h.sql`select id from tasks where schedule_id = ${s!.id}`;
    expect(trig.location).toBe(`/ui/tasks/${task!.id}?notice=triggered`);
  });

  it('shows a new API key once, revokes keys, and rotates the signing secret', async () => {
    const ui = await signedIn('admin');
    const csrf = await ui.csrf('/ui/keys');
    const made = await ui.post('/ui/keys', { _csrf: csrf, name: 'deploy bot', role: 'write' });
    expect(made.status).toBe(200);
    expect(made.headers.get('cache-control')).toBe('no-store');
    const key = /<code>(ph_[A-Za-z0-9]+)<\/code>/.exec(made.text)![1]!;
    expect((await h.api('GET', '/api/v1/tasks', undefined, { key })).status).toBe(200);
    const later = await ui.get('/ui/keys');
    expect(later.text).toContain('deploy bot');
    expect(later.text).not.toContain(key);
    expect(later.text).not.toContain('whsec_A'); // secrets are shown by fingerprint only
    const [{ id }] = await h.sql`select id from api_keys where name = 'deploy bot'`;
    expect((await ui.post(`/ui/keys/${id}/revoke`, { _csrf: csrf })).location).toBe('/ui/keys?notice=revoked');
    expect((await h.sql`select revoked_at from api_keys where id = ${id}`)[0]!.revoked_at).not.toBeNull();
    // The gateway caches keys for 2 s (gateway/auth.ts), so the API refuses it within that.
    await waitFor(async () => (await h.api('GET', '/api/v1/tasks', undefined, { key })).status === 401, { what: 'revoked key refused' });
    expect((await ui.post('/ui/keys', { _csrf: csrf, role: 'owner' })).status).toBe(400);

    const before = (await h.api('GET', '/api/v1/signing-keys')).body.current;
    const rotated = await ui.post('/ui/signing-keys/rotate', { _csrf: csrf });
    const after = (await h.api('GET', '/api/v1/signing-keys')).body;
    expect(after.current).not.toBe(before);
    expect(after.previous).toBe(before);
    expect(rotated.text).toContain(after.current);
    expect(rotated.text).not.toContain(before);
  });

  it('serves its stylesheet and script without a session, cached by content hash', async () => {
    const ui = uiClient(h.app);
    const login = await ui.get('/ui/login');
    const href = /href="(\/ui\/assets\/ui\.css\?v=[0-9a-f]+)"/.exec(login.text)![1]!;
    const css = await ui.get(href);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toContain('text/css');
    expect(css.headers.get('cache-control')).toContain('immutable');
    const js = await ui.get('/ui/assets/ui.js');
    expect(js.headers.get('content-type')).toContain('javascript');
    expect((await ui.get('/ui/assets/nope.js')).status).toBe(404);
  });
});
