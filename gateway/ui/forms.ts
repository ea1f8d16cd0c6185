// Form plumbing for the UI's POST routes: the role an action needs (checked on the server for
// every action, whatever the page showed), the submitted fields, and a refusal as lines to show.
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { ProblemError, problem } from '../../shared/errors.ts';
import type { Role } from '../../shared/keys.ts';
import { atLeast } from './components.tsx';
import type { UiDeps, UiEnv } from './env.ts';

export function needs(role: Role): MiddlewareHandler<UiEnv> {
  return async function uiRoleGuard(c, next) {
    const have = c.get('session').principal.role;
    if (!atLeast(have, role)) throw problem('forbidden', `this needs a key with role ${role}; you signed in with a ${have} key`);
    await next();
  };
}

/** The form's text fields (files and repeated names are ignored: no UI form sends them). */
export async function formFields(c: Context<UiEnv>): Promise<Record<string, string>> {
  let body: Awaited<ReturnType<typeof c.req.parseBody>>;
  try {
    body = await c.req.parseBody();
  } catch {
    throw problem('validation_failed', 'the form could not be read');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** A refusal from the API's routes as lines a person can act on; anything else is rethrown. */
export function problemLines(e: unknown): string[] {
  if (!(e instanceof ProblemError)) throw e;
  if (e.errors?.length) return e.errors.map((f) => (f.path ? `${f.path}: ${f.message}` : f.message));
  return [e.detail];
}

/** What a list page's create form shows again after a refusal: the values sent and why. */
export type FormState = { values: Record<string, string>; errors: string[] };
export const EMPTY_FORM: FormState = { values: {}, errors: [] };

/**
 * One POST /ui/<resource>/:id/<action> route per action (a row's Enable/Disable, Pause/Resume
 * button): PATCHes the API's /<resource>/:id with `patch(action)`, then back to the list with a
 * notice. A key that may not write gets 403 here whatever the page showed.
 */
export function patchActions<A extends string>(
  app: Hono<UiEnv>,
  deps: UiDeps,
  opts: { resource: string; actions: readonly A[]; patch: (action: A) => Record<string, unknown>; notice: string },
) {
  for (const action of opts.actions) {
    app.post(`/${opts.resource}/:id/${action}`, needs('write'), async (c) => {
      await deps.api(
        c.get('session').principal,
        'PATCH',
        `/${opts.resource}/${encodeURIComponent(c.req.param('id') ?? '')}`,
        opts.patch(action),
      );
      return c.redirect(`/ui/${opts.resource}?notice=${opts.notice}`, 303);
    });
  }
}
