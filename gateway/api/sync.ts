// PUT /api/v1/sync (docs/api.md, declarative sync): a team's schedules, monitors and endpoints
// as one JSON document, identified by name. In one transaction, missing items are created,
// changed ones updated, equal ones left alone, and with delete_removed the unnamed items of
// each kind the document lists are deleted. A second identical PUT changes nothing and says so
// ("changed": false). Every item is validated before anything is written: one bad item is a
// 400 naming it (schedules.2.cron), and nothing is stored.
import { Hono } from 'hono';
import { z } from 'zod';
import { nextTick } from '../../shared/cron.ts';
import { dbNow, type JsonValue, type Queryable, type Sql } from '../../shared/db.ts';
import { type FieldError, problem } from '../../shared/errors.ts';
import { uuidv7 } from '../../shared/ids.ts';
import { type ScheduleInput, scheduleInputSchema } from '../../shared/schemas.ts';
import { refuseForbiddenTargets, type TargetCheck } from '../../shared/targets.ts';
import { checkBodySize, encodeBody } from '../../shared/tasks.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { readJson, toFieldErrors } from '../http.ts';
import {
  checkEndpoint,
  type EndpointInput,
  type EndpointRow,
  endpointFields,
  endpointInputSchema,
  insertEndpoint,
  updateEndpoint,
} from './endpoints.ts';
import { insertMonitor, type MonitorInput, type MonitorRow, monitorFields, monitorInputSchema, updateMonitor } from './monitors.ts';

export const SYNC_LOCK = 7_312_016; // arbitrary, constant: one sync per team at a time
export const MAX_SYNC_ITEMS = 1000; // per kind
const KINDS = ['schedules', 'monitors', 'endpoints'] as const;
type Kind = (typeof KINDS)[number];

export const syncInputSchema = z.strictObject({
  schedules: z
    .array(z.unknown())
    .max(MAX_SYNC_ITEMS)
    .optional()
    .meta({ description: 'schedule bodies as POST /api/v1/schedules takes them' }),
  monitors: z.array(z.unknown()).max(MAX_SYNC_ITEMS).optional().meta({ description: 'monitor bodies as POST /api/v1/monitors takes them' }),
  endpoints: z
    .array(z.unknown())
    .max(MAX_SYNC_ITEMS)
    .optional()
    .meta({ description: 'endpoint bodies as POST /api/v1/endpoints takes them' }),
  delete_removed: z.boolean().default(false).meta({ description: 'delete the items of each kind given that the document does not name' }),
});

type Names = Record<Kind, string[]>;
const names = (): Names => ({ schedules: [], monitors: [], endpoints: [] });
export type SyncResult = { changed: boolean; created: Names; updated: Names; unchanged: Names; deleted: Names };

/** JSON with object keys sorted: jsonb does not keep key order, so stored and sent compare by this. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v ?? null);
}
const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/** A schedule's stored parts (as gateway/api/schedules.ts stores them). */
function scheduleParts(input: ScheduleInput) {
  const { name, cron, timezone, paused, notify, ...template } = input;
  return { name, cron, timezone, paused, notify: notify ?? null, template };
}
type ScheduleRow = ReturnType<typeof scheduleParts> & { id: string };

type Parsed = { schedules?: ScheduleInput[]; monitors?: MonitorInput[]; endpoints?: EndpointInput[]; delete_removed: boolean };

