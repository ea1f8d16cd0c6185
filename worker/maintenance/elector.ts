// Leader election: a session advisory lock held on a dedicated (reserved) connection. The
// lock lives exactly as long as that connection: if the leader dies, PostgreSQL drops its
// session and the lock with it, and the next worker to try takes over. Leadership is also
// given up when the connection stops answering a ping.
//
// This needs a direct (or session-pooled) connection: behind PgBouncer in transaction
// pooling mode, session locks land on whichever server connection ran the statement and are
// neither held nor released as intended (docs/schedules.md).
import type { Sql } from '../../shared/db.ts';

export const LEADER_LOCK = 7_312_002; // arbitrary, constant: the leader lock's key

type Reserved = Awaited<ReturnType<Sql['reserve']>>;

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
  let conn: Reserved | null = null;
  let leader = false;
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  let busy: Promise<void> = Promise.resolve();

  async function dropConnection() {
    const c = conn;
    conn = null;
    if (!c) return;
    // A reserved connection goes back to the pool with its session, and a session lock would
    // go with it: unlock first (this fails harmlessly when the connection is already gone).
    await c`select pg_advisory_unlock_all()`.catch(() => {});
    c.release();
  }

  async function demote() {
    if (!leader) return;
    leader = false;
    await o.onDemoted();
  }

  async function runOnce(): Promise<boolean> {
    try {
      if (!conn) conn = await o.sql.reserve();
      if (leader) {
        await conn`select 1`; // still connected, still holding the lock
      } else {
        const [row] = await conn`select pg_try_advisory_lock(${LEADER_LOCK}) as got`;
        if (row!.got) {
          leader = true;
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
