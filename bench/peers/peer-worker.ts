// A peer library's worker as a child process (one per Posthorn worker it stands in for).
// argv: <peer name> <database url> <sink url> <concurrency>. Sends {type:'ready'} once working;
// each job POSTs its body to the sink with x-posthorn-task-id set to the job's key, with the
// same undici Agent settings as bench/raw-undici.ts. SIGTERM stops it.
import { Agent, request } from 'undici';
import { PEER_LIST } from './peer.ts';

const [name, url, sinkUrl, concurrencyArg] = process.argv.slice(2);
const peer = PEER_LIST.find((p) => p.name === name);
if (!peer) throw new Error(`unknown peer ${name}`);
const agent = new Agent({ connections: 256, keepAliveTimeout: 10_000, connectTimeout: 10_000 });

async function post(key: string, body: string): Promise<void> {
  const res = await request(`${sinkUrl}/hook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'posthorn-bench', 'x-posthorn-task-id': key },
    body,
    dispatcher: agent,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  for await (const _ of res.body) {
    /* read it all, as Posthorn's executor does */
  }
  if (res.statusCode !== 200) throw new Error(`sink answered ${res.statusCode}`);
}

const w = await peer.worker(url!, Number(concurrencyArg), post);
process.send!({ type: 'ready' });
process.once('SIGTERM', () => {
  void w
    .stop()
    .catch(() => {})
    .finally(() => agent.close().finally(() => process.exit(0)));
});
