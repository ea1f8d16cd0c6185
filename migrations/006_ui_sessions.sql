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