export function syncRoutes(deps: { sql: Sql; maxBodyBytes: number; checkTarget: TargetCheck }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();

  /** Every item checked as its own POST would check it; all errors at once, paths like monitors.1.cron. */
  function validate(raw: unknown): Parsed {
    const top = syncInputSchema.safeParse(raw);
    if (!top.success) {
      const errors = toFieldErrors(top.error);
      throw problem('validation_failed', errors.map((e) => `${e.path || '(body)'}: ${e.message}`).join('; '), errors);
    }
    const errors: FieldError[] = [];
    let targetErrors = 0; // of errors, how many are targets that are not allowed (docs/api.md §7)
    const out: Parsed = { delete_removed: top.data.delete_removed };
    const schemas = { schedules: scheduleInputSchema, monitors: monitorInputSchema, endpoints: endpointInputSchema } as const;
    for (const kind of KINDS) {
      const items = top.data[kind];
      if (!items) continue;
      const seen = new Map<string, number>();
      const parsed: unknown[] = [];
      items.forEach((item, i) => {
        const res = schemas[kind].safeParse(item);
        if (!res.success) return errors.push(...toFieldErrors(res.error, [kind, i]));
        const name = (res.data as { name: string }).name;
        if (seen.has(name))
          errors.push({ path: `${kind}.${i}.name`, message: `"${name}" is also ${kind}.${seen.get(name)}; names must be unique` });
        seen.set(name, i);
        try {
          if (kind === 'schedules') {
            const s = res.data as ScheduleInput;
            refuseForbiddenTargets(s, deps.checkTarget, [kind, i]);
            const size = checkBodySize(encodeBody(s.body).body, deps.maxBodyBytes);
            if (!size.ok) errors.push({ path: `${kind}.${i}.body`, message: size.detail });
          }
          if (kind === 'endpoints') checkEndpoint(res.data as EndpointInput, deps.checkTarget, [kind, i]);
        } catch (e) {
          const refused = (e as { errors?: FieldError[] }).errors ?? [];
          errors.push(...refused);
          targetErrors += refused.length;
        }
        parsed.push(res.data);
      });
      (out as Record<string, unknown>)[kind] = parsed;
    }
    if (errors.length) {
      const code = targetErrors === errors.length ? 'target_not_allowed' : 'validation_failed';
      throw problem(code, errors.map((e) => `${e.path}: ${e.message}`).join('; '), errors);
    }
    return out;
  }

  async function syncSchedules(tx: Queryable, teamId: string, items: ScheduleInput[], del: boolean, r: SyncResult) {
    const now = await dbNow(tx);
    const rows = await tx<ScheduleRow[]>`
      select id, name, cron, timezone, paused, notify, template from schedules where team_id = ${teamId}`;
    const byName = new Map<string, ScheduleRow>();
    for (const row of rows) {
      if (byName.has(row.name) && items.some((i) => i.name === row.name))
        throw problem('conflict', `the team has more than one schedule named "${row.name}"; rename or delete one before syncing it`);
      byName.set(row.name, row);
    }
    for (const input of items) {
      const s = scheduleParts(input);
      const next = s.paused ? null : (nextTick(s.cron, s.timezone, now)?.toISOString() ?? null);
      const notify = s.notify === null ? null : tx.json(s.notify as JsonValue);
      const current = byName.get(s.name);
      if (!current) {
        await tx`
          insert into schedules (id, team_id, name, cron, timezone, template, paused, notify, next_run_at)
          values (${uuidv7()}, ${teamId}, ${s.name}, ${s.cron}, ${s.timezone}, ${tx.json(s.template as JsonValue)}, ${s.paused}, ${notify}, ${next})`;
        r.created.schedules.push(s.name);
      } else if (same({ ...current, id: undefined }, s)) r.unchanged.schedules.push(s.name);
      else {
        const timing = s.cron !== current.cron || s.timezone !== current.timezone || s.paused !== current.paused;
        await tx`
          update schedules set cron = ${s.cron}, timezone = ${s.timezone}, template = ${tx.json(s.template as JsonValue)},
            paused = ${s.paused}, notify = ${notify}, updated_at = now()
            ${timing ? tx`, next_run_at = ${next}` : tx``}
          where team_id = ${teamId} and id = ${current.id}`;
        r.updated.schedules.push(s.name);
      }
    }
    if (del) {
      const keep = items.map((i) => i.name);
      const gone = await tx<{ name: string }[]>`
        delete from schedules where team_id = ${teamId} and not (name = any(${keep}::text[])) returning name`;
      r.deleted.schedules.push(...gone.map((g) => g.name));
    }
  }

  async function syncMonitors(tx: Queryable, teamId: string, items: MonitorInput[], del: boolean, r: SyncResult) {
    const rows = await tx<MonitorRow[]>`select team_id::text, * from monitors where team_id = ${teamId}`;
    const byName = new Map(rows.map((m) => [m.name, m]));
    for (const input of items) {
      const current = byName.get(input.name);
      if (!current) {
        await insertMonitor(tx, teamId, input);
        r.created.monitors.push(input.name);
      } else if (same(monitorFields(current as unknown as MonitorInput), monitorFields(input))) r.unchanged.monitors.push(input.name);
      else {
        await updateMonitor(tx, current, input);
        r.updated.monitors.push(input.name);
      }
    }
    if (del) {
      const gone = await tx<{ name: string }[]>`
        delete from monitors where team_id = ${teamId} and not (name = any(${items.map((i) => i.name)}::text[])) returning name`;
      r.deleted.monitors.push(...gone.map((g) => g.name));
    }
  }

  async function syncEndpoints(tx: Queryable, teamId: string, items: EndpointInput[], del: boolean, r: SyncResult) {
    const rows = await tx<EndpointRow[]>`select team_id::text, * from endpoints where team_id = ${teamId}`;
    const byName = new Map(rows.map((e) => [e.name, e]));
    for (const input of items) {
      const current = byName.get(input.name);
      if (!current) {
        await insertEndpoint(tx, teamId, input);
        r.created.endpoints.push(input.name);
      } else if (same(endpointFields(current as unknown as EndpointInput), endpointFields(input))) r.unchanged.endpoints.push(input.name);
      else {
        await updateEndpoint(tx, teamId, current.id, input);
        r.updated.endpoints.push(input.name);
      }
    }
    if (del) {
      const gone = await tx<{ name: string }[]>`
        delete from endpoints where team_id = ${teamId} and not (name = any(${items.map((i) => i.name)}::text[])) returning name`;
      r.deleted.endpoints.push(...gone.map((g) => g.name));
    }
  }

  app.put('/sync', requireRole('admin'), async (c) => {
    const input = validate(await readJson(c));
    const teamId = c.get('principal').teamId;
    const result: SyncResult = { changed: false, created: names(), updated: names(), unchanged: names(), deleted: names() };
    await sql.begin(async (tx) => {
      // Two syncs of one team at once would both see a name missing and both create it.
      await tx`select pg_advisory_xact_lock(${SYNC_LOCK}, (${teamId}::bigint % 2147483647)::int)`;
      if (input.schedules) await syncSchedules(tx, teamId, input.schedules, input.delete_removed, result);
      if (input.monitors) await syncMonitors(tx, teamId, input.monitors, input.delete_removed, result);
      if (input.endpoints) await syncEndpoints(tx, teamId, input.endpoints, input.delete_removed, result);
    });
    result.changed = KINDS.some((k) => result.created[k].length + result.updated[k].length + result.deleted[k].length > 0);
    return c.json(result);
  });

  return app;
}
