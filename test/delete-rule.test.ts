// One rule for DELETE (docs/api.md): DELETE removes something, and something already gone
// answers 404 `not_found` (keys, schedules, the previous signing key). DELETE /tasks/:id is a
// cancel, not a removal: the task stays, and cancelling a finished one (canceled included)
// answers 409 `conflict`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness } from './helpers/harness.ts';

let h: Awaited<ReturnType<typeof startHarness>>;
beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h.close();
});

describe('DELETE twice', () => {
  it('a key: 204, then 404', async () => {
    const k = (await h.api('POST', '/api/v1/keys', { name: 'temp', role: 'read' })).body;
    expect((await h.api('DELETE', `/api/v1/keys/${k.id}`)).status).toBe(204);
    const again = await h.api('DELETE', `/api/v1/keys/${k.id}`);
    expect(again.status).toBe(404);
    expect(again.body.code).toBe('not_found');
    expect(again.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('a schedule: 204, then 404', async () => {
    const s = await h.api('POST', '/api/v1/schedules', { name: 'nightly', cron: '0 3 * * *', url: 'http://127.0.0.1:9/x' });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    expect((await h.api('DELETE', `/api/v1/schedules/${s.body.id}`)).status).toBe(204);
    const again = await h.api('DELETE', `/api/v1/schedules/${s.body.id}`);
    expect(again.status).toBe(404);
    expect(again.body.code).toBe('not_found');
  });

  it('the previous signing key: 204 after a rotation, then 404', async () => {
    expect((await h.api('POST', '/api/v1/signing-keys/rotate')).status).toBe(200);
    expect((await h.api('DELETE', '/api/v1/signing-keys/previous')).status).toBe(204);
    const again = await h.api('DELETE', '/api/v1/signing-keys/previous');
    expect(again.status).toBe(404);
    expect(again.body.code).toBe('not_found');
  });

  it('a task is cancelled, not removed: 200 canceled, then 409 conflict, and it is still there', async () => {
    const id = await h.enqueue({ url: 'http://127.0.0.1:9/later', delay: '1h' });
    const first = await h.api('DELETE', `/api/v1/tasks/${id}`);
    expect(first.status).toBe(200);
    expect(first.body.status).toBe('canceled');
    const again = await h.api('DELETE', `/api/v1/tasks/${id}`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('conflict');
    expect((await h.task(id)).status).toBe('canceled');
  });
});
