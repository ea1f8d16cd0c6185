// `posthorn start` watches the embedded PostgreSQL it started: a server that dies (SIGKILL from
// the kernel's out-of-memory killer, a crash) is started again on the same data directory and
// port. PostgreSQL replays its write-ahead log on start, so every committed transaction is
// there; the gateway and workers reconnect by themselves meanwhile (docs/reliability.md).
//
// Backoff: 250 ms before the first restart, doubling to 30 s while restarts keep failing or the
// server keeps dying within a minute of starting; a server up for a minute starts the count
// again. A start can fail for a moment after a SIGKILL: the old server's backends exit on their
// own when they notice the postmaster is gone, and until then PostgreSQL refuses to start
// ("pre-existing shared memory block is still in use"). One log line per death and one per
// failed restart; a server stopped by stop() is not restarted.
import type { EmbeddedDb } from './embedded.ts';
import type { Logger } from './logger.ts';

export const restartDelayMs = (restarts: number) => Math.min(250 * 2 ** restarts, 30_000);

export function superviseEmbedded(first: EmbeddedDb, o: { start: () => Promise<EmbeddedDb>; logger: Logger }) {
  let current: EmbeddedDb | null = first;
  let stopping = false;
  let restarts = 0;
  let upSince = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let starting: Promise<unknown> = Promise.resolve();

  function watch(db: EmbeddedDb) {
    void db.exited.then(({ code, signal }) => {
      if (stopping || current !== db) return;
      current = null;
      if (Date.now() - upSince > 60_000) restarts = 0;
      const delay = restartDelayMs(restarts++);
      o.logger.error({ pid: db.pid, code, signal, restart_in_ms: delay }, 'embedded PostgreSQL died; restarting');
      timer = setTimeout(restart, delay);
    });
  }

  function restart() {
    if (stopping) return;
    starting = o.start().then(
      async (db) => {
        if (stopping) return db.stop();
        current = db;
        upSince = Date.now();
        watch(db);
      },
      (err: unknown) => {
        if (stopping) return;
        const delay = restartDelayMs(restarts++);
        o.logger.error({ reason: (err as Error).message, restart_in_ms: delay }, 'embedded PostgreSQL did not start again; retrying');
        timer = setTimeout(restart, delay);
      },
    );
  }

  watch(first);
  return {
    /** The server running now (null while it is being restarted). */
    current: () => current,
    /** Stops watching and stops the server (one being started is stopped once it is up). */
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await starting;
      await current?.stop();
      current = null;
    },
  };
}
