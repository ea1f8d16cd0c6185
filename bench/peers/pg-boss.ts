// pg-boss 10.4.2 (the newest whose engines allow Node 20.18) as a peer: enqueue with boss.send()
// in process, and a worker that makes the same POST to the sink per job. Its fastest documented
// settings: batchSize (jobs per fetch) and the 0.5 s minimum polling interval; a worker that
// got a full batch asks for the next at once (boss.notifyWorker, the documented "check for jobs
// now"), else it would sleep out the rest of the 0.5 s after every batch.
import PgBoss from 'pg-boss';
import type { Peer, PeerWorker, SinkPost } from './peer.ts';

const QUEUE = 'bench';

export const pgBoss: Peer = {
  name: 'pg-boss',
  version: '10.4.2',
  async enqueuer(url, concurrency) {
    const boss = new PgBoss({ connectionString: url, max: concurrency, supervise: false, schedule: false });
    boss.on('error', () => {});
    await boss.start();
    await boss.createQueue(QUEUE).catch(() => {}); // exists after the first run
    return {
      async enqueue(key, body) {
        await boss.send(QUEUE, { key, body });
      },
      // Jobs not yet completed: the drain's end, read through the bench's own connection.
      unfinishedSql: `select count(*)::int as n from pgboss.job where name = '${QUEUE}' and state <> 'completed'`,
      close: () => boss.stop({ graceful: false, wait: true }),
    };
  },
  async worker(url: string, concurrency: number, post: SinkPost): Promise<PeerWorker> {
    // One fetch loop per 8 slots (batchSize 8), so a slow POST holds up 7 others at most, and
    // concurrency slots are in flight at most, as for Posthorn's workers.
    const batchSize = 8;
    const loops = Math.max(1, Math.round(concurrency / batchSize));
    const boss = new PgBoss({ connectionString: url, max: loops + 2, supervise: true, schedule: false, migrate: false });
    boss.on('error', () => {});
    await boss.start();
    const ids: string[] = [];
    for (let i = 0; i < loops; i++) {
      const id: string = await boss.work<{ key: string; body: string }>(QUEUE, { batchSize, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        await Promise.all(jobs.map((j) => post(j.data.key, j.data.body)));
        if (jobs.length === batchSize) boss.notifyWorker(id);
      });
      ids.push(id);
    }
    return { stop: () => boss.stop({ graceful: true, wait: true, timeout: 5000 }) };
  },
};
