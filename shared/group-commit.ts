// Group commit: callers hand in one item each and wait; items are written in batches by one
// function, at most `lanes` batches in flight. While the lanes are busy new items queue for
// the next batch, so the batch size grows with load by itself: one item at a time when idle
// (no added latency), hundreds under a burst. The gateway groups enqueues with it, the worker
// groups completions.
export type GroupCommit<In, Out> = { add(item: In): Promise<Out>; drain(): Promise<void>; readonly pending: number };

export function createGroupCommit<In, Out>(
  write: (items: In[]) => Promise<Out[]>,
  opts: { maxBatch: number; lanes: number },
): GroupCommit<In, Out> {
  type Waiter = { item: In; resolve: (r: Out) => void; reject: (e: unknown) => void };
  let queue: Waiter[] = [];
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];

  function pump() {
    while (inFlight < opts.lanes && queue.length > 0) {
      const batch = queue.slice(0, opts.maxBatch);
      queue = queue.slice(batch.length);
      inFlight++;
      write(batch.map((w) => w.item))
        .then((results) => batch.forEach((w, i) => w.resolve(results[i]!)))
        .catch((err) => batch.forEach((w) => w.reject(err)))
        .finally(() => {
          inFlight--;
          pump();
          if (inFlight === 0 && queue.length === 0) {
            const waiters = idleWaiters;
            idleWaiters = [];
            waiters.forEach((w) => w());
          }
        });
    }
  }

  return {
    add(item) {
      return new Promise<Out>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        // Wait for the end of this I/O turn so items that arrived together share a batch.
        if (queue.length === 1) setImmediate(pump);
      });
    },
    drain() {
      if (inFlight === 0 && queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    get pending() {
      return queue.length + inFlight;
    },
  };
}
