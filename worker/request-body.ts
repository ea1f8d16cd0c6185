import { Readable } from 'node:stream';

// The request body as undici gets it. A body string handed to undici whole is copied into one
// Buffer for the life of the request, next to the string the claimed task already holds: with
// 64 slots and 1 MiB bodies that second copy was 64 MiB of a worker's memory (docs/bench.md,
// "Memory"). Bodies over STREAM_BODY_CHARS go as 64 KiB Buffers made one at a time while the
// socket takes them, with content-length set, so the wire sees the same request; smaller ones
// (nearly all) are passed as before, in one write.

export const STREAM_BODY_CHARS = 64 * 1024;

/** Sets content-length when it streams; returns what to pass as undici's body. */
export function requestBody(body: string | Buffer | null, headers: Record<string, string>): string | Buffer | Readable | undefined {
  if (body === null) return undefined;
  // A binary body (body_encoding base64) is already one Buffer of its bytes: undici writes it as is.
  if (typeof body !== 'string') return body;
  if (body.length <= STREAM_BODY_CHARS) return body;
  headers['content-length'] = String(Buffer.byteLength(body));
  return Readable.from(chunks(body), { objectMode: false, highWaterMark: STREAM_BODY_CHARS });
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
