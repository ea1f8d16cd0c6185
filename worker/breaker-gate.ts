// A worker's side of the circuit breakers: a local view of the breakers that are not closed
// (refreshed every second and on NOTIFY, so the claim path never queries per task), the gate
// every claimed task passes (send it, hold it back untouched, or take the probe), and the feed
// of outcomes from the completer's batches into PostgreSQL (one statement per flush).
import { randomUUID } from 'node:crypto';
import type { Sql } from '../shared/db.ts';
import type { Logger } from '../shared/logger.ts';
import { type Breaker, type BreakerSettings, countsAsFailure, DEFAULT_BREAKER_SETTINGS, gate, urlParts } from './breaker.ts';
import {
  applyEvent,
  CIRCUIT_NOTIFY_CHANNEL,
  loadNotClosed,
  type OutcomeAggregate,
  pruneCircuitStats,
  recordOutcomes,
  releaseHeld,
} from './breaker-store.ts';
import type { Completion } from './completer.ts';
import type { ClaimedTask } from './producer.ts';

type Held = { id: string; token: string; team_id: string; origin: string };
type ViewEntry = Pick<Breaker, 'state' | 'nextProbeAt' | 'probeDeadline'>;

/** Endpoints counted per origin and flush; a flood of distinct paths (ids in paths) stops here. */
const ENDPOINTS_PER_FLUSH = 20;
const PRUNE_EVERY_MS = 5 * 60_000;
/**
 * Outcomes are written at most this often per worker (probe results at once). After every
 * completion batch it was ~25 extra statements a second per worker (+28% PostgreSQL CPU per
 * task in the bench); at 200 ms still +10%; at 500 ms it is 2 a second. The window is 60 s,
 * so an opening comes at most half a second later.
 */
const FLUSH_EVERY_MS = 500;

// origin and path per URL string: a task's URL is parsed once per claim and once per outcome,
// and most tasks of a team share a handful of URLs. Cleared when full, so it stays bounded.
const parsed = new Map<string, { origin: string; path: string }>();
export function splitUrl(url: string): { origin: string; path: string } {
  let hit = parsed.get(url);
  if (hit) return hit;
  hit = urlParts(url) ?? { origin: url, path: '/' };
  if (parsed.size >= 2000) parsed.clear();
  parsed.set(url, hit);
  return hit;
}

export type BreakerGateOptions = {
  sql: Sql;
  logger: Logger;
  settings?: BreakerSettings;
  /** How often the view is reloaded when no NOTIFY came (the fleet shares state within this). */
  refreshMs?: number;
  /** Runs a task this gate let through after the claim (the probe). */
  dispatch: (tasks: ClaimedTask[]) => void;
  now?: () => number;
};

