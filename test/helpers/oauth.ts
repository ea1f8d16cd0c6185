// A real OAuth2 token endpoint (client credentials, RFC 6749 §4.4) and an API that accepts only
// the tokens it issued and that are still current, both on one server on 127.0.0.1.
//   POST /token  Basic client_id:client_secret, grant_type=client_credentials → {access_token, expires_in}
//   any /api/... Bearer <a current token> → 200 {"ok":true}; anything else → 401
// The test switches the endpoint to failing, revokes tokens and counts everything.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export type OAuthServerOptions = { clientId: string; clientSecret: string; expiresIn?: number };

export async function startOAuthServer(o: OAuthServerOptions) {
  const issued = new Map<string, { expiresAt: number; revoked: boolean }>();
  const state = {
    expiresIn: o.expiresIn ?? 3600,
    /** Status the token endpoint answers with instead of a token; null: issue tokens. */
    failWith: null as number | null,
    tokenRequests: 0,
    /** Form bodies and authorization headers of the token requests, for checks. */
    tokenForms: [] as URLSearchParams[],
    apiRequests: 0,
    apiRejected: 0,
    /** The bearer token of every API request accepted, in order. */
    accepted: [] as string[],
  };
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    if (req.url === '/token') {
      state.tokenRequests++;
      const form = new URLSearchParams(body);
      state.tokenForms.push(form);
      if (state.failWith !== null) {
        res.writeHead(state.failWith, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: 'server_error', error_description: 'the test said so' }));
      }
      const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
      if (basic !== `${o.clientId}:${o.clientSecret}` || form.get('grant_type') !== 'client_credentials') {
        res.writeHead(401, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: 'invalid_client' }));
      }
      const token = `at-${state.tokenRequests}-${randomBytes(12).toString('hex')}`;
      issued.set(token, { expiresAt: Date.now() + state.expiresIn * 1000, revoked: false });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      return res.end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: state.expiresIn }));
    }
    state.apiRequests++;
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    const t = issued.get(token);
    if (!t || t.revoked || Date.now() >= t.expiresAt) {
      state.apiRejected++;
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
      return res.end('{"ok":false}');
    }
    state.accepted.push(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    tokenUrl: `${url}/token`,
    state,
    /** Every token issued so far. */
    tokens: () => [...issued.keys()],
    revokeAll() {
      for (const t of issued.values()) t.revoked = true;
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
