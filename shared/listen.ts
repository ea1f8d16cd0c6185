// LISTEN that survives the database going away. postgres.js's own sql.listen issues LISTEN again
// when its connection closes, but once: if the server is still down at that moment the listener
// is dropped for good (postgres.js 3.4.9, src/index.js listen(): `.catch(() => {})`), and a
// worker never hears NOTIFY again; it only claims on its poll (1 s by default, up to 60 s). Here
// LISTEN is retried with backoff until it succeeds, and then every listener's onlisten runs: the
// producer claims whatever was notified while the connection was down (worker/producer.ts).
// shared/db.ts puts this in place of sql.listen, so callers keep postgres.js's signature.
import type postgres from 'postgres';

type Listener = { fn: (payload: string) => void; onlisten?: () => void };
type Hooks = { onnotify: (channel: string, payload: string) => void; onclose: () => void };

/** Retry waits (ms): 100, 200, 400, 800, then 1000: back within a second of the server. */
export const relistenDelayMs = (attempt: number) => Math.min(100 * 2 ** attempt, 1000);

/**
 * `open` makes the one connection (a pool of one) that carries every LISTEN of a pool, with
 * the given notification and close hooks.
 */
export function createListener(open: (hooks: Hooks) => postgres.Sql) {
  const channels = new Map<string, Set<Listener>>();
  let conn: postgres.Sql | null = null;
  let closes = 0; // connection closes seen (failed connects included)
  let restoring = false;
  let ended = false;

  const connection = () => {
    conn ??= open({
      onnotify: (channel, payload) => channels.get(channel)?.forEach((l) => l.fn(payload)),
      onclose: () => {
        closes++;
        void restore();
      },
    });
    return conn;
  };
  const quoted = (name: string) => `"${name.replace(/"/g, '""')}"`;

  /** LISTEN on every channel again, until it holds on one connection; then tell the listeners. */
  async function restore() {
    if (restoring) return;
    restoring = true;
    try {
      for (let attempt = 0; !ended && channels.size > 0; attempt++) {
        const seen = closes;
        try {
          for (const name of [...channels.keys()]) await connection().unsafe(`listen ${quoted(name)}`);
        } catch {
          await new Promise((r) => setTimeout(r, relistenDelayMs(attempt)));
          continue;
        }
        if (closes !== seen) continue; // closed again while listening: some LISTENs went with it
        for (const set of channels.values()) for (const l of set) l.onlisten?.();
        return;
      }
    } finally {
      restoring = false;
    }
  }

  async function listen(name: string, fn: (payload: string) => void, onlisten?: () => void) {
    const listener: Listener = { fn, onlisten };
    let set = channels.get(name);
    if (!set) {
      set = new Set();
      channels.set(name, set);
    }
    const first = set.size === 0;
    set.add(listener);
    // The first listener of a channel issues its LISTEN; failing here (no database at start-up)
    // fails the caller, as postgres.js's listen does.
    if (first) {
      try {
        await connection().unsafe(`listen ${quoted(name)}`);
      } catch (err) {
        set.delete(listener);
        if (set.size === 0) channels.delete(name);
        throw err;
      }
    }
    onlisten?.();
    const unlisten = async () => {
      const s = channels.get(name);
      if (!s?.delete(listener) || s.size > 0) return;
      channels.delete(name);
      await conn?.unsafe(`unlisten ${quoted(name)}`).catch(() => {});
    };
    return { state: {}, unlisten } as unknown as postgres.ListenMeta;
  }

  return {
    listen,
    async end(options?: { timeout?: number }) {
      ended = true;
      await conn?.end(options);
    },
  };
}
