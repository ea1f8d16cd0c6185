// /api/v1/monitors (docs/monitors.md): heartbeat monitors. A job pings /ping/<token>
// (gateway/ping.ts) every period; the leader marks a monitor that missed its ping plus grace
// down (worker/maintenance/monitors.ts). Pings of each monitor are listed here.
import { Hono } from 'hono';
import { z } from 'zod';
import { cronProblem, timezoneProblem } from '../../shared/cron.ts';
import { dbNow, type Queryable, type Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { randomBase62, uuidv7 } from '../../shared/ids.ts';
import { downAt, type MonitorStatus, nextExpected, PINGS_KEPT } from '../../shared/monitors.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { iso, parseOrThrow, readJson } from '../http.ts';
import { applyPatch, deleteOwned, listOwned, loadOwned, nameConflict, readPatch, setFields } from './team-rows.ts';

export const TOKEN_LENGTH = 24;
const DAY_S = 86_400;

export const monitorInputSchema = z
  .strictObject({
    name: z.string().min(1).max(128),
    interval_seconds: z
      .number()
      .int()
      .min(1)
      .max(365 * DAY_S)
      .optional(),
    cron: z
      .string()
      .max(256)
      .superRefine((c, ctx) => {
        const why = cronProblem(c);
        if (why) ctx.addIssue({ code: 'custom', message: why });
      })
      .optional(),
    timezone: z
      .string()
      .max(64)
      .superRefine((tz, ctx) => {
        const why = timezoneProblem(tz);
        if (why) ctx.addIssue({ code: 'custom', message: why });
      })
      .default('UTC'),
    grace_seconds: z
      .number()
      .int()
      .min(0)
      .max(30 * DAY_S)
      .default(300),
    paused: z.boolean().default(false),
  })
  .superRefine((m, ctx) => {
    if ((m.interval_seconds === undefined) === (m.cron === undefined))
      ctx.addIssue({ code: 'custom', path: ['interval_seconds'], message: 'give interval_seconds or cron (with timezone), exactly one' });
  });
export type MonitorInput = z.output<typeof monitorInputSchema>;

export type MonitorRow = {
  team_id: string;
  id: string;
  name: string;
  token: string;
  interval_seconds: number | null;
  cron: string | null;
  timezone: string;
  grace_seconds: number;
  paused: boolean;
  status: MonitorStatus;
  last_ping_at: Date | null;
  next_expected_at: Date | null;
  down_at: Date | null;
  created_at: Date;
  updated_at: Date;
};

export function monitorView(m: MonitorRow) {
  return {
    id: m.id,
    name: m.name,
    status: m.status,
    paused: m.paused,
    interval_seconds: m.interval_seconds,
    cron: m.cron,
    timezone: m.timezone,
    grace_seconds: m.grace_seconds,
    ping_url: `/ping/${m.token}`,
    last_ping_at: iso(m.last_ping_at),
    next_expected_at: iso(m.next_expected_at),
    created_at: iso(m.created_at),
    updated_at: iso(m.updated_at),
  };
}

/** The stored form of an input: what PATCH merges onto and sync compares with. */
export const monitorFields = (i: MonitorInput) => ({
  name: i.name,
  interval_seconds: i.interval_seconds ?? null,
  cron: i.cron ?? null,
  timezone: i.timezone,
  grace_seconds: i.grace_seconds,
  paused: i.paused,
});

export async function insertMonitor(sql: Queryable, teamId: string, i: MonitorInput): Promise<MonitorRow> {
  const f = monitorFields(i);
  // A new monitor shows when its first ping is due, but only an up one can go down.
  const expected = nextExpected(f, await dbNow(sql));
  const [row] = await sql<MonitorRow[]>`
    insert into monitors (team_id, id, name, token, interval_seconds, cron, timezone, grace_seconds, paused, next_expected_at, down_at)
    values (${teamId}, ${uuidv7()}, ${f.name}, ${randomBase62(TOKEN_LENGTH)}, ${f.interval_seconds}, ${f.cron}, ${f.timezone},
      ${f.grace_seconds}, ${f.paused}, ${expected}, ${downAt(f, expected)})
    returning team_id::text, *`;
  return row!;
}

/**
 * Changes a monitor's settings. New timing counts from the last ping (from now before the
 * first). Resuming a paused monitor makes it new again: it waits for a ping rather than going
 * down for the pings it was not sent while paused.
 */
export async function updateMonitor(sql: Queryable, current: MonitorRow, i: MonitorInput): Promise<MonitorRow | undefined> {
  const f = monitorFields(i);
  const now = await dbNow(sql);
  const resumed = current.paused && !f.paused;
  const status = resumed ? 'new' : current.status;
  const expected = nextExpected(f, resumed || !current.last_ping_at ? now : current.last_ping_at);
  const [row] = await sql<MonitorRow[]>`
    update monitors set name = ${f.name}, interval_seconds = ${f.interval_seconds}, cron = ${f.cron}, timezone = ${f.timezone},
      grace_seconds = ${f.grace_seconds}, paused = ${f.paused}, status = ${status},
      next_expected_at = ${expected}, down_at = ${downAt(f, expected)}, updated_at = now()
    where team_id = ${current.team_id} and id = ${current.id}
    returning team_id::text, *`;
  return row;
}

export function monitorRoutes(deps: { sql: Sql }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();

  const load = (teamId: string, id: string) => loadOwned<MonitorRow>(sql, 'monitors', 'monitor', teamId, id);

  app.post('/monitors', requireRole('write'), async (c) => {
    const input = parseOrThrow(monitorInputSchema, await readJson(c));
    const teamId = c.get('principal').teamId;
    const row = await nameConflict('a monitor', input.name, () => insertMonitor(sql, teamId, input));
    return c.json(monitorView(row), 201);
  });

  app.get('/monitors', async (c) => {
    const rows = await listOwned<MonitorRow>(sql, 'monitors', c.get('principal').teamId);
    return c.json({ data: rows.map(monitorView), next_cursor: null });
  });

  app.get('/monitors/:id', async (c) => c.json(monitorView(await load(c.get('principal').teamId, c.req.param('id')))));

  app.patch('/monitors/:id', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    const patch = await readPatch(c);
    const current = await load(teamId, c.req.param('id'));
    const merged = setFields(monitorFields(current as unknown as MonitorInput));
    // Switching between interval and cron: the one given replaces the other.
    if ('interval_seconds' in patch && !('cron' in patch)) delete merged.cron;
    if ('cron' in patch && !('interval_seconds' in patch)) delete merged.interval_seconds;
    const input = parseOrThrow(monitorInputSchema, applyPatch(merged, patch));
    const row = await nameConflict('a monitor', input.name, () => updateMonitor(sql, current, input));
    if (!row) throw problem('not_found', 'no such monitor');
    return c.json(monitorView(row));
  });

  app.delete('/monitors/:id', requireRole('write'), async (c) => {
    const { teamId } = c.get('principal');
    await deleteOwned(sql, 'monitors', 'monitor', teamId, c.req.param('id'));
    return c.body(null, 204);
  });

  app.get('/monitors/:id/pings', async (c) => {
    const m = await load(c.get('principal').teamId, c.req.param('id'));
    const rows = await sql<{ id: string; kind: string; method: string; user_agent: string | null; received_at: Date }[]>`
      select id::text, kind, method, user_agent, received_at from monitor_pings
      where team_id = ${m.team_id} and monitor_id = ${m.id}
      order by id desc limit ${PINGS_KEPT}`;
    return c.json({ data: rows.map((p) => ({ ...p, received_at: iso(p.received_at) })), next_cursor: null });
  });

  return app;
}
