// Circuit breakers across a fleet of real `posthorn worker` processes and a target on
// 127.0.0.1 switched between failing (503), refusing connections, slow (timeouts) and healthy:
// it opens past the thresholds, no attempt is used while it is open, each half-open lets
// exactly one probe through across 3 workers, a failed probe re-opens it for twice as long,
// closing drains the backlog, and a second team on the same origin is untouched. Then a
// 2,000-task backlog to a dead origin, with the workers SIGKILLed and restarted while it is
// dead: what reaches the target stays within the probes, and nothing is lost (docs/circuits.md).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { seedTeam } from './helpers/db.ts';
import { startHarness } from './helpers/harness.ts';
import { waitFor } from './helpers/net.ts';
import { killAll, type Proc, spawnPosthorn, testWorkerEnv } from './helpers/proc.ts';
import { type Mode, startTarget } from './helpers/target.ts';

type Harness = Awaited<ReturnType<typeof startHarness>>;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await killAll();
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});
afterAll(killAll);

// Open 2.5 s, doubling to 5 s at most (the defaults are 30 s and 10 min); 10 attempts, 50%.
const OPEN_MS = 2500;
const MAX_OPEN_MS = 5000;
// A worker's view follows a transition on NOTIFY, or within a second without one; attempts
// started within this of the test seeing it open may still follow the old state. Above the
// contract's second: this machine runs many test processes at once (load averages of 20 on
// 2 cores), and an attempt's start is stamped by its worker's clock.
const VIEW_SLACK_MS = 1500;

async function spawnWorker(databaseUrl: string): Promise<Proc> {
  const w = spawnPosthorn(
    ['worker'],
    testWorkerEnv(databaseUrl, {
      POSTHORN_WORKER_CONCURRENCY: '32',
      POSTHORN_CIRCUIT_OPEN_MS: String(OPEN_MS),
      POSTHORN_CIRCUIT_MAX_OPEN_MS: String(MAX_OPEN_MS),
    }),
    { ipc: true },
  );
  await w.ready;
  return w;
}

const fleet = (url: string, n: number) => Promise.all(Array.from({ length: n }, () => spawnWorker(url)));

async function breaker(h: Harness, teamId: string, origin: string) {
  const [row] = await h.sql`select state, opened_at, open_ms, next_probe_at from circuits where team_id = ${teamId} and origin = ${origin}`;
  return row as { state: string; opened_at: Date | null; open_ms: number; next_probe_at: Date | null } | undefined;
}

async function transitions(h: Harness, teamId: string, origin: string) {
  return (await h.sql`
    select at, from_state, to_state, reason from circuit_transitions where team_id = ${teamId} and origin = ${origin} order by id`) as unknown as {
    at: Date;
    from_state: string;
    to_state: string;
    reason: string;
  }[];
}

async function enqueue(h: Harness, tasks: Record<string, unknown>[], key?: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < tasks.length; i += 500) {
    const r = await h.api('POST', '/api/v1/queue/batch', { tasks: tasks.slice(i, i + 500) }, key ? { key } : {});
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    ids.push(...r.body.tasks.map((t: { id: string }) => t.id));
  }
  return ids;
}

async function statusCounts(h: Harness, teamId: string): Promise<Record<string, number>> {
  const rows = await h.sql`select status, count(*)::int as n from tasks where team_id = ${teamId} group by status`;
  return Object.fromEntries(rows.map((r) => [r.status as string, r.n as number]));
}

