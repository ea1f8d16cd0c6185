// Leader election: a session advisory lock held on a connection of its own (a session,
// shared/db.ts createSession). The lock lives exactly as long as that connection: if the leader
// dies, or PostgreSQL restarts, the session and the lock go with it, and the next worker to try
// takes over. Leadership is also given up when the connection stops answering a ping; the
// session is then ended and a new one tries for the lock on the next round.
//
// This needs a direct (or session-pooled) connection: behind PgBouncer in transaction
// pooling mode, session locks land on whichever server connection ran the statement and are
// neither held nor released as intended (docs/schedules.md).
import { createSession, type Sql } from '../../shared/db.ts';

export const LEADER_LOCK = 7_312_002; // arbitrary, constant: the leader lock's key

export type ElectorOptions = {
  sql: Sql;
  /** How often a follower tries the lock and the leader pings its connection. 2 s: failover well inside 10 s. */
  intervalMs?: number;
  onElected: () => void | Promise<void>;
  onDemoted: () => void | Promise<void>;
  onError?: (err: unknown) => void;
};

export function createElector(o: ElectorOptions) {
  const intervalMs = o.intervalMs ?? 2000;
  let conn: Sql | null = null;
  let leader = false;
  let lockPid = 0; // the server process (session) that holds our lock
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  let busy: Promise<void> = Promise.resolve();

  async function dropConnection() {
    const c = conn;
    conn = null;
    if (!c) return;
    // Closing the session releases its lock (a dead one has nothing left to release).
    await c.end({ timeout: 1 }).catch(() => {});
  }

  async function demote() {
    if (!leader) return;
    leader = false;
    await o.onDemoted();
  }

  async function runOnce(): Promise<boolean> {
    try {
      conn ??= createSession(o.sql); // named as the worker's pool: pg_stat_activity shows which worker leads
      if (leader) {
        // Still connected, and still the session that took the lock: a pool of one reconnects
        // by itself, and a new session holds nothing.
        const [row] = await conn<{ pid: number }[]>`select pg_backend_pid() as pid`;
        if (row!.pid !== lockPid) throw new Error('the leader session was replaced (the database restarted?); its lock is gone');
      } else {
        const [row] = await conn<
          { got: boolean; pid: number }[]
        >`select pg_try_advisory_lock(${LEADER_LOCK}) as got, pg_backend_pid() as pid`;
        if (row!.got) {
          leader = true;
          lockPid = row!.pid;
          await o.onElected();
        }
      }
    } catch (err) {
      o.onError?.(err);
      await demote();
      await dropConnection();
    }
    return leader;
  }

  const loop = () => {
    busy = runOnce().then(() => {
      if (!stopped) timer = setTimeout(loop, intervalMs);
    });
  };

  return {
    runOnce,
    isLeader: () => leader,
    start() {
      stopped = false;
      loop();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await busy;
      await demote();
      await dropConnection();
    },
  };
}
