import { Readable } from 'node:stream';

// The request body as undici gets it. A body string handed to undici whole is copied into one
// Buffer for the life of the request, next to the string the claimed task already holds: with
// 64 slots and 1 MiB bodies that second copy was 64 MiB of a worker's memory (docs/bench.md,
// "Memory"). Bodies over STREAM_BODY_CHARS go as 64 KiB Buffers made one at a time while the
// socket takes them, with content-length set, so the wire sees the same request; smaller ones
// (nearly all) are passed as before, in one write.
//
// A large Buffer (a body read by its attempt, worker/task-body.ts, or a decoded base64 one) goes
// as 64 KiB views of itself, no copy: undici keeps a Buffer body on its request until the
// response has come, while the stream lets go of it once written, so an attempt waiting on a
// slow answer no longer holds its 1 MiB (the executor drops its own reference too).

export const STREAM_BODY_CHARS = 64 * 1024;

/** Sets content-length when it streams; returns what to pass as undici's body. */
export function requestBody(body: string | Buffer | null, headers: Record<string, string>): string | Buffer | Readable | undefined {
  if (body === null) return undefined;
  if (body.length <= STREAM_BODY_CHARS) return body;
  headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  const parts = typeof body === 'string' ? chunks(body) : views(body);
  return Readable.from(parts, { objectMode: false, highWaterMark: STREAM_BODY_CHARS });
}

/**
 * 64 KiB views of `b`, dropping it after the last. Not a generator: a finished generator keeps
 * its arguments, and undici keeps the stream until the response, so 64 attempts waiting on
 * their answers held 64 MiB of bodies already sent (a heap snapshot of test/worker-memory.test.ts).
 */
function views(b: Buffer): IterableIterator<Buffer> {
  let rest: Buffer | null = b;
  return {
    [Symbol.iterator]() {
      return this;
    },
    next(): IteratorResult<Buffer> {
      if (rest === null) return { done: true, value: undefined };
      const part = rest.subarray(0, STREAM_BODY_CHARS);
      rest = rest.length > STREAM_BODY_CHARS ? rest.subarray(STREAM_BODY_CHARS) : null;
      return { done: false, value: part };
    },
  };
}

function* chunks(s: string): Generator<Buffer> {
  for (let i = 0; i < s.length; ) {
    let end = Math.min(s.length, i + STREAM_BODY_CHARS);
    // Never split a surrogate pair: each half alone would be encoded as U+FFFD.
    const last = s.charCodeAt(end - 1);
    if (end < s.length && last >= 0xd800 && last <= 0xdbff) end--;
    yield Buffer.from(s.slice(i, end));
    i = end;
  }
}
