// The web UI pages for monitors and inbound endpoints: signed in with a key, create one through
// the form, see it listed, pause/disable it, replay an endpoint event; a read key sees no forms.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness } from './helpers/harness.ts';
import { uiClient } from './helpers/ui.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.close();
});

describe('/ui/monitors', () => {
  it('creates a monitor through the form, lists it with its ping URL, pauses it; a bad form is a 400 naming the field', async () => {
    const ui = uiClient(h.app);
    await ui.signIn(h.team.keys.write);
    const csrf = await ui.csrf('/ui/monitors');
    const bad = await ui.post('/ui/monitors', { _csrf: csrf, name: 'x', cron: 'not cron' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('cron');
    const ok = await ui.post('/ui/monitors', { _csrf: csrf, name: 'ui-backup', interval_seconds: '3600', grace_seconds: '60' });
    expect([ok.status, ok.location]).toEqual([303, '/ui/monitors?notice=monitor-created']);
    const { body } = await h.api('GET', '/api/v1/monitors');
    const m = body.data.find((x: { name: string }) => x.name === 'ui-backup');
    const list = await ui.get('/ui/monitors');
    expect(list.text).toContain('ui-backup');
    expect(list.text).toContain(m.ping_url);
    expect(list.text).toContain('every 1 h');
    const paused = await ui.post(`/ui/monitors/${m.id}/pause`, { _csrf: csrf });
    expect(paused.status).toBe(303);
    expect((await h.api('GET', `/api/v1/monitors/${m.id}`)).body.paused).toBe(true);
    expect((await ui.get('/ui/monitors')).text).toContain('Resume');
  });

  it('a read key sees the list without forms or actions', async () => {
    const ui = uiClient(h.app);
    await ui.signIn(h.team.keys.read);
    const page = await ui.get('/ui/monitors');
    expect(page.status).toBe(200);
    expect(page.text).toContain('ui-backup');
    expect(page.text).not.toContain('Create monitor');
    expect(page.text).not.toContain('Resume');
  });
});

describe('/ui/endpoints', () => {
  it('creates an endpoint, shows its inbound URL, lists its events with their task and replays one', async () => {
    const ui = uiClient(h.app);
    await ui.signIn(h.team.keys.admin);
    const csrf = await ui.csrf('/ui/endpoints');
    const created = await ui.post('/ui/endpoints', {
      _csrf: csrf,
      name: 'ui-hooks',
      forward_url: 'https://example.com/in',
      max_retries: '2',
    });
    expect([created.status, created.location]).toEqual([303, '/ui/endpoints?notice=endpoint-created']);
    const ep = (await h.api('GET', '/api/v1/endpoints')).body.data.find((e: { name: string }) => e.name === 'ui-hooks');
    expect((await ui.get('/ui/endpoints')).text).toContain(ep.inbound_url);
    const received = await h.app.request(`${ep.inbound_url}?from=ui`, {
      method: 'POST',
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    expect(received.status).toBe(202);
    const { id: eventId } = (await received.json()) as { id: string };
    const events = await ui.get(`/ui/endpoints/${ep.id}`);
    expect(events.status).toBe(200);
    expect(events.text).toContain('POST ?from=ui');
    expect(events.text).toContain('5 bytes');
    const replay = await ui.post(`/ui/endpoints/${ep.id}/events/${eventId}/replay`, { _csrf: csrf });
    expect([replay.status, replay.location]).toEqual([303, `/ui/endpoints/${ep.id}?notice=event-replayed`]);
    const disabled = await ui.post(`/ui/endpoints/${ep.id}/disable`, { _csrf: csrf });
    expect(disabled.status).toBe(303);
    expect((await h.app.request(ep.inbound_url, { method: 'POST', body: 'x' })).status).toBe(404);
    expect((await ui.get('/ui/endpoints/00000000-0000-7000-8000-000000000000')).status).toBe(404);
  });
});
