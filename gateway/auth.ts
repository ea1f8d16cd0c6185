// API-key authentication: Bearer key → SHA-256 → api_keys row. Results are cached for
// CACHE_TTL_MS so a busy key costs one lookup per 2 s instead of one per request; that TTL
// is also how long a revoked key can still be used on a gateway (API.md §2 allows 5 s).
import type { MiddlewareHandler } from 'hono';
import { problem } from '../shared/errors.ts';
import { hashKey, type Role } from '../shared/keys.ts';
import { API_KEY_PATTERN } from '../shared/config.ts';
import type { Sql } from '../shared/db.ts';

export const CACHE_TTL_MS = 2000;
const CACHE_MAX = 10_000;

export type Principal = { keyId: string; teamId: string; role: Role };
export type AuthEnv = { Variables: { principal: Principal } };

const RANK: Record<Role, number> = { read: 0, write: 1, admin: 2 };

export function authenticate(sql: Sql, opts: { now?: () => number } = {}): MiddlewareHandler<AuthEnv> {
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { at: number; principal: Principal | null }>();

  async function lookup(key: string): Promise<Principal | null> {
    const hash = hashKey(key);
    const cacheKey = hash.toString('base64');
    const hit = cache.get(cacheKey);
    if (hit && now() - hit.at < CACHE_TTL_MS) return hit.principal;
    const [row] = await sql`select id, team_id, role from api_keys where key_hash = ${hash} and revoked_at is null`;
    const principal = row ? { keyId: row.id as string, teamId: String(row.team_id), role: row.role as Role } : null;
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(cacheKey, { at: now(), principal });
    return principal;
  }

  return async function authenticateKey(c, next) {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw problem('unauthorized', 'send an API key as "Authorization: Bearer <key>"', undefined, { 'www-authenticate': 'Bearer' });
    const key = m[1]!;
    const principal = API_KEY_PATTERN.test(key) ? await lookup(key) : null;
    if (!principal) throw problem('unauthorized', 'the API key is not valid or has been revoked', undefined, { 'www-authenticate': 'Bearer' });
    c.set('principal', principal);
    await next();
  };
}

/** GET needs read, everything else write, unless the route asks for more (keys: admin). */
export function requireRole(role: Role): MiddlewareHandler<AuthEnv> {
  return async function roleGuard(c, next) {
    const p = c.get('principal');
    if (RANK[p.role] < RANK[role]) throw problem('forbidden', `this action needs a key with role ${role}; this key has ${p.role}`);
    await next();
  };
}
