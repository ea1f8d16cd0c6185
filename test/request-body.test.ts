// worker/request-body.ts: a large body goes to undici as 64 KiB Buffers with content-length;
// the bytes must be exactly the body's UTF-8, also when a surrogate pair straddles a chunk edge.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { requestBody, STREAM_BODY_CHARS } from '../worker/request-body.ts';

async function bytesOf(body: string | Readable | undefined): Promise<Buffer> {
  if (typeof body === 'string') return Buffer.from(body);
  const parts: Buffer[] = [];
  for await (const c of body as Readable) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('requestBody', () => {
  it('passes small bodies as they are and sets no content-length', async () => {
    const headers: Record<string, string> = {};
    expect(requestBody(null, headers)).toBeUndefined();
    expect(requestBody('{"a":1}', headers)).toBe('{"a":1}');
    expect(headers['content-length']).toBeUndefined();
  });

  it('streams a large body byte for byte, a surrogate pair on the chunk edge included', async () => {
    // '😀' is two UTF-16 units: put its first half at the last position of the first chunk.
    const body = `${'a'.repeat(STREAM_BODY_CHARS - 1)}😀${'é'.repeat(STREAM_BODY_CHARS)}😀z`;
    const headers: Record<string, string> = {};
    const out = requestBody(body, headers);
    expect(out).toBeInstanceOf(Readable);
    const bytes = await bytesOf(out as Readable);
    expect(bytes.equals(Buffer.from(body))).toBe(true);
    expect(headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(bytes.toString()).not.toContain('\uFFFD');
  });
});
