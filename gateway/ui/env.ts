// Types shared by the UI's pages: what a request carries, what a page gets, what a page is.
import type { Hono } from 'hono';
import type { Sql } from '../../shared/db.ts';
import type { Role } from '../../shared/keys.ts';
import type { ApiCall } from './api-client.ts';
import type { UiSession } from './session.ts';

/** One entry of the page registry (gateway/ui/pages.ts): its nav link and its routes. */
export type UiPage = {
  /** Under /ui, e.g. "/tasks"; also the nav link's target. */
  path: string;
  /** The nav link's text. */
  label: string;
  /** The least role that sees the page (it answers 403 below that). Actions check their own role. */
  role: Role;
  /** Adds the page's GET and POST routes to the UI app (paths under /ui). */
  mount: (app: Hono<UiEnv>, deps: UiDeps) => void;
};

export type UiEnv = { Variables: { session: UiSession; nav: UiPage[] } };

export type UiDeps = {
  sql: Sql;
  /** The API's routes, in-process, with the session's principal (gateway/ui/api-client.ts). */
  api: ApiCall;
  now: () => number;
};
