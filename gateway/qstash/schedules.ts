// /v2/schedules (docs/qstash.md) on the native schedules (docs/api.md §5): the same rows, the
// same scheduler. A schedule created here is flagged qstash (its ticks' tasks carry
// Upstash-Signature) and its QStash scheduleId is its name: the Upstash-Schedule-Id the caller
// chose (creating again with the same id replaces the schedule, as in QStash), else the row id.
import { Hono } from 'hono';
import { nextTick } from '../../shared/cron.ts';
import { dbNow, type JsonValue, type Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { isUuid, uuidv7 } from '../../shared/ids.ts';
import { type ScheduleInput, scheduleInputSchema } from '../../shared/schemas.ts';
import { refuseForbiddenTargets, type TargetCheck } from '../../shared/targets.ts';
import { checkBodySize, DEFAULT_RETRY, encodeBody } from '../../shared/tasks.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { parseOrThrow } from '../http.ts';
import { parseMessage } from './headers.ts';
import { bodyText, restOfPath } from './publish.ts';
import { parseAsQstash } from './store.ts';
import { type ScheduleRow, scheduleView } from './views.ts';

const SCHEDULE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** "CRON_TZ=Europe/Oslo 0 9 * * *" → the expression and its zone (QStash's way of naming one). */
export function splitCronTz(raw: string): { cron: string; timezone: string } {
  const m = /^CRON_TZ=(\S+)\s+(.+)$/.exec(raw.trim());
  return m ? { cron: m[2]!.trim(), timezone: m[1]! } : { cron: raw.trim(), timezone: 'UTC' };
}

export function qstashScheduleRoutes(deps: { sql: Sql; maxBodyBytes: number; checkTarget: TargetCheck }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();
  const view = (s: ScheduleRow) => scheduleView(s, DEFAULT_RETRY.max_retries);

  /** A schedule by its QStash id: a /v2 schedule's name, or any schedule's row id. */
  async function find(teamId: string, id: string): Promise<ScheduleRow | null> {
    const [row] = await sql<ScheduleRow[]>`
      select * from schedules
      where team_id = ${teamId} and ((qstash and name = ${id}) ${isUuid(id) ? sql`or id = ${id}` : sql``})
      order by qstash desc limit 1`;
    return row ?? null;
  }

  async function nextRunAt(cron: string, timezone: string, paused: boolean): Promise<string | null> {
    if (paused) return null;
    return nextTick(cron, timezone, await dbNow(sql))?.toISOString() ?? null;
  }

  app.post('/schedules/*', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    const parsed = parseMessage(restOfPath(c, '/schedules/'), c.req.raw.headers.entries(), await bodyText(c), 'schedule');
    const { cron, timezone } = splitCronTz(parsed.cron!);
    if (parsed.scheduleId !== undefined && !SCHEDULE_ID_RE.test(parsed.scheduleId))
      throw problem('validation_failed', 'Upstash-Schedule-Id: 1 to 128 letters, digits and _ . : - (starting with a letter or digit)');
    const id = parsed.scheduleId ?? uuidv7();
    const raw = { ...parsed.input, name: id, cron, timezone };
    const input: ScheduleInput = parseAsQstash(() => parseOrThrow(scheduleInputSchema, raw));
    parseAsQstash(() => refuseForbiddenTargets(input, deps.checkTarget));
    const size = checkBodySize(encodeBody(input.body).body, deps.maxBodyBytes);
    if (!size.ok) throw problem('payload_too_large', size.detail);
    const { name, cron: _c, timezone: _t, paused, notify: _n, ...template } = input;
    const next = await nextRunAt(input.cron, input.timezone, paused);
    await sql.begin(async (tx) => {
      // One schedule per QStash id and team, also when two creates with one id race.
      await tx`select pg_advisory_xact_lock(hashtext(${`qstash-schedule:${teamId}:${name}`}))`;
      const [existing] = await tx<{ id: string }[]>`select id from schedules where team_id = ${teamId} and qstash and name = ${name}`;
      if (existing) {
        await tx`
          update schedules set cron = ${input.cron}, timezone = ${input.timezone}, template = ${sql.json(template as JsonValue)},
            paused = false, next_run_at = ${next}, updated_at = now()
          where id = ${existing.id} and team_id = ${teamId}`;
      } else {
        await tx`
          insert into schedules (id, team_id, name, cron, timezone, template, paused, next_run_at, qstash)
          values (${isUuid(name) ? name : uuidv7()}, ${teamId}, ${name}, ${input.cron}, ${input.timezone},
            ${sql.json(template as JsonValue)}, false, ${next}, true)`;
      }
    });
    return c.json({ scheduleId: name }, 201);
  });

  app.get('/schedules', async (c) => {
    const rows = await sql<ScheduleRow[]>`select * from schedules where team_id = ${c.get('principal').teamId} order by id desc limit 1000`;
    return c.json(rows.map(view));
  });

  app.get('/schedules/:id', async (c) => {
    const s = await find(c.get('principal').teamId, c.req.param('id'));
    if (!s) throw problem('not_found', `schedule ${c.req.param('id')} not found`);
    return c.json(view(s));
  });

  app.delete('/schedules/:id', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    const s = await find(teamId, c.req.param('id'));
    if (!s) throw problem('not_found', `schedule ${c.req.param('id')} not found`);
    await sql`delete from schedules where id = ${s.id} and team_id = ${teamId}`;
    return c.body(null, 200);
  });

  // The client pauses and resumes with PATCH; resuming starts from the next tick after now.
  for (const action of ['pause', 'resume'] as const) {
    app.patch(`/schedules/:id/${action}`, requireRole('write'), async (c) => {
      const { teamId } = c.get('principal');
      const s = await find(teamId, c.req.param('id'));
      if (!s) throw problem('not_found', `schedule ${c.req.param('id')} not found`);
      const paused = action === 'pause';
      await sql`
        update schedules set paused = ${paused}, updated_at = now(), next_run_at = ${await nextRunAt(s.cron, s.timezone, paused)}
        where id = ${s.id} and team_id = ${teamId}`;
      return c.body(null, 200);
    });
  }

  return app;
}