describe('circuit breaker across a fleet', () => {
  it('opens, holds without using attempts, one probe per half-open across 3 workers, doubles, closes and drains; another team untouched', {
    timeout: 120_000,
  }, async () => {
    const h = await startHarness({ worker: false });
    cleanups.push(h.close);
    const target = await startTarget({ mode: 'failing', slowMs: 1500 });
    cleanups.push(target.close);
    const other = await seedTeam(h.sql);
    await fleet(h.db.url, 3);

    const retry = { max_retries: 50, min_backoff_ms: 100, max_backoff_ms: 300 };
    const ids = await enqueue(
      h,
      Array.from({ length: 40 }, (_, i) => ({ url: `${target.url}/a/${i}`, retry, timeout_ms: 500 })),
    );

    // Opens, and not before 10 attempts had failed.
    const opened = await waitFor(
      async () => ((await breaker(h, h.team.teamId, target.origin))?.state === 'open' ? breaker(h, h.team.teamId, target.origin) : null),
      {
        timeoutMs: 20_000,
        what: 'the breaker to open',
      },
    );
    const seenOpenAt = Date.now();
    const openedAt = opened!.opened_at!.getTime();
    const [{ n: failedBefore }] = await h.sql`
      select count(*)::int as n from task_attempts where team_id = ${h.team.teamId} and finished_at <= ${opened!.opened_at} and outcome in ('http_error', 'timeout', 'network_error')`;
    expect(failedBefore).toBeGreaterThanOrEqual(10);
    expect((await transitions(h, h.team.teamId, target.origin))[0]).toMatchObject({ from_state: 'closed', to_state: 'open' });

    // Probes meet a timeout (slow), then a refused connection, then a healthy target. Each
    // failed one re-opens it for twice as long (1 s, 2 s, 4 s, 4 s...).
    await target.set('slow');
    const reopened = async (n: number) =>
      waitFor(
        async () =>
          (await transitions(h, h.team.teamId, target.origin)).filter((t) => t.from_state === 'half_open' && t.to_state === 'open')
            .length >= n,
        {
          timeoutMs: 20_000,
          what: `re-open number ${n}`,
        },
      );
    await reopened(1);

    // While it is open: the other team's tasks to the same origin run as usual, and every
    // waiting task of this team shows the probe time as next_attempt_at.
    const otherIds = await enqueue(
      h,
      Array.from({ length: 5 }, (_, i) => ({ url: `${target.url}/b/${i}`, headers: { 'x-team': 'healthy' } })),
      other.keys.admin,
    );
    const held = await waitFor(
      async () => {
        const b = await breaker(h, h.team.teamId, target.origin);
        if (b?.state !== 'open') return null;
        const rows = await h.sql`
          select id, run_at from tasks where team_id = ${h.team.teamId} and status in ('pending', 'retrying') order by id limit 1`;
        const [{ n }] = await h.sql`
          select count(*)::int as n from tasks where team_id = ${h.team.teamId} and status in ('pending', 'retrying') and run_at <> ${b.next_probe_at}`;
        return n === 0 && rows[0] ? { id: rows[0].id as string, nextProbeAt: b.next_probe_at!.toISOString() } : null;
      },
      { timeoutMs: 10_000, what: 'every waiting task held until the probe' },
    );
    const heldTask = await h.task(held.id);
    if (heldTask.status !== 'running') expect(heldTask.next_attempt_at).toBe(held.nextProbeAt);
    await waitFor(async () => (await statusCounts(h, other.teamId)).succeeded === 5, { timeoutMs: 15_000, what: "the other team's tasks" });

    const failedWith = async (what: string) =>
      waitFor(async () => (await transitions(h, h.team.teamId, target.origin)).some((t) => t.reason.startsWith(`probe failed (${what})`)), {
        timeoutMs: 20_000,
        what: `a probe failing with ${what}`,
      });
    await failedWith('timeout');
    await target.set('refusing');
    await failedWith('network_error');
    await target.set('healthy');
    await waitFor(async () => (await breaker(h, h.team.teamId, target.origin))?.state === 'closed', {
      timeoutMs: 20_000,
      what: 'the breaker to close',
    });
    await waitFor(async () => (await statusCounts(h, h.team.teamId)).succeeded === 40, { timeoutMs: 20_000, what: 'the backlog to drain' });
    expect(await statusCounts(h, h.team.teamId)).toEqual({ succeeded: 40 });

    // The log: opened once, then half-open and re-open until a probe succeeded.
    const log = await transitions(h, h.team.teamId, target.origin);
    const steps = log.map((t) => `${t.from_state}>${t.to_state}`);
    const k = (steps.length - 3) / 2;
    expect(steps).toEqual([
      'closed>open',
      ...Array(k).fill(['open>half_open', 'half_open>open']).flat(),
      'open>half_open',
      'half_open>closed',
    ]);
    expect(log.at(-1)!.reason).toBe('probe succeeded (HTTP 200)');
    const periods = log.filter((t) => t.to_state === 'open').map((t) => t.reason.match(/open for (\d+) s/)?.[1] ?? '1');
    expect(periods).toEqual(['1', ...Array(k).fill('5')]);
    const closedAt = log.at(-1)!.at.getTime();
    const cutoff = seenOpenAt + VIEW_SLACK_MS;
    // The probes after the cutoff (all of them unless this machine was very slow to commit),
    // each with the transition that ended its half-open state.
    const probes = log
      .map((t, i) => ({ at: t.at.getTime(), to: t.to_state, result: log[i + 1] }))
      .filter((p) => p.to === 'half_open' && p.at >= cutoff);
    expect(probes.length).toBeGreaterThanOrEqual(k);

    // Exactly one attempt per half-open, fleet-wide, and none otherwise while open: every
    // attempt started between the cutoff and the closing is a probe, started after its
    // half-open transition and before the next, failing as the transition after it says.
    const during = await h.sql`
      select task_id, attempt, started_at, outcome, status_code from task_attempts
      where team_id = ${h.team.teamId} and started_at >= ${new Date(cutoff)} and started_at < ${log.at(-1)!.at}
      order by started_at`;
    const outcomeOf = (reason: string) =>
      reason.startsWith('probe succeeded')
        ? 'success'
        : reason.startsWith('probe failed (HTTP')
          ? 'http_error'
          : /probe failed \((\w+)\)/.exec(reason)![1];
    expect(
      during.map((a) => a.outcome),
      JSON.stringify({ openedAt, seenOpenAt, log, during }),
    ).toEqual(probes.map((p) => outcomeOf(p.result!.reason)));
    for (const [i, a] of during.entries()) {
      expect((a.started_at as Date).getTime()).toBeGreaterThanOrEqual(probes[i]!.at - 5);
      expect((a.started_at as Date).getTime()).toBeLessThanOrEqual(probes[i]!.result!.at.getTime());
    }
    // At the target: each probe that could connect, and otherwise only requests of attempts
    // started before the cutoff (in flight as it opened).
    const early = await h.sql`
      select task_id, attempt from task_attempts where team_id = ${h.team.teamId} and started_at < ${new Date(seenOpenAt + VIEW_SLACK_MS)}`;
    const earlyKeys = new Set(early.map((a) => `${a.task_id}#${a.attempt}`));
    const hitsDuring = target.hits
      .filter((x) => x.team === undefined && x.at >= seenOpenAt + VIEW_SLACK_MS && x.at < closedAt)
      .map((x) => `${x.taskId}#${x.attempt}`)
      .filter((x) => !earlyKeys.has(x));
    expect(hitsDuring).toEqual(during.filter((a) => a.outcome !== 'network_error').map((a) => `${a.task_id}#${a.attempt}`));

    // Holding used no attempt numbers: every task's attempts run 1..n without gaps.
    const gaps = await h.sql`
      select t.id from tasks t left join task_attempts a on a.task_id = t.id
      where t.team_id = ${h.team.teamId} group by t.id, t.attempts
      having t.attempts <> count(a.*) or t.attempts <> coalesce(max(a.attempt), 0)`;
    expect(gaps).toEqual([]);

    // The other team: one attempt each, no breaker, no transitions.
    const otherAttempts = await h.sql`select count(*)::int as n from task_attempts where task_id = any(${otherIds}::uuid[])`;
    expect(otherAttempts[0]!.n).toBe(5);
    expect(await transitions(h, other.teamId, target.origin)).toEqual([]);

    const events = await h.sql`select type from events where team_id = ${h.team.teamId} order by id`;
    expect(events.map((e) => e.type)).toEqual([...Array(k + 1).fill('circuit.opened'), 'circuit.closed']);
  });

  it('a 2,000-task backlog to a dead origin: the target sees only the probes, workers restart, nothing is lost', {
    timeout: 150_000,
  }, async () => {
    const h = await startHarness({ worker: false });
    cleanups.push(h.close);
    const target = await startTarget({ mode: 'failing' });
    cleanups.push(target.close);
    let workers = await fleet(h.db.url, 3);

    const retry = { max_retries: 10, min_backoff_ms: 200, max_backoff_ms: 1000 };
    await enqueue(
      h,
      // A 2 s timeout: a probe whose worker is SIGKILLed is replaced 7 s later (timeout + 5 s).
      Array.from({ length: 2000 }, (_, i) => ({ url: `${target.url}/hook?i=${i}`, body: { i }, retry, timeout_ms: 2000 })),
    );
    const opened = await waitFor(
      async () => ((await breaker(h, h.team.teamId, target.origin))?.state === 'open' ? breaker(h, h.team.teamId, target.origin) : null),
      {
        timeoutMs: 20_000,
        what: 'the breaker to open',
      },
    );
    // Counted from when this test saw it open (after the commit), not opened_at.
    const openedAt = Date.now();
    const burst = target.hits.length;

    // The state is in PostgreSQL: SIGKILL the fleet while it is open and start a new one.
    // Killed while open, not half-open: a probe in flight at the kill would be lost with its
    // worker and sent again once its lease expires, one request more than the transitions show.
    await waitFor(
      async () =>
        (await transitions(h, h.team.teamId, target.origin)).filter((t) => t.to_state === 'half_open').length >= 2 &&
        (await breaker(h, h.team.teamId, target.origin))?.state === 'open',
      { timeoutMs: 20_000, what: 'two probes, and open again' },
    );
    for (const w of workers) w.proc.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    const restartedAt = Date.now();
    workers = await fleet(h.db.url, 3);
    await waitFor(async () => (await transitions(h, h.team.teamId, target.origin)).filter((t) => t.to_state === 'half_open').length >= 4, {
      timeoutMs: 30_000,
      what: 'two more probes from the new fleet',
    });

    await target.set('healthy');
    await waitFor(async () => (await breaker(h, h.team.teamId, target.origin))?.state === 'closed', {
      timeoutMs: 30_000,
      what: 'the breaker to close',
    });
    await waitFor(async () => (await statusCounts(h, h.team.teamId)).succeeded === 2000, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: 'every task to succeed',
    });
    expect(await statusCounts(h, h.team.teamId)).toEqual({ succeeded: 2000 });

    const log = await transitions(h, h.team.teamId, target.origin);
    const closedAt = log.at(-1)!.at.getTime();
    expect(log.at(-1)!.to_state).toBe('closed');
    const probes = log.filter((t) => t.to_state === 'half_open' && t.at.getTime() >= openedAt + VIEW_SLACK_MS).length;
    // While dead: a burst before the breaker opened (bounded by the fleet's slots), then one
    // request per probe and nothing else, through the restart.
    const deadHits = target.hits.filter((x) => x.mode === 'failing' && x.at >= openedAt + VIEW_SLACK_MS);
    const detail = JSON.stringify({
      restartedAt: restartedAt - openedAt,
      log: log.map((t) => [t.at.getTime() - openedAt, t.to_state]),
      deadHits: deadHits.map((x) => [x.at - openedAt, x.attempt]),
    });
    expect(deadHits.length, detail).toBeLessThanOrEqual(probes);
    expect(deadHits.length, detail).toBeGreaterThanOrEqual(probes - 1); // the last probe found it healthy
    expect(target.hits.filter((x) => x.at >= openedAt + VIEW_SLACK_MS && x.at < closedAt).length, detail).toBe(probes);
    // Every task delivered at least once when healthy.
    expect(new Set(target.hits.filter((x) => x.mode === 'healthy').map((x) => x.taskId)).size).toBe(2000);
    console.log(
      `dead origin: burst of ${burst} before opening, ${probes} probes, ${deadHits.length} requests while open; ${target.hits.length} in all`,
    );
  });
});
