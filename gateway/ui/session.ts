// Web UI sessions (migration 006, docs/ui.md). Signing in exchanges an API key for a random
// 256-bit token in an HttpOnly cookie; only the token's SHA-256 is stored. Every request reads
// the key's role and revocation from api_keys (one indexed lookup, no cache), so a revoked key's
// sessions end at once and a session never acts with more than its key could.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { API_KEY_PATTERN } from '../../shared/config.ts';
import type { Sql } from '../../shared/db.ts';
import { hashKey, type Role } from '../../shared/keys.ts';
import type { Principal } from '../auth.ts';

export const SESSION_COOKIE = 'posthorn_session';
/** Double-submit token of the sign-in form (there is no session yet to tie a CSRF token to). */
export const LOGIN_COOKIE = 'posthorn_login';
/** Idle expiry: 12 h after the last request (a working day with a lunch break). */
export const SESSION_IDLE_MS = 12 * 3_600_000;
/** Absolute expiry: 7 days after sign-in, however busy the session. */
export const SESSION_MAX_MS = 7 * 24 * 3_600_000;
/** The sliding expiry is written at most once a minute per session, not on every page view. */
const TOUCH_AFTER_S = 60;

export type UiSession = { token: string; csrf: string; principal: Principal };

const sha256 = (s: string) => createHash('sha256').update(s).digest();
export const newToken = () => randomBytes(32).toString('base64url');

/**
 * The session's CSRF token, derived from its cookie token: a page can carry it without storage,
 * and knowing it reveals nothing about the cookie (SHA-256 is one-way). Sign-out ends both.
 */
export const csrfFor = (token: string) => createHash('sha256').update('posthorn-ui-csrf\0').update(token).digest('base64url');

export function sameToken(given: unknown, expected: string): boolean {
  if (typeof given !== 'string' || given.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

/** HTTPS directly, or behind a TLS proxy that says so. A forged header only makes the forger's own cookie Secure. */
export function cameOverHttps(c: Context): boolean {
  if (new URL(c.req.url).protocol === 'https:') return true;
  return c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
}

/** The key's id, team and role, or null for a malformed, unknown or revoked key. */
export async function keyPrincipal(sql: Sql, key: string): Promise<Principal | null> {
  if (!API_KEY_PATTERN.test(key)) return null;
  const [row] = await sql`select id, team_id, role from api_keys where key_hash = ${hashKey(key)} and revoked_at is null`;
  return row ? { keyId: row.id, teamId: String(row.team_id), role: row.role as Role, rateLimit: null } : null;
}

export async function createSession(sql: Sql, keyId: string): Promise<string> {
  const token = newToken();
  await sql`delete from ui_sessions where expires_at < now()`;
  await sql`
    insert into ui_sessions (token_hash, key_id, expires_at)
    values (${sha256(token)}, ${keyId}, now() + ${SESSION_IDLE_MS} * interval '1 millisecond')`;
  return token;
}

export async function loadSession(sql: Sql, token: string | undefined): Promise<UiSession | null> {
  if (!token || token.length > 100) return null;
  const hash = sha256(token);
  const [row] = await sql`
    select s.key_id, k.team_id, k.role, s.last_seen_at < now() - ${TOUCH_AFTER_S} * interval '1 second' as stale
    from ui_sessions s join api_keys k on k.id = s.key_id
    where s.token_hash = ${hash} and s.expires_at > now() and k.revoked_at is null`;
  if (!row) return null;
  if (row.stale) {
    await sql`
      update ui_sessions set last_seen_at = now(),
        expires_at = least(now() + ${SESSION_IDLE_MS} * interval '1 millisecond', created_at + ${SESSION_MAX_MS} * interval '1 millisecond')
      where token_hash = ${hash}`;
  }
  return {
    token,
    csrf: csrfFor(token),
    principal: { keyId: row.key_id, teamId: String(row.team_id), role: row.role as Role, rateLimit: null },
  };
}

export async function endSession(sql: Sql, token: string) {
  await sql`delete from ui_sessions where token_hash = ${sha256(token)}`;
}

export const sessionToken = (c: Context) => getCookie(c, SESSION_COOKIE);

/** No Max-Age: the cookie goes with the browser session; the server's expiry bounds it anyway. */
export function setSessionCookie(c: Context, token: string) {
  setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: 'Lax', path: '/', secure: cameOverHttps(c) });
}

export function clearSessionCookie(c: Context) {
  deleteCookie(c, SESSION_COOKIE, { path: '/', secure: cameOverHttps(c) });
}

/** A fresh double-submit token for the sign-in form, in a cookie only /ui/login sees. */
export function issueLoginToken(c: Context): string {
  const token = newToken();
  setCookie(c, LOGIN_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/ui/login', secure: cameOverHttps(c), maxAge: 3600 });
  return token;
}

export const loginTokenMatches = (c: Context, given: unknown) => {
  const cookie = getCookie(c, LOGIN_COOKIE);
  return cookie !== undefined && sameToken(given, cookie);
};
