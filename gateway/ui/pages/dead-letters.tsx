/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// /ui/dead-letters: failed tasks (retries used up or not retryable), filtered by label and
// queue, replayed one at a time or all matching a filter, REPLAY_ALL_MAX per click.
import type { Context, Hono } from 'hono';
import { listTasks } from '../../api/task-queries.ts';
import type { Principal } from '../../auth.ts';
import { Action, Csrf, ErrorBox, Pager, page, qs } from '../components.tsx';
import type { UiDeps, UiEnv, UiPage } from '../env.ts';
import { formFields, needs } from '../forms.ts';
import { readFilters, TaskTable } from './task-list.tsx';

/** One click replays at most this many: a few seconds of work, and a mistake stays bounded. */
export const REPLAY_ALL_MAX = 1000;
/** Replays in flight at once, well under the gateway's pool of 10 connections. */
const REPLAY_CONCURRENCY = 8;

const describe = (f: { label?: string; queue?: string }) =>
  [f.label ? `label "${f.label}"` : null, f.queue ? `queue "${f.queue}"` : null].filter(Boolean).join(' and ') || 'any label and queue';

function Filters({ given }: { given: { label?: string; queue?: string } }) {
  return (
    <form method="get" action="/ui/dead-letters" class="filters">
      <label>
        Label
        <input name="label" value={given.label ?? ''} size={16} />
      </label>
      <label>
        Queue
        <input name="queue" value={given.queue ?? ''} size={12} />
      </label>
      <button type="submit">Filter</button>
      <a href="/ui/dead-letters">Clear</a>
    </form>
  );
}

/** The form behind "Replay all matching"; without the script it leads to a confirmation page first. */
function ReplayAll({ c, f, confirmed }: { c: Context<UiEnv>; f: { label?: string; queue?: string }; confirmed: boolean }) {
  return (
    <form
      method="post"
      action="/ui/dead-letters/replay-all"
      class="inline"
      data-confirm={confirmed ? undefined : `Replay up to ${REPLAY_ALL_MAX} failed tasks with ${describe(f)}?`}
    >
      <Csrf c={c} />
      <input type="hidden" name="label" value={f.label ?? ''} />
      <input type="hidden" name="queue" value={f.queue ?? ''} />
      <input type="hidden" name="confirmed" value={confirmed ? '1' : ''} />
      <button type="submit" class="primary">
        {confirmed ? `Yes, replay up to ${REPLAY_ALL_MAX}` : 'Replay all matching'}
      </button>
    </form>
  );
}

async function listPage(c: Context<UiEnv>, deps: UiDeps) {
  const f = readFilters(c, { status: 'failed' });
  const { label, queue, cursor } = f.given;
  const filters = { label, queue };
  const canWrite = c.get('session').principal.role !== 'read';
  const head = (
    <>
      <h1>Dead letters</h1>
      <p class="muted">
        Failed tasks: retries used up, or an answer that is not retried. Replaying runs a task again with a fresh set of retries.
      </p>
      <Filters given={filters} />
    </>
  );
  if (!f.query) return page(c, 'Dead letters', [head, <ErrorBox errors={f.errors} />], { status: 400 });
  const result = await listTasks(deps.sql, c.get('session').principal.teamId, f.query);
  return page(
    c,
    'Dead letters',
    <>
      {head}
      {canWrite && result.data.length ? (
        <div class="toolbar">
          <ReplayAll c={c} f={filters} confirmed={false} />
          <span class="muted">{`every failed task with ${describe(filters)}, up to ${REPLAY_ALL_MAX} per click`}</span>
        </div>
      ) : null}
      <TaskTable
        rows={result.data}
        now={deps.now()}
        actions={canWrite ? (t) => <Action c={c} action={`/ui/dead-letters/${t.id}/replay`} label="Replay" fields={filters} /> : undefined}
      />
      <Pager base="/ui/dead-letters" filters={filters} next={result.next_cursor} paged={cursor !== undefined} />
    </>,
  );
}

/** Replays failed tasks matching the filter, newest first, through the API's replay route. */
async function replayMatching(deps: UiDeps, principal: Principal, filter: { label?: string; queue?: string }): Promise<number> {
  let replayed = 0;
  let after: string | undefined;
  while (replayed < REPLAY_ALL_MAX) {
    const limit = Math.min(200, REPLAY_ALL_MAX - replayed);
    const page = await listTasks(deps.sql, principal.teamId, { ...filter, status: 'failed', limit, after });
    for (let i = 0; i < page.data.length; i += REPLAY_CONCURRENCY) {
      const ids = page.data.slice(i, i + REPLAY_CONCURRENCY).map((t) => t.id as string);
      const results = await Promise.allSettled(ids.map((id) => deps.api(principal, 'POST', `/tasks/${id}/replay`)));
      // A task replayed or canceled meanwhile by someone else answers 409: not counted, not an error.
      for (const r of results) {
        if (r.status === 'fulfilled') replayed++;
        else if ((r.reason as { code?: string }).code !== 'conflict') throw r.reason;
      }
    }
    if (!page.next_cursor) break;
    after = page.data.at(-1)!.id;
  }
  return replayed;
}

export const deadLettersPage: UiPage = {
  path: '/dead-letters',
  label: 'Dead letters',
  role: 'read',
  mount(app: Hono<UiEnv>, deps: UiDeps) {
    app.get('/dead-letters', (c) => listPage(c, deps));

    app.post('/dead-letters/replay-all', needs('write'), async (c) => {
      const form = await formFields(c);
      const filter = { label: form.label?.trim() || undefined, queue: form.queue?.trim() || undefined };
      if (form.confirmed !== '1') {
        return page(
          c,
          'Replay all matching',
          <>
            <h1>Replay all matching?</h1>
            <p>{`This replays up to ${REPLAY_ALL_MAX} failed tasks with ${describe(filter)}, newest first.`}</p>
            <div class="toolbar">
              <ReplayAll c={c} f={filter} confirmed />
              <a href={`/ui/dead-letters${qs(filter)}`}>Back</a>
            </div>
          </>,
        );
      }
      const n = await replayMatching(deps, c.get('session').principal, filter);
      return c.redirect(`/ui/dead-letters${qs({ ...filter, replayed: String(n) })}`, 303);
    });

    app.post('/dead-letters/:id/replay', needs('write'), async (c) => {
      const form = await formFields(c);
      const filter = { label: form.label || undefined, queue: form.queue || undefined };
      const ok = await deps
        .api(c.get('session').principal, 'POST', `/tasks/${encodeURIComponent(c.req.param('id'))}/replay`)
        .then(() => true)
        .catch((e) => {
          if (e.code === 'conflict') return false;
          throw e;
        });
      return c.redirect(`/ui/dead-letters${qs({ ...filter, ...(ok ? { replayed: '1' } : { notice: 'not-replayable' }) })}`, 303);
    });
  },
};
