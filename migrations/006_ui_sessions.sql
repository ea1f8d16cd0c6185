-- Web UI sessions (docs/ui.md). Signing in with an API key makes a session; the browser holds
-- a random token in the posthorn_session cookie and only its SHA-256 is stored here, so this
-- table cannot be used to sign in. A session acts with its key's team and role, read from
-- api_keys on every request: revoking the key (revoked_at) ends its sessions at once, and
-- deleting the key (or the team) deletes them.
-- Expiry: 12 h after the last request (sliding), and 7 days after sign-in whatever happens
-- (gateway/ui/session.ts).
create table ui_sessions (
  token_hash    bytea primary key,
  key_id        uuid not null references api_keys (id) on delete cascade,
  created_at    timestamptz not null default now(),
  last_seen_at  timestamptz not null default now(),
  expires_at    timestamptz not null
);
create index ui_sessions_key on ui_sessions (key_id);
-- Expired sessions are swept at each sign-in (a range delete on this index).
create index ui_sessions_expires on ui_sessions (expires_at);

-- The dead-letters page (and GET /api/v1/tasks?status=failed) lists a team's failed tasks newest
-- first. Failed tasks are usually a sliver of the history, so walking tasks_team_id and
-- filtering found them slowly: with 10 failed among 1,000,000 tasks a page took 396 ms, and it
-- grows with the table; through this index, 9 ms. It holds only failed rows, so it stays small
-- and costs nothing for tasks that succeed. Building it reads the table once (on a table of
-- millions of rows the migration takes seconds, during which enqueues wait).
create index tasks_team_failed on tasks (team_id, id desc) where status = 'failed';
