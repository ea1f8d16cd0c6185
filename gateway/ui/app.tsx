/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The web UI under /ui (docs/ui.md): server-rendered pages behind a session cookie, with the
// page registry (gateway/ui/pages.ts) drawing the navigation and adding the routes.
// Order matters: headers → assets (public) → sign-in (public) → session → CSRF → pages.
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { HTTPException } from 'hono/http-exception';
import { isUnavailableError, ProblemError, problem } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import { deadline } from '../http.ts';
import { type ApiDeps, inProcessApi } from './api-client.ts';
import { assetByName } from './assets.ts';
import { atLeast, ErrorBox, page } from './components.tsx';
import type { UiDeps, UiEnv } from './env.ts';
import { formFields, needs } from './forms.ts';
import { pageHeaders } from './headers.ts';
import { LoginPage } from './pages/login.tsx';
import { PAGES } from './pages.ts';
import {
  cameOverHttps,
  clearSessionCookie,
  createSession,
  endSession,
  issueLoginToken,
  keyPrincipal,
  LOGIN_COOKIE,
  loadSession,
  loginTokenMatches,
  SESSION_COOKIE,
  sameToken,
  sessionToken,
  setSessionCookie,
} from './session.ts';

export type UiAppDeps = ApiDeps & {
  logger: Logger;
  /** The gateway's failed-authentication limit per address (gateway/rate-limit.ts); absent: none. */
  authFailed?: (c: Context) => Promise<void>;
  now?: () => number;
  deadlineMs?: number;
};

/** Where to go after signing in: the page that sent the browser to sign in, kept in a cookie (never in the URL). */
const NEXT_COOKIE = 'posthorn_next';
const SAFE_NEXT = /^\/ui(?:\/[\w\-./?=&%~+:]*)?$/;
// Room for a task-sized body plus the other fields of the schedule form.
const FORM_ENVELOPE_BYTES = 64 * 1024;

function loginPage(c: Context, status: 200 | 401 | 403 | 429, error?: string) {
  const html = <LoginPage loginToken={issueLoginToken(c)} error={error} />;
  return c.html(`<!doctype html>${html}`, status);
}

export function uiRoutes(deps: UiAppDeps) {
  const { sql, logger } = deps;
  const ui = new Hono<UiEnv>();
  const pageDeps: UiDeps = { sql, api: inProcessApi(deps), now: deps.now ?? Date.now };

  ui.use('*', pageHeaders());

  ui.get('/assets/:name', (c) => {
    const a = assetByName(c.req.param('name'));
    if (!a) return c.text('not found', 404);
    const cache = c.req.query('v') === a.hash ? 'public, max-age=31536000, immutable' : 'no-cache';
    return c.body(new Uint8Array(a.body), 200, { 'content-type': a.type, 'cache-control': cache });
  });

  ui.use('*', async function noStore(c, next) {
    await next();
    if (!c.res.headers.has('cache-control')) c.header('cache-control', 'no-store');
  });
  // 503 within the API's budget when the database is away. "Replay all" may take longer on
  // purpose (up to 1000 replays), and is bounded by its own cap instead.
  const pageDeadline = deadline(deps.deadlineMs ?? 4500);
  ui.use('*', (c, next) => (c.req.path === '/ui/dead-letters/replay-all' ? next() : pageDeadline(c, next)));
  ui.use(
    '*',
    bodyLimit({
      maxSize: deps.maxBodyBytes + FORM_ENVELOPE_BYTES,
      onError: () => {
        throw problem('payload_too_large', 'the form is larger than this gateway accepts');
      },
    }),
  );

  ui.get('/login', async (c) => {
    if (await loadSession(sql, sessionToken(c))) return c.redirect('/ui', 303);
    return loginPage(c, 200);
  });

  ui.post('/login', async (c) => {
    const f = await formFields(c as Context<UiEnv>);
    if (!loginTokenMatches(c, f.login_token)) return loginPage(c, 403, 'This sign-in form expired or came from another site. Try again.');
    const principal = await keyPrincipal(sql, (f.key ?? '').trim());
    if (!principal) {
      try {
        await deps.authFailed?.(c);
      } catch (e) {
        if (!(e instanceof ProblemError)) throw e;
        for (const [k, v] of Object.entries(e.headers ?? {})) c.header(k, v);
        return loginPage(c, 429, e.detail);
      }
      return loginPage(c, 401, 'That key is not valid or has been revoked.');
    }
    setSessionCookie(c, await createSession(sql, principal.keyId));
    const next = getCookie(c, NEXT_COOKIE);
    deleteCookie(c, LOGIN_COOKIE, { path: '/ui/login' });
    deleteCookie(c, NEXT_COOKIE, { path: '/ui/login' });
    return c.redirect(next && SAFE_NEXT.test(next) ? next : '/ui', 303);
  });

  ui.use('*', async function requireSession(c, next) {
    const session = await loadSession(sql, sessionToken(c));
    if (!session) {
      if (getCookie(c, SESSION_COOKIE)) clearSessionCookie(c);
      const url = new URL(c.req.url);
      const back = url.pathname + url.search;
      if (c.req.method === 'GET' && SAFE_NEXT.test(back) && back.length < 1000) {
        setCookie(c, NEXT_COOKIE, back, { httpOnly: true, sameSite: 'Lax', path: '/ui/login', secure: cameOverHttps(c), maxAge: 600 });
      }
      return c.redirect('/ui/login', 303);
    }
    c.set('session', session);
    c.set(
      'nav',
      PAGES.filter((p) => atLeast(session.principal.role, p.role)),
    );
    await next();
  });

  // Every POST past this point carries the session's CSRF token, whatever it does.
  ui.use('*', async function checkCsrf(c, next) {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const f = await formFields(c);
      if (!sameToken(f._csrf, c.get('session').csrf)) {
        throw problem(
          'forbidden',
          'This form is stale or came from another site (its CSRF token does not match). Reload the page and try again.',
        );
      }
    }
    await next();
  });

  ui.post('/logout', async (c) => {
    await endSession(sql, c.get('session').token);
    clearSessionCookie(c);
    return c.redirect('/ui/login', 303);
  });

  ui.get('/', (c) => c.redirect('/ui/tasks', 302));
  ui.get('/index.html', (c) => c.redirect('/ui/tasks', 302));
  for (const p of PAGES) {
    ui.use(p.path, needs(p.role));
    ui.use(`${p.path}/*`, needs(p.role));
    p.mount(ui, pageDeps);
  }
  ui.all('*', (c) => page(c, 'Not found', <ErrorBox errors={['There is no page here.']} />, { status: 404 }));

  ui.onError((err, c) => {
    let status = 500;
    let message = 'Something went wrong on the server; it has been logged.';
    if (err instanceof ProblemError) {
      status = err.status;
      message = err.detail;
      for (const [k, v] of Object.entries(err.headers ?? {})) c.header(k, v);
    } else if (isUnavailableError(err)) {
      status = 503;
      message = 'The database is not reachable right now. Try again in a few seconds.';
      c.header('retry-after', '5');
    } else if (err instanceof HTTPException && err.status < 500) {
      status = err.status;
      message = err.message || 'The request could not be read.';
    } else {
      logger.error({ err, path: c.req.path }, 'unhandled error in the web UI');
    }
    const title = status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Error';
    if (c.get('session') && c.get('nav')) return page(c, title, [<h1>{title}</h1>, <ErrorBox errors={[message]} />], { status });
    return c.html(`<!doctype html><title>${status} · Posthorn</title>${<ErrorBox errors={[message]} />}`, status as 400);
  });

  return ui;
}
