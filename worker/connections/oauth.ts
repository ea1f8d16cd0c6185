// The OAuth2 client-credentials grant (RFC 6749 §4.4): one token request, through the worker's
// SSRF-safe dispatcher like every other outbound request (docs/api.md, targets that are not
// allowed). The client authenticates with HTTP Basic (§2.3.1, which every server must accept).
// Errors are AuthError (the attempt's outcome auth_error) and never carry the secret, the
// token or the endpoint's response body: at most the OAuth error code of §5.2.
import type { Dispatcher } from 'undici';
import type { ConnectionSettings } from '../../shared/connections.ts';
import { version } from '../../shared/version.ts';
import { findBlockedError } from '../dispatcher.ts';
import { request } from '../http.ts';

/** The credentials of a task could not be had. `statusCode`: the token endpoint's, when it answered. */
export class AuthError extends Error {
  readonly statusCode: number | null;
  constructor(message: string, statusCode: number | null = null) {
    super(message);
    this.name = 'AuthError';
    this.statusCode = statusCode;
  }
}

const MAX_RESPONSE_BYTES = 64 * 1024; // a token response is a few hundred bytes
/** Tokens without expires_in (RFC 6749 makes it optional) are taken to live an hour. */
export const DEFAULT_EXPIRES_IN_S = 3600;

export type FetchedToken = { accessToken: string; expiresInS: number };

// application/x-www-form-urlencoded, as §2.3.1 asks for the id and secret inside Basic.
const formEncode = (v: string) => new URLSearchParams({ v }).toString().slice(2);

async function readCapped(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<Buffer | null> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += chunk.length;
    if (n > MAX_RESPONSE_BYTES) {
      body.destroy();
      return null;
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

export async function fetchToken(
  s: ConnectionSettings,
  clientSecret: string,
  o: { dispatcher: Dispatcher; signal: AbortSignal; timeoutMs: number },
): Promise<FetchedToken> {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (s.scope) form.set('scope', s.scope);
  if (s.audience) form.set('audience', s.audience);
  const basic = Buffer.from(`${formEncode(s.client_id ?? '')}:${formEncode(clientSecret)}`).toString('base64');
  let res: Dispatcher.ResponseData;
  try {
    res = await request(s.token_url!, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        authorization: `Basic ${basic}`,
        'user-agent': `Posthorn/${version}`,
      },
      body: form.toString(),
      dispatcher: o.dispatcher,
      signal: o.signal,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    });
  } catch (err) {
    const blocked = findBlockedError(err);
    if (blocked) throw new AuthError(`token endpoint ${blocked.message}`);
    const e = err as { code?: string; name?: string; cause?: { code?: string } };
    throw new AuthError(`token endpoint unreachable: ${e.code ?? e.cause?.code ?? e.name ?? 'error'}`);
  }
  const body = await readCapped(res.body as never).catch(() => null);
  if (res.statusCode < 200 || res.statusCode >= 300) {
    let code = '';
    try {
      const err = JSON.parse(body?.toString('utf8') ?? '')?.error;
      if (typeof err === 'string' && /^[a-z_]{1,64}$/.test(err)) code = ` (${err})`;
    } catch {
      /* not JSON: no code to show */
    }
    throw new AuthError(`token endpoint answered HTTP ${res.statusCode}${code}`, res.statusCode);
  }
  let json: { access_token?: unknown; token_type?: unknown; expires_in?: unknown };
  try {
    json = JSON.parse(body?.toString('utf8') ?? '');
  } catch {
    throw new AuthError(`token endpoint answered HTTP ${res.statusCode} without a JSON token response`, res.statusCode);
  }
  if (typeof json?.access_token !== 'string' || json.access_token === '' || /[^\x21-\x7e]/.test(json.access_token)) {
    throw new AuthError('token endpoint answered without a usable access_token', res.statusCode);
  }
  if (typeof json.token_type === 'string' && json.token_type.toLowerCase() !== 'bearer') {
    throw new AuthError(
      `token endpoint gave token_type "${json.token_type.slice(0, 32)}"; only bearer tokens are supported`,
      res.statusCode,
    );
  }
  const expires = Number(json.expires_in);
  return { accessToken: json.access_token, expiresInS: Number.isFinite(expires) && expires > 0 ? expires : DEFAULT_EXPIRES_IN_S };
}
