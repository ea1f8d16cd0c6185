// Reading the circuit breakers for the API and the status pages (docs/circuits.md): per origin
// its state, the last 24 h's requests and failures, last error, endpoints, and an hourly
// history, so a page only renders. Every query names the team.
import { randomBytes } from 'node:crypto';
import type { Sql } from '../../shared/db.ts';
import type { CircuitState } from '../../worker/breaker.ts';
import { TRANSITIONS_KEPT } from '../../worker/breaker-store.ts';
import { iso } from '../http.ts';

const HOUR = 3_600_000;
/** Hours in the history, this one included. */
export const HISTORY_HOURS = 24;
/** Endpoints shown per origin, most requested first. */
export const ENDPOINTS_SHOWN = 20;

export type EndpointView = { url: string; last_status: number | null; last_attempt_at: string | null; success_rate: number | null };
export type HistoryBucket = { hour: string; requests: number; failures: number; state: CircuitState };
export type CircuitView = {
  origin: string;
  state: CircuitState;
  failure_rate: number;
  requests: number;
  failures: number;
  opened_at: string | null;
  next_probe_at: string | null;
  last_error: string | null;
  endpoints: EndpointView[];
  /** Oldest first, one bucket per hour; `state` is the worst the breaker was in during it. */
  history: HistoryBucket[];
};
export type TransitionView = { at: string; from: CircuitState; to: CircuitState; reason: string };

const SEVERITY: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };
const worse = (a: CircuitState, b: CircuitState) => (SEVERITY[b] > SEVERITY[a] ? b : a);
const rate = (part: number, whole: number) => (whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 10_000);

/**
 * The team's breakers: every origin with attempts in the last 24 h (and any not closed),
 * sorted with open ones first, then by origin. `only` narrows to one origin.
 */
export async function listCircuits(sql: Sql, teamId: string, now = Date.now(), only?: string): Promise<CircuitView[]> {
  const firstHour = Math.floor(now / HOUR) * HOUR - (HISTORY_HOURS - 1) * HOUR;
  const since = new Date(firstHour);
  const one = only === undefined ? sql`` : sql`and origin = ${only}`;
  const [hours, circuits, endpoints, transitions] = await Promise.all([
    sql`select origin, hour, requests, failures, last_error, last_error_at from circuit_hours
        where team_id = ${teamId} and hour >= ${since} ${one}`,
    sql`select origin, state, opened_at, next_probe_at from circuits where team_id = ${teamId} ${one}`,
    sql`select origin, path, sum(requests)::int as requests, sum(successes)::int as successes,
          (array_agg(last_status order by last_attempt_at desc))[1] as last_status, max(last_attempt_at) as last_attempt_at
        from circuit_endpoints where team_id = ${teamId} and hour >= ${since} ${one}
        group by origin, path`,
    sql`select origin, at, from_state, to_state from circuit_transitions
        where team_id = ${teamId} and at >= ${since} ${one} order by id`,
  ]);

  type Acc = { view: CircuitView; lastErrorAt: number };
  const byOrigin = new Map<string, Acc>();
  const acc = (origin: string): Acc => {
    let a = byOrigin.get(origin);
    if (!a) {
      const history = Array.from({ length: HISTORY_HOURS }, (_, i) => ({
        hour: new Date(firstHour + i * HOUR).toISOString(),
        requests: 0,
        failures: 0,
        state: 'closed' as CircuitState,
      }));
      a = {
        view: {
          origin,
          state: 'closed',
          failure_rate: 0,
          requests: 0,
          failures: 0,
          opened_at: null,
          next_probe_at: null,
          last_error: null,
          endpoints: [],
          history,
        },
        lastErrorAt: 0,
      };
      byOrigin.set(origin, a);
    }
    return a;
  };

  for (const h of hours) {
    const a = acc(h.origin);
    const i = Math.floor(((h.hour as Date).getTime() - firstHour) / HOUR);
    const b = a.view.history[i];
    if (b) {
      b.requests += h.requests;
      b.failures += h.failures;
    }
    a.view.requests += h.requests;
    a.view.failures += h.failures;
    const at = (h.last_error_at as Date | null)?.getTime() ?? 0;
    if (h.last_error && at >= a.lastErrorAt) {
      a.view.last_error = h.last_error;
      a.lastErrorAt = at;
    }
  }
  for (const c of circuits) {
    // A closed breaker with no attempts in 24 h is not listed (but is found by its origin).
    if (c.state === 'closed' && !byOrigin.has(c.origin) && only === undefined) continue;
    const v = acc(c.origin).view;
    v.state = c.state;
    v.opened_at = c.state === 'closed' ? null : iso(c.opened_at);
    v.next_probe_at = c.state === 'open' ? iso(c.next_probe_at) : null;
  }
  for (const a of byOrigin.values()) a.view.failure_rate = rate(a.view.failures, a.view.requests);

  const eps = [...endpoints].sort((x, y) => y.requests - x.requests || (x.path < y.path ? -1 : 1));
  for (const e of eps) {
    const a = byOrigin.get(e.origin);
    if (!a || a.view.endpoints.length >= ENDPOINTS_SHOWN) continue;
    a.view.endpoints.push({
      url: `${e.origin}${e.path}`,
      last_status: e.last_status ?? null,
      last_attempt_at: iso(e.last_attempt_at),
      success_rate: e.requests ? rate(e.successes, e.requests) : null,
    });
  }

  // Each hour's state: the worst the breaker was in at any moment of it. Walk the transitions
  // backwards from the current state: before a transition, the breaker was in its from_state.
  const byOriginTransitions = new Map<string, { at: number; from: CircuitState; to: CircuitState }[]>();
  for (const t of transitions) {
    const list = byOriginTransitions.get(t.origin) ?? [];
    list.push({ at: (t.at as Date).getTime(), from: t.from_state, to: t.to_state });
    byOriginTransitions.set(t.origin, list);
  }
  for (const a of byOrigin.values()) {
    const list = byOriginTransitions.get(a.view.origin) ?? [];
    let state = a.view.state;
    let until = now;
    for (let k = list.length; k >= 0; k--) {
      const from = k > 0 ? Math.max(list[k - 1]!.at, firstHour) : firstHour;
      for (const b of a.view.history) {
        const start = Date.parse(b.hour);
        if (start < until && start + HOUR > from) b.state = worse(b.state, state);
      }
      if (k > 0) {
        state = list[k - 1]!.from;
        until = list[k - 1]!.at;
      }
    }
  }

  return [...byOrigin.values()].map((a) => a.view).sort((x, y) => SEVERITY[y.state] - SEVERITY[x.state] || (x.origin < y.origin ? -1 : 1));
}

