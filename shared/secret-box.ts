// Secrets at rest (docs/connections.md): AES-256-GCM under POSTHORN_SECRET_KEY, with node:crypto.
//
// A sealed value is one string, `phs1.<key id>.<base64 of iv | tag | ciphertext>`: the key id
// (the first 8 hex digits of a SHA-256 of the key) says which key opens it, so a rotation can
// run while gateways and workers hold the new key and the old one as POSTHORN_SECRET_KEY_PREVIOUS,
// and `posthorn connections rotate-key` can find what is still sealed under an old key.
// The additional data binds a sealed value to the row it belongs to (team, connection and
// purpose): a ciphertext copied into another row does not open.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const PREFIX = 'phs1';
const IV_BYTES = 12; // GCM's standard nonce; random per seal (2^32 seals per key stay far from a collision)
const TAG_BYTES = 16;

export type SecretBox = {
  /** The id of the key new values are sealed under. */
  readonly keyId: string;
  seal(plaintext: string, aad: string): string;
  /** The plaintext; throws SecretBoxError when no key we hold opens it or it was altered. */
  open(sealed: string, aad: string): string;
  /** The key id a sealed value names (null when it is not one of ours). */
  keyIdOf(sealed: string): string | null;
};

export class SecretBoxError extends Error {}

export function secretKeyId(key: Buffer): string {
  return createHash('sha256').update('posthorn-secret-key\0').update(key).digest('hex').slice(0, 8);
}

/** Decodes a POSTHORN_SECRET_KEY value: base64 of exactly 32 bytes; the reason (a string) otherwise. */
export function parseSecretKey(raw: string): Buffer | string {
  const s = raw.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) return 'expected base64 of 32 bytes (openssl rand -base64 32)';
  const key = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== 32) return `expected 32 bytes, base64-encoded (this is ${key.length} bytes; openssl rand -base64 32)`;
  return key;
}

/** `current` seals and opens; `previous` only open (during a rotation). */
export function createSecretBox(current: Buffer, previous: Buffer[] = []): SecretBox {
  const keys = new Map<string, Buffer>();
  for (const k of [current, ...previous]) keys.set(secretKeyId(k), k);
  const keyId = secretKeyId(current);
  return {
    keyId,
    seal(plaintext, aad) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current, iv);
      cipher.setAAD(Buffer.from(aad, 'utf8'));
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `${PREFIX}.${keyId}.${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64')}`;
    },
    open(sealed, aad) {
      const [prefix, id, data] = sealed.split('.');
      if (prefix !== PREFIX || !id || data === undefined) throw new SecretBoxError('not a sealed secret');
      const key = keys.get(id);
      if (!key) {
        throw new SecretBoxError(
          `sealed under key ${id}, which this process does not hold (POSTHORN_SECRET_KEY is ${keyId}; set the old key as POSTHORN_SECRET_KEY_PREVIOUS, docs/connections.md)`,
        );
      }
      const buf = Buffer.from(data, 'base64');
      if (buf.length < IV_BYTES + TAG_BYTES) throw new SecretBoxError('sealed secret is truncated');
      const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(buf.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      try {
        return Buffer.concat([decipher.update(buf.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
      } catch {
        throw new SecretBoxError('sealed secret does not open (altered, or moved from another row)');
      }
    },
    keyIdOf(sealed) {
      const [prefix, id] = sealed.split('.');
      return prefix === PREFIX && id ? id : null;
    },
  };
}

/** The box of a parsed configuration, or null when POSTHORN_SECRET_KEY is unset. */
export function secretBoxFromConfig(c: { secretKey?: Buffer; secretKeyPrevious?: Buffer[] }): SecretBox | null {
  return c.secretKey ? createSecretBox(c.secretKey, c.secretKeyPrevious ?? []) : null;
}
