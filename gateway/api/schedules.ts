// /api/v1/schedules (docs/api.md §5). A schedule stores its task template as validated JSON; the
// leader's scheduler turns each tick into a task (worker/maintenance/scheduler.ts).
import { Hono } from 'hono';
import { nextTick } from '../../shared/cron.ts';
import { dbNow, type JsonValue, type Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { isUuid, uuidv7 } from '../../shared/ids.ts';
import { type ScheduleInput, scheduleInputSchema, type TaskInput } from '../../shared/schemas.ts';
import { refuseForbiddenTargets, type TargetCheck } from '../../shared/targets.ts';
import { checkBodySize, displayStatus, encodeBody, insertTasks, type TaskStatus, taskForTick } from '../../shared/tasks.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { iso, parseOrThrow, readJson } from '../http.ts';
import { refuseUnknownConnections } from './connections.ts';
import { applyPatch, deleteOwned, readPatch } from './team-rows.ts';

/** A schedules row as `select *` returns it. */
type Row = {
  id: string;
  team_id: string;
  name: string;
  cron: string;
  timezone: string;
  template: TaskInput;
  paused: boolean;
  notify: Record<string, unknown> | null;
  next_run_at: Date | null;
  last_run_at: Date | null;
  last_status: TaskStatus | null;
  consecutive_failures: number;
  created_at: Date;
  updated_at: Date;
};
const SCHEDULE_FIELDS = ['name', 'cron', 'timezone', 'paused', 'notify'] as const;

/**
 * The template is every validated field that describes the request, not the schedule. Its
 * body and notify are typed unknown by the schema but came from JSON.parse (readJson): JSON.
 */
function splitInput(input: ScheduleInput) {
  const { name, cron, timezone, paused, notify, ...template } = input;
  return { name, cron, timezone, paused, notify: notify ?? null, template };
}

export function scheduleView(s: Row) {
  const { body, ...template } = s.template;
  return {
    id: s.id,
    name: s.name,
    cron: s.cron,
    timezone: s.timezone,
    paused: s.paused,
    ...template,
    body: body ?? null,
    notify: s.notify,
    next_run_at: iso(s.next_run_at),
    last_run_at: iso(s.last_run_at),
    last_status: s.last_status,
    consecutive_failures: s.consecutive_failures,
    created_at: iso(s.created_at),
    updated_at: iso(s.updated_at),
  };
}

export function scheduleRoutes(deps: { sql: Sql; maxBodyBytes: number; checkTarget: TargetCheck }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();

  function validate(raw: unknown): ScheduleInput {
    const input = parseOrThrow(scheduleInputSchema, raw);
    refuseForbiddenTargets(input, deps.checkTarget);
    // Refused now, not at every tick.
    const size = checkBodySize(encodeBody(input.body).body, deps.maxBodyBytes);
    if (!size.ok) throw problem('payload_too_large', size.detail, [{ path: 'body', message: size.detail }]);
    return input;
  }

  /** The next tick on the database's clock, so gateways with drifting clocks agree. */
  async function nextRunAt(cron: string, timezone: string, paused: boolean): Promise<string | null> {
    if (paused) return null;
    return nextTick(cron, timezone, await dbNow(sql))?.toISOString() ?? null;
  }

  async function load(teamId: string, id: string): Promise<Row> {
    const [row] = isUuid(id) ? await sql<Row[]>`select * from schedules where id = ${id} and team_id = ${teamId}` : [];
    if (!row) throw problem('not_found', 'no such schedule');
    return row;
  }

  app.post('/schedules', requireRole('write'), async (c) => {
    const s = splitInput(validate(await readJson(c)));
    await refuseUnknownConnections(sql, c.get('principal').teamId, [{ name: s.template.auth?.connection, path: 'auth.connection' }]);
    const [row] = await sql<Row[]>`
      insert into schedules (id, team_id, name, cron, timezone, template, paused, notify, next_run_at)
      values (${uuidv7()}, ${c.get('principal').teamId}, ${s.name}, ${s.cron}, ${s.timezone}, ${sql.json(s.template as JsonValue)},
        ${s.paused}, ${s.notify === null ? null : sql.json(s.notify as JsonValue)}, ${await nextRunAt(s.cron, s.timezone, s.paused)})
      returning *`;
    return c.json(scheduleView(row!), 201);
  });

  app.get('/schedules', async (c) => {
    const rows = await sql<Row[]>`select * from schedules where team_id = ${c.get('principal').teamId} order by id desc limit 1000`;
    return c.json({ data: rows.map(scheduleView) });
  });

  app.get('/schedules/:id', async (c) => c.json(scheduleView(await load(c.get('principal').teamId, c.req.param('id')))));

  app.patch('/schedules/:id', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    const patch = await readPatch(c);
    const current = await load(teamId, c.req.param('id'));
    // Merge onto the stored input and validate the whole again: a PATCH can never leave a
    // schedule that a POST would refuse. null removes an optional field.
    const merged: Record<string, unknown> = {
      ...current.template,
      ...Object.fromEntries(SCHEDULE_FIELDS.map((k) => [k, current[k] ?? undefined])),
    };
    const s = splitInput(validate(applyPatch(merged, patch)));
    if ('auth' in patch) await refuseUnknownConnections(sql, teamId, [{ name: s.template.auth?.connection, path: 'auth.connection' }]);
    const timingChanged = s.cron !== current.cron || s.timezone !== current.timezone || s.paused !== current.paused;
    const [row] = await sql<Row[]>`
      update schedules set name = ${s.name}, cron = ${s.cron}, timezone = ${s.timezone}, template = ${sql.json(s.template as JsonValue)},
        paused = ${s.paused}, notify = ${s.notify === null ? null : sql.json(s.notify as JsonValue)}, updated_at = now(),
        next_run_at = ${timingChanged ? await nextRunAt(s.cron, s.timezone, s.paused) : current.next_run_at}
      where id = ${current.id} and team_id = ${teamId}
      returning *`;
    if (!row) throw problem('not_found', 'no such schedule');
    return c.json(scheduleView(row));
  });

  app.delete('/schedules/:id', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    await deleteOwned(sql, 'schedules', 'schedule', teamId, c.req.param('id'));
    return c.body(null, 204);
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post(`/schedules/:id/${action}`, requireRole('write'), async (c) => {
      const { teamId } = c.get('principal');
      const current = await load(teamId, c.req.param('id'));
      const paused = action === 'pause';
      // Resuming starts from the next tick after now: ticks that passed while paused are not run.
      const [row] = await sql<Row[]>`
        update schedules set paused = ${paused}, updated_at = now(),
          next_run_at = ${await nextRunAt(current.cron, current.timezone, paused)}
        where id = ${current.id} and team_id = ${teamId}
        returning *`;
      if (!row) throw problem('not_found', 'no such schedule');
      return c.json(scheduleView(row));
    });
  }

  app.post('/schedules/:id/trigger', requireRole('write'), async (c) => {
    const s = await load(c.get('principal').teamId, c.req.param('id'));
    // A manual run has no tick (scheduled_for null), so it never collides with one.
    const task = taskForTick(s, null);
    const rows = await insertTasks(sql, [task]);
    const r = rows.get(task.id)!;
    return c.json(
      {
        id: r.id,
        status: displayStatus('pending', r.run_at),
        run_at: r.run_at.toISOString(),
        created_at: r.created_at.toISOString(),
        schedule_id: s.id,
      },
      202,
    );
  });

  return app;
}
