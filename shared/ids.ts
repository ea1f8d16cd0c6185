// Task ids are UUIDv7: 48 bits of unix milliseconds then randomness, so they sort by creation
// time (docs/api.md §4) both as strings and as PostgreSQL's uuid type, and the gateway knows a
// batch's ids before the INSERT returns.
import { randomBytes, randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(16 * 256);
let poolOffset = pool.length;
// Ids made within one millisecond by this process count up in the 12 bits after the time
// (RFC 9562 §6.2, method 1), so a batch's ids sort in the batch's order: a FIFO queue delivers
// by (created_at, id), and a batch's rows share created_at (docs/queues.md).
let lastMs = -1;
let seq = 0;

export function uuidv7(nowMs: number = Date.now()): string {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const b = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  b[0] = Math.floor(nowMs / 2 ** 40) & 0xff;
  b[1] = Math.floor(nowMs / 2 ** 32) & 0xff;
  b[2] = (nowMs >>> 24) & 0xff;
  b[3] = (nowMs >>> 16) & 0xff;
  b[4] = (nowMs >>> 8) & 0xff;
  b[5] = nowMs & 0xff;
  if (nowMs === lastMs && seq < 0xfff) seq++;
  else {
    lastMs = nowMs;
    seq = ((b[6]! << 8) | b[7]!) & 0x7ff; // a random start in the lower half leaves room to count
  }
  b[6] = 0x70 | (seq >> 8);
  b[7] = seq & 0xff;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string) => UUID_RE.test(s);

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** n characters of [A-Za-z0-9], uniformly (rejection sampling keeps the 62-way split unbiased). */
export function randomBase62(n: number): string {
  let out = '';
  while (out.length < n) {
    for (const byte of randomBytes(n * 2)) {
      if (byte < 248 && out.length < n) out += BASE62[byte % 62];
    }
  }
  return out;
}
