// Channels and the notifier against real receivers: an SMTP server, HTTP sinks standing in for
// Slack's and Discord's incoming webhooks, and a webhook receiver that verifies with
// standardwebhooks. The 10-minute window and the digest run on a clock the test controls
// (runOnce(now)); no sleeps.
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../shared/config.ts';
import { WINDOW_MS } from '../worker/notify/fold.ts';
import { startHarness } from './helpers/harness.ts';
import { startSmtp, testNotifier } from './helpers/notify.ts';
import { startSink } from './helpers/sink.ts';

type Harness = Awaited<ReturnType<typeof startHarness>>;
type Sink = Awaited<ReturnType<typeof startSink>>;

let h: Harness;
let strict: Harness;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let slack: Sink;
let discord: Sink;
let hook: Sink;
let notifier: ReturnType<typeof testNotifier>;
const PUBLIC_URL = 'https://posthorn.example.com';
const ORIGIN = 'https://api.example.com';

beforeAll(async () => {
  [h, strict, smtp, slack, discord, hook] = await Promise.all([
    startHarness(),
    startHarness({ allowPrivate: false }),
    startSmtp(),
    startSink(),
    startSink(),
    startSink(),
  ]);
  notifier = testNotifier(h.sql, { smtpUrl: smtp.url, publicUrl: PUBLIC_URL });
});
afterAll(async () => {
  await notifier?.close();
  await Promise.all([h?.close(), strict?.close(), smtp?.close(), slack?.close(), discord?.close(), hook?.close()]);
});

async function channel(type: string, target: string, events: string[] = ['task.failed']) {
  const r = await h.api('POST', '/api/v1/channels', { type, target, events });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}

/**
 * n failed tasks for one origin as task.failed events, written the way the completer writes
 * them: one event per completion batch and subject, `perEvent` tasks each (data.count).
 */
async function failTasks(n: number, subject = ORIGIN, perEvent = 1) {
  await h.sql`
    insert into events (team_id, type, subject, data)
    select ${h.team.teamId}, 'task.failed', ${subject},
      jsonb_build_object('task_id', 'task-' || i, 'origin', ${subject}::text, 'attempts', 4, 'outcome', 'http_error',
        'status_code', 503, 'error', 'upstream down', 'count', least(${perEvent}::int, ${n}::int - (i - 1) * ${perEvent}::int))
    from generate_series(1, ceil(${n}::numeric / ${perEvent}::int)::int) i`;
}

