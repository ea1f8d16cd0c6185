// The body of a task claimed without it (larger than INLINE_BODY_BYTES, worker/claim.ts), read
// when its attempt starts. Read as the bytes PostgreSQL sends (postgres.js raw mode: the row's
// Buffer, no string decoded from it), which for a text body are the UTF-8 bytes the request
// sends and the signature covers; a base64 body is decoded from them once. No string of it is
// made, and no copy for undici: worker/request-body.ts sends the Buffer as views of itself and
// lets go of it once written.
import type { Queryable } from '../shared/db.ts';
import type { ClaimedTask } from './producer.ts';

/** The claim's lease is gone (the task was rescued, canceled and cleared, or completed): nothing may be sent. */
export const LEASE_LOST = Symbol('lease lost');

/**
 * The bytes a task whose claim left its body out sends, read under the claim's lease token: a
 * row whose token changed is no longer this attempt's, and LEASE_LOST says so.
 */
export async function loadBody(
  sql: Queryable,
  task: Pick<ClaimedTask, 'team_id' | 'id' | 'lease_token' | 'body_encoding'>,
): Promise<Buffer | null | typeof LEASE_LOST> {
  const rows = await sql`
    select body from tasks where team_id = ${task.team_id} and id = ${task.id} and lease_token = ${task.lease_token}`.raw();
  if (rows.length === 0) return LEASE_LOST;
  const stored = rows[0]![0] as Buffer | null;
  if (stored === null) return null;
  // base64 text is ASCII: latin1 reads it one byte per character; decoded once to the bytes sent.
  return task.body_encoding === 'base64' ? Buffer.from(stored.toString('latin1'), 'base64') : stored;
}

/**
 * Large bodies a worker reads at once. A read's bytes live until the request has written them;
 * 64 attempts started by one claim, each reading its 1 MiB at once, held 64 MiB of bodies plus
 * postgres.js's socket chunks of them (another 64 MiB, garbage until collected). Read a few at
 * a time, each is mostly written before the next arrives: test/worker-memory.test.ts peaked at
 * 161-173 MB with 2, 170-182 MB with 4. A 1 MiB read takes a few ms, so the 64th attempt of
 * such a claim starts some 100 ms late; tasks whose body came with the claim never wait here.
 */
export const READS_AT_ONCE = 2;

/** loadBody, at most `atOnce` at a time (in the order asked). */
export function createBodyReader(sql: Queryable, atOnce = READS_AT_ONCE) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async function read(task: Parameters<typeof loadBody>[1]): ReturnType<typeof loadBody> {
    if (active < atOnce) active++;
    else await new Promise<void>((start) => waiting.push(start)); // the slot is handed over as is
    try {
      return await loadBody(sql, task);
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