export function createBreakerGate(o: BreakerGateOptions) {
  const settings = o.settings ?? DEFAULT_BREAKER_SETTINGS;
  const now = o.now ?? Date.now;
  const key = (teamId: string, origin: string) => `${teamId} ${origin}`;
  let view = new Map<string, ViewEntry>();
  let teams = new Set<string>(); // teams with a breaker that is not closed: the fast path skips the rest
  const probes = new Map<string, { teamId: string; origin: string; token: string }>(); // task id → probe
  const counts = { held: 0, probes: 0, transitions: 0 };
  let pending = new Map<string, OutcomeAggregate>();
  let probeResults: { teamId: string; origin: string; token: string; ok: boolean; detail: string }[] = [];
  let flushing: Promise<void> | null = null;
  let flushTimer: NodeJS.Timeout | null = null;
  let refreshing: Promise<void> | null = null;
  let refreshAgain = false;
  let timer: NodeJS.Timeout | undefined;
  let lastPrune = now() - Math.random() * PRUNE_EVERY_MS; // spread the fleet's prunes
  let unlisten: (() => Promise<void>) | null = null;
  const background = new Set<Promise<unknown>>();

  function track(p: Promise<unknown>) {
    background.add(p);
    void p.finally(() => background.delete(p));
  }

  function setLocal(teamId: string, origin: string, b: ViewEntry) {
    const k = key(teamId, origin);
    if (b.state === 'closed') view.delete(k);
    else {
      view.set(k, b);
      teams.add(teamId);
    }
  }

  async function refresh(): Promise<void> {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        refreshAgain = false;
        const rows = await loadNotClosed(o.sql);
        const next = new Map<string, ViewEntry>();
        const nextTeams = new Set<string>();
        for (const r of rows) {
          next.set(key(r.team_id, r.origin), {
            state: r.state,
            nextProbeAt: r.next_probe_at?.getTime() ?? null,
            probeDeadline: r.probe_deadline?.getTime() ?? null,
          });
          nextTeams.add(r.team_id);
        }
        view = next;
        teams = nextTeams;
      } while (refreshAgain);
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  /**
   * Splits a claim: returns the tasks to send now. Tasks whose breaker is open are put back
   * (in the background); where the probe is due one of them tries to become it and, if it does,
   * is dispatched later through `dispatch`.
   */
  function admit(tasks: ClaimedTask[]): ClaimedTask[] {
    if (teams.size === 0) return tasks;
    const send: ClaimedTask[] = [];
    const held: Held[] = [];
    const candidates = new Map<string, { teamId: string; origin: string; tasks: ClaimedTask[] }>();
    const t = now();
    for (const task of tasks) {
      if (!teams.has(task.team_id)) {
        send.push(task);
        continue;
      }
      const { origin } = splitUrl(task.url);
      const k = key(task.team_id, origin);
      const g = gate(view.get(k), t);
      if (g.action === 'send') send.push(task);
      else if (g.action === 'hold') held.push({ id: task.id, token: task.lease_token, team_id: task.team_id, origin });
      else {
        const c = candidates.get(k) ?? { teamId: task.team_id, origin, tasks: [] };
        c.tasks.push(task);
        candidates.set(k, c);
      }
    }
    if (held.length || candidates.size) track(holdAndProbe(held, [...candidates.values()]));
    return send;
  }

  async function holdAndProbe(held: Held[], candidates: { teamId: string; origin: string; tasks: ClaimedTask[] }[]) {
    try {
      for (const c of candidates) {
        const [first, ...rest] = c.tasks as [ClaimedTask, ...ClaimedTask[]];
        const token = randomUUID();
        const r = await applyEvent(o.sql, c.teamId, c.origin, { type: 'probe', token, timeoutMs: first.timeout_ms }, settings, o.logger);
        setLocal(c.teamId, c.origin, r.after);
        if (r.changed || r.reason !== null) counts.transitions++;
        const won = r.after.state === 'half_open' && r.after.probeToken === token;
        if (won) {
          probes.set(first.id, { teamId: c.teamId, origin: c.origin, token });
          counts.probes++;
          o.dispatch([first]);
        }
        const g = gate(r.after, now());
        const others = won ? rest : c.tasks;
        // Held tasks wait for the time the breaker's row names (releaseHeld reads it).
        if (g.action === 'send') o.dispatch(others);
        else for (const task of others) held.push({ id: task.id, token: task.lease_token, team_id: c.teamId, origin: c.origin });
      }
      counts.held += held.length;
      await releaseHeld(o.sql, held);
    } catch (err) {
      // The leases of whatever was not put back expire and the rescuer returns those tasks.
      o.logger.error({ err }, 'circuit breaker: could not hold back or probe');
    }
  }

  /** Counts a completion batch's outcomes per (team, origin); flushed in one statement. */
  function observe(items: Completion[]) {
    for (const { task, result } of items) {
      // Nothing was sent (blocked), or the credentials failed (auth_error): says nothing about the target.
      if (result.outcome === 'blocked' || result.outcome === 'auth_error') continue;
      const { origin, path } = splitUrl(task.url);
      const k = key(task.team_id, origin);
      let a = pending.get(k);
      if (!a) {
        a = { team_id: task.team_id, origin, requests: 0, failures: 0, last_error: null, endpoints: [] };
        pending.set(k, a);
      }
      a.requests++;
      const failed = countsAsFailure(result.outcome, result.statusCode);
      if (failed) {
        a.failures++;
        a.last_error = result.statusCode !== null ? `HTTP ${result.statusCode}` : (result.error ?? result.outcome);
      }
      let ep = a.endpoints.find((e) => e.path === path);
      if (!ep && a.endpoints.length < ENDPOINTS_PER_FLUSH) {
        ep = { path, requests: 0, successes: 0, last_status: null, last_outcome: result.outcome };
        a.endpoints.push(ep);
      }
      if (ep) {
        ep.requests++;
        if (result.outcome === 'success') ep.successes++;
        ep.last_status = result.statusCode;
        ep.last_outcome = result.outcome;
      }
      const probe = probes.get(task.id);
      if (probe) {
        probes.delete(task.id);
        const detail = result.statusCode !== null ? `HTTP ${result.statusCode}` : result.outcome;
        probeResults.push({ ...probe, ok: !failed, detail });
      }
    }
    if (probeResults.length) flushSoon(0);
    else if (pending.size) flushSoon(FLUSH_EVERY_MS);
  }

  function flushSoon(delayMs: number) {
    if (flushing) return; // the running flush schedules the next one as it ends
    if (flushTimer && delayMs > 0) return;
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = setTimeout(() => {
      flushTimer = null;
      if (!flushing) flushing = flush();
    }, delayMs);
  }

  /** Writes what is pending; whatever arrives meanwhile waits for the next flush (flushSoon). */
  async function flush(): Promise<void> {
    try {
      {
        const aggs = [...pending.values()];
        const results = probeResults;
        pending = new Map();
        probeResults = [];
        try {
          const rows = await recordOutcomes(o.sql, aggs);
          for (const r of rows) {
            if (r.state !== 'closed' && !view.has(key(r.team_id, r.origin)))
              setLocal(r.team_id, r.origin, {
                state: r.state,
                nextProbeAt: r.next_probe_at?.getTime() ?? null,
                probeDeadline: r.probe_deadline?.getTime() ?? null,
              });
            if (r.state !== 'closed' || r.requests < settings.minRequests || r.failures < r.requests * settings.failureRate) continue;
            const a = await applyEvent(
              o.sql,
              r.team_id,
              r.origin,
              { type: 'window', requests: r.requests, failures: r.failures },
              settings,
              o.logger,
            );
            setLocal(r.team_id, r.origin, a.after);
            if (a.changed) counts.transitions++;
          }
          for (const p of results) {
            const a = await applyEvent(
              o.sql,
              p.teamId,
              p.origin,
              { type: 'probe_result', token: p.token, ok: p.ok, detail: p.detail },
              settings,
              o.logger,
            );
            setLocal(p.teamId, p.origin, a.after);
            if (a.changed) counts.transitions++;
          }
        } catch (err) {
          // Lost counts only delay an opening; a lost probe result is retried by the probe deadline.
          o.logger.error({ err }, 'circuit breaker: could not record outcomes');
        }
      }
    } finally {
      flushing = null;
      if (probeResults.length) flushSoon(0);
      else if (pending.size) flushSoon(FLUSH_EVERY_MS);
    }
  }

  function tick() {
    refresh().catch((err) => o.logger.warn({ err }, 'circuit breaker: could not refresh the view'));
    if (now() - lastPrune >= PRUNE_EVERY_MS) {
      lastPrune = now();
      track(pruneCircuitStats(o.sql).catch((err) => o.logger.warn({ err }, 'circuit breaker: prune failed')));
    }
  }

  return {
    admit,
    observe,
    refresh,
    counts,
    /** The local view's breakers that are not closed (for tests and the health page). */
    view: () => new Map(view),
    async start() {
      const sub = await o.sql.listen(
        CIRCUIT_NOTIFY_CHANNEL,
        () => tick(),
        () => tick(),
      );
      unlisten = sub.unlisten;
      await refresh();
      timer = setInterval(tick, o.refreshMs ?? 1000);
    },
    /** Waits for tasks being held back or probed (after the producer stopped). */
    async settle() {
      while (background.size) await Promise.allSettled([...background]);
    },
    /** After the completer drained: the last outcomes are counted. */
    async stop() {
      clearInterval(timer);
      await unlisten?.().catch(() => {});
      while (background.size || flushing) await Promise.allSettled([...background, flushing]);
      // The last outcomes, now rather than after the timer.
      do {
        if (flushTimer) clearTimeout(flushTimer);
        flushTimer = null;
        if (pending.size || probeResults.length) {
          flushing = flush();
          await flushing;
        }
      } while (pending.size || probeResults.length);
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
    },
  };
}
