// The list, by-id, name-conflict and PATCH patterns the team-owned resources share
// (gateway/api/endpoints.ts, gateway/api/monitors.ts, gateway/api/schedules.ts): a row of another
// team, a non-UUID id and a missing row all answer the same 404, and a PATCH is merged onto the
// stored fields and then validated whole, so a PATCH cannot leave what a POST refuses.
import type { Context } from 'hono';
import type { Queryable } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { isUuid } from '../../shared/ids.ts';
import { readJson } from '../http.ts';

/** The tables whose rows are addressed as /<table>/:id; the name is never client input. */
type Table = 'endpoints' | 'monitors' | 'schedules';

/** The row `id` of the team, or a 404 `no such <noun>`. team_id is cast to text like the rest of the API. */
export async function loadOwned<T extends object>(sql: Queryable, table: Table, noun: string, teamId: string, id: string): Promise<T> {
  const [row] = isUuid(id) ? await sql<T[]>`select team_id::text, * from ${sql(table)} where team_id = ${teamId} and id = ${id}` : [];
  if (!row) throw problem('not_found', `no such ${noun}`);
  return row;
}

/** The team's rows, newest first: lists of these resources are one page of at most 1000. */
export async function listOwned<T extends object>(sql: Queryable, table: Table, teamId: string): Promise<T[]> {
  return await sql<T[]>`select team_id::text, * from ${sql(table)} where team_id = ${teamId} order by id desc limit 1000`;
}

/** Deletes the row `id` of the team, or a 404 `no such <noun>` when there is none. */
export async function deleteOwned(sql: Queryable, table: Table, noun: string, teamId: string, id: string): Promise<void> {
  const res = isUuid(id) ? await sql`delete from ${sql(table)} where team_id = ${teamId} and id = ${id}` : { count: 0 };
  if (res.count === 0) throw problem('not_found', `no such ${noun}`);
}

/** A PATCH body: a JSON object, anything else a 400 before the row is looked up. */
export async function readPatch(c: Context): Promise<Record<string, unknown>> {
  const patch = await readJson(c);
  if (!patch || typeof patch !== 'object' || Array.isArray(patch))
    throw problem('validation_failed', 'send a JSON object with the fields to change', [{ path: '', message: 'expected an object' }]);
  return patch as Record<string, unknown>;
}

/** The stored fields that are set (null ones left out, so the schema's defaults and optionals apply). */
export function setFields(fields: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null));
}

/** Applies `patch` onto `merged` in place: null removes an optional field, any other value replaces it. */
export function applyPatch(merged: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  return merged;
}

/** 409 for a name the team already uses (unique (team_id, name)). */
export async function nameConflict<T>(what: string, name: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    if ((e as { code?: string }).code === '23505') throw problem('conflict', `the team already has ${what} named "${name}"`);
    throw e;
  }
}
