// graphile-worker 0.17.3 (the newest whose engines allow Node 20.18) as a peer: enqueue with
// workerUtils.addJob() in process, and a runner whose task makes the same POST to the sink.
// Its fastest documented settings (worker.graphile.org/docs/performance): concurrency slots,
// a local queue of concurrency + 1 jobs fetched in one go, completions batched per tick
// (completeJobBatchDelay 0), and LISTEN/NOTIFY for new jobs (always on).
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import type { Peer, PeerWorker, SinkPost } from './peer.ts';

const quiet = new Logger(() => () => {});

export const graphileWorker: Peer = {
  name: 'graphile-worker',
  version: '0.17.3',
  async enqueuer(url, concurrency) {
    const utils = await makeWorkerUtils({ connectionString: url, logger: quiet, preset: { worker: { maxPoolSize: concurrency } } });
    await utils.migrate();
    return {
      async enqueue(key, body) {
        await utils.addJob('post', { key, body });
      },
      // Finished jobs are deleted; what is left is unfinished.
      unfinishedSql: 'select count(*)::int as n from graphile_worker._private_jobs',
      close: async () => void (await utils.release()),
    };
  },
  async worker(url: string, concurrency: number, post: SinkPost): Promise<PeerWorker> {
    const runner = await run({
      connectionString: url,
      concurrency,
      noHandleSignals: true,
      pollInterval: 2000,
      logger: quiet,
      preset: {
        worker: {
          maxPoolSize: concurrency + 2,
          localQueue: { size: concurrency + 1 },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      },
      taskList: {
        post: async (payload) => {
          const p = payload as { key: string; body: string };
          await post(p.key, p.body);
        },
      },
    });
    return { stop: () => runner.stop() };
  },
};
