// Standard Webhooks signatures (docs/api.md §4 "Delivery"): HMAC-SHA256 over
// "<webhook-id>.<webhook-timestamp>.<body>" keyed with the base64 bytes after "whsec_", sent as
// "v1,<base64>", one per active secret, space-separated. Receivers verify with any Standard
// Webhooks library; during a rotation they see two signatures and either secret verifies.
import { createHmac } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';

/** The HMAC key inside a "whsec_<base64>" secret. */
export function secretBytes(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
}

/** "v1,<base64 HMAC>" for one secret. `body` is exactly what is sent ('' when nothing is). */
export function signature(key: Buffer, id: string, timestamp: number, body: string | Buffer): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64')}`;
}

/** The three webhook-* headers for one delivery, signed by every key given (current first). */
export function webhookHeaders(keys: Buffer[], id: string, timestamp: number, body: string | Buffer): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': keys.map((k) => signature(k, id, timestamp, body)).join(' '),
  };
}
