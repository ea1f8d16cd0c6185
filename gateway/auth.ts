// API-key authentication: Bearer key → SHA-256 → api_keys row (with its team's rate limit).
// Results are cached for CACHE_TTL_MS so a busy key costs one lookup per 2 s instead of one
// per request; that TTL is also how long a revoked key can still be used on a gateway, and how
// long a team's new rate limit takes to apply (docs/api.md §2 allows 5 s for revocation).
import type { Context, MiddlewareHandler } from 'hono';
import { API_KEY_PATTERN, type RateLimit, rateLimitSchema } from '../shared/config.ts';
import type { Sql } from '../shared/db.ts';
import { problem } from '../shared/errors.ts';
import { hashKey, type Role } from '../shared/keys.ts';
import { createTtlCache } from '../shared/ttl-cache.ts';

export const CACHE_TTL_MS = 2000;
const CACHE_MAX = 10_000;

/** rateLimit: the team's own limit; null = the gateway's default (POSTHORN_RATE_LIMIT). */
export type Principal = { keyId: string; teamId: string; role: Role; rateLimit: RateLimit | null };
export type AuthEnv = { Variables: { principal: Principal } };

const RANK: Record<Role, number> = { read: 0, write: 1, admin: 2 };

/** The team's stored limit; one that no longer parses falls back to the default. */
function teamLimit(raw: string | null): RateLimit | null {
  if (!raw) return null;
  const parsed = rateLimitSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

export type AuthOptions = {
  now?: () => number;
  /** Runs before a 401 is sent (counts the failure per address; may throw 429 instead). */
  onFailure?: (c: Context) => Promise<void>;
};

export function authenticate(sql: Sql, opts: AuthOptions = {}): MiddlewareHandler<AuthEnv> {
  const now = opts.now ?? Date.now;
  // null (no such key) is cached too: a client retrying a bad key costs one lookup per TTL.
  const cache = createTtlCache<Principal | null>({ ttlMs: CACHE_TTL_MS, max: CACHE_MAX, now });

  async function lookup(key: string): Promise<Principal | null> {
    const hash = hashKey(key);
    const cacheKey = hash.toString('base64');
    const hit = cache.get(cacheKey);
    if (hit !== undefined) return hit;
    const [row] = await sql<{ id: string; team_id: string; role: Role; rate_limit: string | null }[]>`
      select k.id, k.team_id, k.role, t.rate_limit
      from api_keys k join teams t on t.id = k.team_id
      where k.key_hash = ${hash} and k.revoked_at is null`;
    const principal = row ? { keyId: row.id, teamId: String(row.team_id), role: row.role, rateLimit: teamLimit(row.rate_limit) } : null;
    cache.set(cacheKey, principal);
    return principal;
  }

  return async function authenticateKey(c, next) {
    const key = bearerToken(c);
    const principal = key && API_KEY_PATTERN.test(key) ? await lookup(key) : null;
    if (!principal) {
      await opts.onFailure?.(c);
      const detail = key ? 'the API key is not valid or has been revoked' : 'send an API key as "Authorization: Bearer <key>"';
      throw problem('unauthorized', detail, undefined, { 'www-authenticate': 'Bearer' });
    }
    c.set('principal', principal);
    await next();
  };
}

/** The token of `Authorization: Bearer <token>` (scheme case-insensitive), or null without one. */
export function bearerToken(c: Context): string | null {
  const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
  return m ? m[1]! : null;
}

/** GET needs read, everything else write, unless the route asks for more (keys: admin). */
export function requireRole(role: Role): MiddlewareHandler<AuthEnv> {
  return async function roleGuard(c, next) {
    const p = c.get('principal');
    if (RANK[p.role] < RANK[role]) throw problem('forbidden', `this action needs a key with role ${role}; this key has ${p.role}`);
    await next();
  };
}