describe('channels API', () => {
  it('creates, lists and deletes channels; refuses bad input with 400 and changes nothing', async () => {
    const id = await channel('slack', `${slack.url}/api-test`, ['task.failed', 'schedule.failed']);
    const list = await h.api('GET', '/api/v1/channels');
    expect(list.status).toBe(200);
    expect(list.body.next_cursor).toBeNull();
    expect(list.body.data.find((c: { id: string }) => c.id === id)).toMatchObject({
      type: 'slack',
      target: `${slack.url}/api-test`,
      events: ['task.failed', 'schedule.failed'],
    });

    const bad = [
      { type: 'pager', target: slack.url, events: ['task.failed'] },
      { type: 'slack', target: 'ftp://example.com/x', events: ['task.failed'] },
      { type: 'slack', target: 'https://u:p@example.com/x', events: ['task.failed'] },
      { type: 'email', target: 'not an address', events: ['task.failed'] },
      { type: 'email', target: 'a@b.example\r\nBcc: x@y.example', events: ['task.failed'] },
      { type: 'slack', target: slack.url, events: [] },
      { type: 'slack', target: slack.url, events: ['task.exploded'] },
      { type: 'slack', target: slack.url, events: ['task.failed', 'task.failed'] },
      { type: 'slack', target: slack.url, events: ['task.failed'], extra: 1 },
    ];
    for (const body of bad) {
      const r = await h.api('POST', '/api/v1/channels', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.body.code).toBe('validation_failed');
    }
    expect((await h.api('GET', '/api/v1/channels')).body.data).toHaveLength(list.body.data.length);

    expect((await h.api('DELETE', `/api/v1/channels/${id}`)).status).toBe(204);
    expect((await h.api('DELETE', `/api/v1/channels/${id}`)).status).toBe(404);
    expect((await h.api('GET', `/api/v1/channels/${id}/deliveries`)).status).toBe(404);
    expect((await h.api('GET', '/api/v1/channels/not-a-uuid/deliveries')).status).toBe(404);
  });

  it('needs the admin role', async () => {
    const r = await h.api(
      'POST',
      '/api/v1/channels',
      { type: 'slack', target: slack.url, events: ['task.failed'] },
      { key: h.team.keys.write },
    );
    expect(r.status).toBe(403);
    expect((await h.api('GET', '/api/v1/channels', undefined, { key: h.team.keys.read })).status).toBe(403);
  });

  it("another team's channel is a 404 on every route", async () => {
    const mine = await h.api('POST', '/api/v1/channels', { type: 'discord', target: `${discord.url}/iso`, events: ['task.failed'] });
    const other = await strict.api('POST', '/api/v1/channels', {
      type: 'slack',
      target: 'https://hooks.slack.example/x',
      events: ['task.failed'],
    });
    expect(other.status).toBe(201);
    // strict's team lives in another database; use h's channel id with a key of a second team in h's database.
    const [team] = await h.sql`insert into teams (slug, name) values ('other-team', 'other') returning id`;
    const { createKey } = await import('../shared/keys.ts');
    const key = (await createKey(h.sql, String(team!.id), 'admin', 'admin')).key;
    for (const [method, path] of [
      ['GET', `/api/v1/channels/${mine.body.id}`],
      ['GET', `/api/v1/channels/${mine.body.id}/deliveries`],
      ['POST', `/api/v1/channels/${mine.body.id}/test`],
      ['DELETE', `/api/v1/channels/${mine.body.id}`],
    ] as const) {
      expect((await h.api(method, path, undefined, { key })).status, `${method} ${path}`).toBe(404);
    }
    expect((await h.api('GET', '/api/v1/channels', undefined, { key })).body.data).toEqual([]);
    expect((await h.api('GET', `/api/v1/channels/${mine.body.id}`)).status).toBe(200);
    expect((await h.api('DELETE', `/api/v1/channels/${mine.body.id}`)).status).toBe(204);
  });

  it('refuses literal private targets and localhost names with 400 target_not_allowed', async () => {
    for (const target of [
      'http://127.0.0.1:9/x',
      'http://localhost/x',
      'http://169.254.169.254/latest',
      'http://[::1]/x',
      'http://10.0.0.8/x',
    ]) {
      const r = await strict.api('POST', '/api/v1/channels', { type: 'webhook', target, events: ['task.failed'] });
      expect(r.status, target).toBe(400);
      expect(r.body.code).toBe('target_not_allowed');
      expect(r.body.errors[0].path).toBe('target');
    }
    expect((await strict.api('GET', '/api/v1/channels')).body.data.some((c: { target: string }) => c.target.includes('127.0.0.1'))).toBe(
      false,
    );
  });
});

describe('configuration', () => {
  it('takes smtp:// and smtps:// URLs and an http(s) public URL, and names the variable when wrong', () => {
    const c = parseConfig({ POSTHORN_SMTP_URL: 'smtps://u:p@mail.example.com:465', POSTHORN_PUBLIC_URL: 'https://ph.example.com/' });
    expect(c.smtpUrl).toBe('smtps://u:p@mail.example.com:465');
    expect(c.publicUrl).toBe('https://ph.example.com');
    expect(parseConfig({ POSTHORN_SMTP_URL: 'smtp://127.0.0.1:2525' }).smtpUrl).toBe('smtp://127.0.0.1:2525');
    expect(() => parseConfig({ POSTHORN_SMTP_URL: 'http://mail.example.com' })).toThrow(/POSTHORN_SMTP_URL/);
    expect(() => parseConfig({ POSTHORN_PUBLIC_URL: 'ftp://x.example' })).toThrow(/POSTHORN_PUBLIC_URL/);
  });
});