/** One origin with its last 50 transitions, newest first; null when the team has no such breaker. */
export async function getCircuit(sql: Sql, teamId: string, origin: string, now = Date.now()) {
  const [view] = await listCircuits(sql, teamId, now, origin);
  if (!view) return null;
  const rows = await sql`
    select at, from_state, to_state, reason from circuit_transitions
    where team_id = ${teamId} and origin = ${origin} order by id desc limit ${TRANSITIONS_KEPT}`;
  const transitions: TransitionView[] = rows.map((r) => ({ at: iso(r.at)!, from: r.from_state, to: r.to_state, reason: r.reason }));
  return { ...view, transitions };
}

/** The API's shape (docs/api.md, circuits): the view without the page's history. */
export function apiView({ history: _h, ...v }: CircuitView) {
  return v;
}

/** What the public status page may show: origins and states, never URLs' paths or errors. */
export function publicView(v: CircuitView) {
  return { origin: v.origin, state: v.state, history: v.history.map((b) => ({ hour: b.hour, state: b.state })) };
}

/** Breakers per state for one team (the status page's summary). */
export function countByState(list: CircuitView[]): Record<CircuitState, number> {
  const out: Record<CircuitState, number> = { closed: 0, open: 0, half_open: 0 };
  for (const v of list) out[v.state]++;
  return out;
}

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/** Makes the team's status page public (keeping its token if it already is); returns the token. */
export async function publishStatusPage(sql: Sql, teamId: string): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const [row] = await sql`
    insert into status_pages (team_id, token) values (${teamId}, ${token})
    on conflict (team_id) do update set team_id = excluded.team_id
    returning token`;
  return row!.token as string;
}

/** Revokes it: the old URL answers 404 from now on. */
export async function unpublishStatusPage(sql: Sql, teamId: string): Promise<void> {
  await sql`delete from status_pages where team_id = ${teamId}`;
}

/** The team's public token, or null when its page is private. */
export async function statusPageToken(sql: Sql, teamId: string): Promise<string | null> {
  const [row] = await sql`select token from status_pages where team_id = ${teamId}`;
  return (row?.token as string | undefined) ?? null;
}

/** The team whose public status page `token` opens; null for anything else (a 404). */
export async function teamForStatusToken(sql: Sql, token: string): Promise<string | null> {
  if (!TOKEN_RE.test(token)) return null;
  const [row] = await sql`select team_id::text from status_pages where token = ${token}`;
  return (row?.team_id as string | undefined) ?? null;
}

export const statusPageUrl = (token: string) => `/status/${token}`;
