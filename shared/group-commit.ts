// Group commit: callers hand in one item each and wait; items are written in batches by one
// function, at most `lanes` batches in flight. While the lanes are busy new items queue for
// the next batch, so the batch size grows with load by itself: one item at a time when idle
// (no added latency), hundreds under a burst. The gateway groups enqueues with it, the worker
// groups completions.
//
// One bad item must not fail the others (docs/api.md, errors): when a batch's write fails with an
// error that `isolate` blames on an item (a value PostgreSQL refuses), the batch is written
// again in halves, and so on down to the item, so only the items that fail alone are refused.
// A statement that failed wrote nothing, so writing its items again is safe. With one bad item
// among 500 that is about 2 × log2(500) ≈ 18 more statements, run in the batch's own lane.
export type GroupCommit<In, Out> = { add(item: In): Promise<Out>; drain(): Promise<void>; readonly pending: number };

export function createGroupCommit<In, Out>(
  write: (items: In[]) => Promise<Out[]>,
  opts: { maxBatch: number; lanes: number; isolate?: (err: unknown) => boolean },
): GroupCommit<In, Out> {
  type Waiter = { item: In; resolve: (r: Out) => void; reject: (e: unknown) => void };
  let queue: Waiter[] = [];
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];

  async function settle(batch: Waiter[]): Promise<void> {
    let results: Out[];
    try {
      results = await write(batch.map((w) => w.item));
    } catch (err) {
      if (batch.length > 1 && opts.isolate?.(err)) {
        const half = batch.length >> 1;
        await settle(batch.slice(0, half));
        await settle(batch.slice(half));
      } else batch.forEach((w) => w.reject(err));
      return;
    }
    batch.forEach((w, i) => w.resolve(results[i]!));
  }

  function pump() {
    while (inFlight < opts.lanes && queue.length > 0) {
      const batch = queue.slice(0, opts.maxBatch);
      queue = queue.slice(batch.length);
      inFlight++;
      settle(batch)
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