describe('the notifier', () => {
  it('10,000 failed tasks to one origin: each channel gets one message at once and one digest at the window end', async () => {
    const slackId = await channel('slack', `${slack.url}/fold`);
    const discordId = await channel('discord', `${discord.url}/fold`);
    const hookId = await channel('webhook', `${hook.url}/fold`);
    await channel('email', 'ops@example.com');
    // A channel for other events hears nothing of task.failed.
    await channel('slack', `${slack.url}/schedules-only`, ['schedule.failed']);
    const at = (path: string) =>
      slack.received.filter((r) => r.path === path).length + discord.received.filter((r) => r.path === path).length;

    const t0 = new Date('2030-01-01T10:00:00Z');
    // 10,000 tasks failing within a minute: 50 completion batches of 200, each one event.
    await failTasks(10_000, ORIGIN, 200);
    const first = await notifier.runOnce(t0);
    expect(first.events).toBe(50);
    expect(first.sent).toBe(4);
    expect(at('/fold')).toBe(2);
    expect(hook.received.filter((r) => r.path === '/fold')).toHaveLength(1);
    expect(smtp.mails).toHaveLength(1);
    expect(at('/schedules-only')).toBe(0);

    // Slack: {"text"} in mrkdwn with a <url|text> link to the task.
    const s = JSON.parse(slack.received.find((r) => r.path === '/fold')!.body);
    expect(Object.keys(s)).toEqual(['text']);
    expect(s.text).toContain('*Task failed*');
    expect(s.text).toMatch(/Task task-\d+ to https:\/\/api\.example\.com failed after 4 attempts\./);
    expect(s.text).toContain('Last outcome: HTTP 503 (http_error): upstream down');
    expect(s.text).toMatch(/<https:\/\/posthorn\.example\.com\/ui\/tasks\/task-\d+\|Open the task>/);
    // Discord: {"content"} in Discord markdown, mentions disabled.
    const d = JSON.parse(discord.received.find((r) => r.path === '/fold')!.body);
    expect(d.content).toContain('**Task failed**');
    expect(d.content).toMatch(/\[Open the task\]\(<https:\/\/posthorn\.example\.com\/ui\/tasks\/task-\d+>\)/);
    expect(d.allowed_mentions).toEqual({ parse: [] });
    // Webhook: the JSON event, signed with the team's whsec_ secret (Standard Webhooks).
    const secret = (await h.api('GET', '/api/v1/signing-keys')).body.current;
    const w = hook.received.find((r) => r.path === '/fold')!;
    const event = new Webhook(secret).verify(w.body, w.headers as Record<string, string>) as Record<string, any>;
    expect(Object.keys(event).sort()).toEqual(['data', 'occurred_at', 'subject', 'team', 'type']);
    expect(event).toMatchObject({ type: 'task.failed', team: h.team.slug, subject: ORIGIN });
    expect(event.data).toMatchObject({ origin: ORIGIN, status_code: 503, outcome: 'http_error' });
    // E-mail: through the SMTP server, with a plain-text part.
    const mail = smtp.mails[0]!;
    expect(mail.envelopeTo).toEqual(['ops@example.com']);
    expect(mail.subject).toBe(`[Posthorn] Task failed: ${ORIGIN}`);
    expect(mail.text).toContain('Last outcome: HTTP 503 (http_error): upstream down');
    expect(mail.text).toMatch(/Open the task: https:\/\/posthorn\.example\.com\/ui\/tasks\/task-\d+/);

    // More failures inside the window (one task per event, too): held, nothing sent.
    await failTasks(500);
    expect((await notifier.runOnce(new Date(t0.getTime() + 5 * 60_000))).sent).toBe(0);
    expect((await notifier.runOnce(new Date(t0.getTime() + WINDOW_MS - 1))).sent).toBe(0);
    expect(at('/fold')).toBe(2);

    // The window ends: one digest per channel summing up the 10,499 held back.
    const end = new Date(t0.getTime() + WINDOW_MS);
    expect((await notifier.runOnce(end)).sent).toBe(4);
    const digest = JSON.parse(slack.received.filter((r) => r.path === '/fold')[1]!.body).text;
    expect(digest).toContain('and 10499 more tasks to https://api.example.com failed in the last 10 minutes.');
    const dd = JSON.parse(discord.received.filter((r) => r.path === '/fold')[1]!.body).content;
    expect(dd).toContain('and 10499 more tasks to https://api.example.com failed');
    const wd = hook.received.filter((r) => r.path === '/fold')[1]!;
    const wdEvent = new Webhook(secret).verify(wd.body, wd.headers as Record<string, string>) as Record<string, any>;
    expect(wdEvent.data.digest).toMatchObject({ count: 10_499, window_end: end.toISOString() });
    expect(smtp.mails[1]!.text).toContain('and 10499 more tasks');

    // The digest starts the next window: nothing more for 10 minutes, however often it runs.
    await failTasks(3);
    expect((await notifier.runOnce(new Date(end.getTime() + 60_000))).sent).toBe(0);
    expect((await notifier.runOnce(new Date(end.getTime() + WINDOW_MS))).sent).toBe(4); // digest of those 3
    expect(JSON.parse(slack.received.filter((r) => r.path === '/fold')[2]!.body).text).toContain('and 3 more tasks');
    // A quiet window ends without a message; the next failure is news again and goes at once.
    expect((await notifier.runOnce(new Date(end.getTime() + 2 * WINDOW_MS + 1))).sent).toBe(0);
    await failTasks(1);
    expect((await notifier.runOnce(new Date(end.getTime() + 2 * WINDOW_MS + 2))).sent).toBe(4);
    expect(JSON.parse(slack.received.filter((r) => r.path === '/fold')[3]!.body).text).toContain('*Task failed*');

    // Another origin is another subject: its own first message, not folded into this window.
    await failTasks(2, 'https://other.example.com');
    expect((await notifier.runOnce(new Date(end.getTime() + 2 * WINDOW_MS + 3))).sent).toBe(4);

    const deliveries = await h.api('GET', `/api/v1/channels/${slackId}/deliveries`);
    expect(deliveries.status).toBe(200);
    expect(deliveries.body.data.map((x: { kind: string }) => x.kind)).toEqual(['event', 'event', 'digest', 'digest', 'event']);
    expect(deliveries.body.data.every((x: { status: string; outcome: string }) => x.status === 'sent' && x.outcome === 'success')).toBe(
      true,
    );
    for (const id of [discordId, hookId]) expect((await h.api('GET', `/api/v1/channels/${id}/deliveries`)).body.data).toHaveLength(5);
    expect(Number((await h.sql`select count(*) from events where dispatched_at is null`)[0]!.count)).toBe(0);
    for (const id of [slackId, discordId, hookId]) await h.api('DELETE', `/api/v1/channels/${id}`);
    await h.sql`delete from channels where type = 'email'`;
  });

  it('retries a failed send with backoff, records every attempt, and gives up on a 4xx', async () => {
    let answer = 503;
    const flaky = await startSink(() => ({ status: answer, body: 'busy' }));
    try {
      const okId = await channel('slack', `${flaky.url}/retry`);
      const t0 = new Date('2031-01-01T00:00:00Z');
      await failTasks(1, 'https://retry.example.com');
      expect(await notifier.runOnce(t0)).toMatchObject({ sent: 0, failed: 1 });
      let [d] = (await h.api('GET', `/api/v1/channels/${okId}/deliveries`)).body.data;
      expect(d).toMatchObject({ status: 'retrying', outcome: 'http_error', attempts: 1, last_status_code: 503 });
      expect(d.next_attempt_at).toBe(new Date(t0.getTime() + 10_000).toISOString());
      // Not before its time.
      expect((await notifier.runOnce(new Date(t0.getTime() + 9_999))).failed).toBe(0);
      expect(flaky.received).toHaveLength(1);
      answer = 200;
      expect((await notifier.runOnce(new Date(t0.getTime() + 10_000))).sent).toBe(1);
      [d] = (await h.api('GET', `/api/v1/channels/${okId}/deliveries`)).body.data;
      expect(d).toMatchObject({ status: 'sent', outcome: 'success', attempts: 2 });
      expect(d.history.map((x: { outcome: string }) => x.outcome)).toEqual(['http_error', 'success']);

      answer = 404;
      await failTasks(1, 'https://gone.example.com');
      expect((await notifier.runOnce(new Date(t0.getTime() + 20_000))).failed).toBe(1);
      [d] = (await h.api('GET', `/api/v1/channels/${okId}/deliveries`)).body.data;
      expect(d).toMatchObject({ status: 'failed', attempts: 1, last_status_code: 404 });
      expect((await notifier.runOnce(new Date(t0.getTime() + 3_600_000))).failed).toBe(0);
      await h.api('DELETE', `/api/v1/channels/${okId}`);
    } finally {
      await flaky.close();
    }
  });

  it('POST /channels/:id/test queues a test message the next pass sends', async () => {
    const id = await channel('discord', `${discord.url}/test-msg`);
    const r = await h.api('POST', `/api/v1/channels/${id}/test`);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ kind: 'test', status: 'pending' });
    expect((await notifier.runOnce(new Date(Date.now() + 1000))).sent).toBe(1);
    const got = discord.received.filter((x) => x.path === '/test-msg');
    expect(got).toHaveLength(1);
    expect(JSON.parse(got[0]!.body).content).toContain('**Test notification**');
    expect((await h.api('GET', `/api/v1/channels/${id}/deliveries`)).body.data[0]).toMatchObject({ kind: 'test', status: 'sent' });
    await h.api('DELETE', `/api/v1/channels/${id}`);
  });

  it('two notifiers running at once send each message once', async () => {
    const id = await channel('slack', `${slack.url}/race`);
    const other = testNotifier(h.sql, { publicUrl: PUBLIC_URL });
    try {
      const t0 = new Date('2032-01-01T00:00:00Z');
      for (let i = 0; i < 5; i++) {
        await failTasks(20, `https://race-${i}.example.com`);
        await h.api('POST', `/api/v1/channels/${id}/test`);
        await Promise.all([notifier.runOnce(t0), other.runOnce(t0)]);
      }
      expect(slack.received.filter((x) => x.path === '/race')).toHaveLength(10);
      const sent = (await h.api('GET', `/api/v1/channels/${id}/deliveries`)).body.data;
      expect(sent).toHaveLength(10);
      expect(sent.every((x: { attempts: number }) => x.attempts === 1)).toBe(true);
    } finally {
      await other.close();
      await h.api('DELETE', `/api/v1/channels/${id}`);
    }
  });
});
