// The Upstash-Signature of a delivery made through the QStash-compatible API (docs/qstash.md):
// a JWT, HS256 keyed with the text of the team's current QStash signing key, with the claims
// QStash's own deliveries carry, so the official Receiver (`@upstash/qstash`) verifies it:
// iss "Upstash", sub the destination URL, body the base64url SHA-256 of the body sent, iat and
// nbf now, exp 5 minutes on (a captured signature is useless after that), jti unique.
// Written with node:crypto rather than a JWT library: one synchronous HMAC per delivery, no key
// import per call; test/qstash.test.ts verifies it with the official Receiver.
import { createHash, createHmac, randomBytes } from 'node:crypto';

/** How long a signature is valid: QStash's own tokens last 5 minutes too. */
export const SIGNATURE_TTL_S = 300;

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');
const HEADER = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

export type UpstashClaims = { iss: 'Upstash'; sub: string; body: string; iat: number; nbf: number; exp: number; jti: string };

export function upstashClaims(url: string, body: string | Buffer, nowS: number, jti: string): UpstashClaims {
  const hash = createHash('sha256').update(body).digest('base64url');
  return { iss: 'Upstash', sub: url, body: hash, iat: nowS, nbf: nowS, exp: nowS + SIGNATURE_TTL_S, jti };
}

/** A compact HS256 JWT; `key` is the key's text, used as its UTF-8 bytes (as the Receiver does). */
export function signJwt(claims: object, key: string): string {
  const input = `${HEADER}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

/** `body`: the bytes sent (a task's text, or the Buffer its attempt read: worker/task-body.ts). */
export type UpstashDelivery = { id: string; url: string; body: string | Buffer | null; attempts: number; schedule_id?: string | null };

/**
 * The headers a /v2 delivery adds to Posthorn's own: the signature, the message id (the task
 * id) and how often it was retried so far (0 on the first attempt).
 */
export function upstashHeaders(
  key: string,
  d: UpstashDelivery,
  nowS: number,
  jti = `jwt_${randomBytes(12).toString('hex')}`,
): Record<string, string> {
  const h: Record<string, string> = {
    'upstash-signature': signJwt(upstashClaims(d.url, d.body ?? '', nowS, jti), key),
    'upstash-message-id': d.id,
    'upstash-retried': String(Math.max(0, d.attempts - 1)),
  };
  if (d.schedule_id) h['upstash-schedule-id'] = d.schedule_id;
  return h;
}
