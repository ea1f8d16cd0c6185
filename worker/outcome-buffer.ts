// Outcomes the database could not take because it was away (a restart, a crash, a failover):
// the request was made, so the outcome is held in memory and written when the database answers
// again. Dropping it instead let the lease expire and the rescuer run the task again: a
// database restart delivered every task in flight a second time (docs/reliability.md).
//
// Bounded: at most `maxBytes` of outcomes are held (an outcome keeps at most 64 KiB of response
// body, worker/executor.ts). An outcome that fails past the bound is not held: its write fails
// as it did before this buffer, the lease expires and the task runs again (at least once). Held
// outcomes are also given up when the worker stops (close()): the same at-least-once path.
//
// The lease guard still decides: a held outcome is written with the lease token of its claim,
// so a task the rescuer gave back meanwhile is not overwritten (worker/completer.ts).

export type OutcomeBufferOptions<T> = {
  /** Bytes an item holds in memory, roughly. */
  sizeOf: (item: T) => number;
  /** Whether a failed write means "the database is away" rather than "this write is wrong". */
  isUnavailable: (err: unknown) => boolean;
  /** The most held at once; default 64 MiB. */
  maxBytes?: number;
  /** Wait before the n-th retry (0-based); default 100, 200, then 250 ms. */
  retryDelayMs?: (attempt: number) => number;
  /** An outcome is now held; `held` counts all of them. */
  onHold?: (held: { count: number; bytes: number }) => void;
  /** A held outcome was written after waiting `waitedMs`. */
  onWritten?: (waitedMs: number, held: { count: number; bytes: number }) => void;
};

export const DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024;
// Short: a held outcome must be written before a new leader's rescuer gives its task back. A
// try while the database is away costs a refused connection (or a 3 s connect timeout).
export const defaultRetryDelayMs = (attempt: number) => Math.min(100 * 2 ** attempt, 250);

export function createOutcomeBuffer<T>(o: OutcomeBufferOptions<T>) {
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_HELD_BYTES;
  const delay = o.retryDelayMs ?? defaultRetryDelayMs;
  const held = { count: 0, bytes: 0 };
  let closed = false;
  const sleepers = new Set<() => void>();

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });

  /**
   * Runs write(); while it fails because the database is away, holds `item` and runs it again
   * after a wait, until it succeeds, fails for another reason, the bound is reached or close().
   */
  async function run<R>(item: T, write: () => Promise<R>): Promise<R> {
    try {
      return await write();
    } catch (err) {
      const bytes = o.sizeOf(item);
      if (closed || !o.isUnavailable(err) || held.bytes + bytes > maxBytes) throw err;
      held.count++;
      held.bytes += bytes;
      o.onHold?.({ ...held });
      const since = Date.now();
      let last = err;
      try {
        for (let attempt = 0; ; attempt++) {
          await sleep(delay(attempt));
          if (closed) throw last;
          try {
            const r = await write();
            held.count--;
            held.bytes -= bytes;
            o.onWritten?.(Date.now() - since, { ...held });
            return r;
          } catch (e) {
            if (!o.isUnavailable(e)) throw e;
            last = e;
          }
        }
      } catch (e) {
        held.count--;
        held.bytes -= bytes;
        throw e;
      }
    }
  }

  return {
    run,
    /** What is held now. */
    held: () => ({ ...held }),
    /** Stop holding: what is held fails now with its last error, what fails later is not held. */
    close() {
      closed = true;
      for (const wake of [...sleepers]) wake();
    },
  };
}
