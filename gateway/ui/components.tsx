/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The pieces every page is made of: the frame with its navigation, times, status badges,
// action forms with their CSRF token, notices and paging. JSX escapes every value it renders,
// so a task body holding <script> shows as text.
import type { Context } from 'hono';
import type { Child } from 'hono/jsx';
import { ROLES, type Role } from '../../shared/keys.ts';
import { ASSETS } from './assets.ts';
import type { UiEnv } from './env.ts';

export const atLeast = (role: Role, need: Role) => ROLES.indexOf(role) >= ROLES.indexOf(need);

/**
 * "2026-05-01 08:00:00 UTC": readable without the script, which rewrites it into the browser's
 * zone (short: the time alone when it is today, for dense tables); the title keeps UTC.
 */
export function Time({ at, short }: { at: Date | string | null | undefined; short?: boolean }) {
  if (!at) return <span class="muted">—</span>;
  const d = typeof at === 'string' ? new Date(at) : at;
  const iso = d.toISOString();
  const utc = `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  return (
    <time datetime={iso} title={utc} class={short ? 'short' : undefined}>
      {utc}
    </time>
  );
}

// Icon and word as well as colour: the badge reads the same in greyscale or to a screen reader.
const BADGES: Record<string, [string, string]> = {
  succeeded: ['✓', 'good'],
  success: ['✓', 'good'],
  active: ['▶', 'good'],
  failed: ['✕', 'bad'],
  http_error: ['✕', 'bad'],
  network_error: ['✕', 'bad'],
  timeout: ['⧗', 'bad'],
  blocked: ['⊘', 'bad'],
  retrying: ['↻', 'warn'],
  running: ['▶', 'busy'],
  pending: ['●', 'wait'],
  scheduled: ['◷', 'wait'],
  canceled: ['⊘', 'off'],
  paused: ['‖', 'off'],
  revoked: ['⊘', 'off'],
  // Circuit breakers (the status page).
  closed: ['✓', 'good'],
  half_open: ['◐', 'warn'],
  open: ['✕', 'bad'],
  // Heartbeat monitors and inbound endpoints.
  up: ['✓', 'good'],
  down: ['✕', 'bad'],
  new: ['●', 'wait'],
  enabled: ['▶', 'good'],
  disabled: ['‖', 'off'],
};

export function Badge({ status }: { status: string }) {
  const [icon, tone] = BADGES[status] ?? ['•', 'wait'];
  return (
    <span class={`badge ${tone}`}>
      <span aria-hidden="true">{icon}</span> {status.replace('_', ' ')}
    </span>
  );
}

export function Csrf({ c }: { c: Context<UiEnv> }) {
  return <input type="hidden" name="_csrf" value={c.get('session').csrf} />;
}

/** A button that POSTs. `confirm` asks first (ui.js); fields ride along as hidden inputs. */
export function Action(props: {
  c: Context<UiEnv>;
  action: string;
  label: string;
  confirm?: string;
  tone?: 'danger' | 'primary';
  fields?: Record<string, string | undefined>;
}) {
  return (
    <form method="post" action={props.action} class="inline" data-confirm={props.confirm}>
      <Csrf c={props.c} />
      {Object.entries(props.fields ?? {}).map(([k, v]) => (v === undefined ? null : <input type="hidden" name={k} value={v} />))}
      <button type="submit" class={props.tone}>
        {props.label}
      </button>
    </form>
  );
}

/** The last cell of a list row: one action button, shown only to a key that may write (`show`). */
export function ActionCell({ show, ...action }: Parameters<typeof Action>[0] & { show: boolean }) {
  return show ? (
    <td class="actions">
      <Action {...action} />
    </td>
  ) : null;
}

/** A column heading: its text, or its text and class (e.g. "hide-narrow"). */
export type Column = string | [label: string, cls: string];

/** A list in its scrolling wrapper; `actions` adds the empty heading over a last column of ActionCells. */
export function Table({ head, actions, children }: { head: Column[]; actions?: boolean; children?: Child }) {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            {head.map((h) => (typeof h === 'string' ? <th>{h}</th> : <th class={h[1]}>{h[0]}</th>))}
            {actions ? <th /> : null}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** The create form under a list, for a key that may write: its heading, what refused the last try, the form. */
export function CreateSection({ c, title, errors, children }: { c: Context<UiEnv>; title: string; errors: string[]; children?: Child }) {
  if (c.get('session').principal.role === 'read') return null;
  return (
    <>
      <h2 id="create">{title}</h2>
      <ErrorBox errors={errors} />
      {children}
    </>
  );
}

/**
 * A create form as the schedules, monitors and endpoints pages have it: the CSRF token, a Name
 * field, the page's own fields, and a submit button labelled by what it creates.
 */
export function NamedCreateForm(props: { c: Context<UiEnv>; action: string; name: string | undefined; submit: string; children?: Child }) {
  return (
    <form method="post" action={props.action} class="form-grid">
      <Csrf c={props.c} />
      <label>
        Name
        <input name="name" value={props.name ?? ''} required maxlength={128} />
      </label>
      {props.children}
      <div class="wide">
        <button type="submit" class="primary">
          {props.submit}
        </button>
      </div>
    </form>
  );
}

// Notices after a redirect are fixed messages picked by code: a crafted link cannot make the
// page say something of its choosing.
const NOTICES: Record<string, string> = {
  canceled: 'Task canceled.',
  replayed: 'Task replayed: it runs again with a fresh set of retries.',
  finished: 'The task had already finished; nothing changed.',
  'not-replayable': 'Only failed or canceled tasks can be replayed.',
  triggered: 'Schedule triggered: this is the task it made.',
  'schedule-created': 'Schedule created.',
  paused: 'Schedule paused.',
  resumed: 'Schedule resumed.',
  revoked: 'Key revoked: its sessions and requests stop now.',
  'previous-removed': 'The previous signing secret no longer signs.',
  'endpoint-created': 'Endpoint created: send webhooks to its inbound URL.',
  'endpoint-changed': 'Endpoint changed.',
  'event-replayed': 'Event forwarded again as a new task.',
  'monitor-created': 'Monitor created: it is new until its first ping.',
  'monitor-changed': 'Monitor changed.',
  'connection-deleted': 'Connection deleted: tasks that name it now fail as auth_error.',
};

export function Notice({ c }: { c: Context<UiEnv> }) {
  const code = c.req.query('notice');
  const n = c.req.query('replayed');
  if (n !== undefined && /^\d{1,5}$/.test(n)) {
    return <p class="notice" role="status">{`Replayed ${n} failed task${n === '1' ? '' : 's'}.`}</p>;
  }
  const text = code ? NOTICES[code] : undefined;
  return text ? (
    <p class="notice" role="status">
      {text}
    </p>
  ) : null;
}

export function ErrorBox({ errors }: { errors: string[] }) {
  if (!errors.length) return null;
  return (
    <div class="error" role="alert">
      {errors.length === 1 ? (
        <p>{errors[0]}</p>
      ) : (
        <ul>
          {errors.map((e) => (
            <li>{e}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** A query string from the non-empty values, for filter-preserving links. */
export function qs(params: Record<string, string | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export function Pager({
  base,
  filters,
  next,
  paged,
}: {
  base: string;
  filters: Record<string, string | undefined>;
  next: string | null;
  paged: boolean;
}) {
  if (!next && !paged) return null;
  return (
    <nav class="pager" aria-label="pages">
      {paged ? <a href={`${base}${qs(filters)}`}>« Newest</a> : <span />}
      {next ? <a href={`${base}${qs({ ...filters, cursor: next })}`}>Older »</a> : <span class="muted">end of list</span>}
    </nav>
  );
}

/** `live`: refresh the page's main part every 5 s (true) or every that many seconds (ui.js). */
export type Live = boolean | number | undefined;
const liveSeconds = (live: Live) => (live === true ? 5 : live || undefined);

export function Layout(props: { c: Context<UiEnv>; title: string; live?: Live; children?: Child }) {
  const { c } = props;
  const session = c.get('session');
  const here = c.req.path;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · Posthorn`}</title>
        <link rel="stylesheet" href={ASSETS.css.href} />
        <script src={ASSETS.js.href} defer />
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/ui">
            Posthorn
          </a>
          <nav class="main-nav">
            {c.get('nav').map((p) => (
              <a href={`/ui${p.path}`} aria-current={here === `/ui${p.path}` || here.startsWith(`/ui${p.path}/`) ? 'page' : undefined}>
                {p.label}
              </a>
            ))}
          </nav>
          <form method="post" action="/ui/logout" class="who">
            <span class="muted">{`${session.principal.role} key`}</span>
            <input type="hidden" name="_csrf" value={session.csrf} />
            <button type="submit" class="link">
              Sign out
            </button>
          </form>
        </header>
        <main id="main" data-live={liveSeconds(props.live)?.toString()}>
          <Notice c={c} />
          {props.children}
        </main>
        <footer class="muted">
          <span id="zone-note">Times are UTC.</span>
          {props.live ? <span id="live-note">{` This page refreshes itself every ${liveSeconds(props.live)} s.`}</span> : null}
        </footer>
      </body>
    </html>
  );
}

/** A whole page, with the doctype JSX cannot write. */
export function page(c: Context<UiEnv>, title: string, body: Child, opts: { live?: Live; status?: number } = {}) {
  const html = (
    <Layout c={c} title={title} live={opts.live}>
      {body}
    </Layout>
  );
  return c.html(`<!doctype html>${html}`, (opts.status ?? 200) as 200);
}
