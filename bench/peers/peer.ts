// What a peer job library gives the bench (bench/peers/run.ts): an in-process enqueuer, and a
// worker run in a child process (bench/peers/peer-worker.ts) like Posthorn's workers.
import { graphileWorker } from './graphile-worker.ts';
import { pgBoss } from './pg-boss.ts';

/** The job's work: the same POST to the sink a Posthorn task makes, keyed for the sink's receipts. */
export type SinkPost = (key: string, body: string) => Promise<void>;

export type PeerEnqueuer = {
  enqueue(key: string, body: string): Promise<void>;
  /** SQL giving { n }: jobs of the bench not yet finished. */
  unfinishedSql: string;
  close(): Promise<void>;
};

export type PeerWorker = { stop(): Promise<void> };

export type Peer = {
  name: string;
  version: string;
  enqueuer(url: string, concurrency: number): Promise<PeerEnqueuer>;
  worker(url: string, concurrency: number, post: SinkPost): Promise<PeerWorker>;
};

export const PEER_LIST: Peer[] = [pgBoss, graphileWorker];
