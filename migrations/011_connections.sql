-- Outbound credentials (docs/connections.md): connections a team's tasks and schedules name in
-- "auth", the OAuth2 tokens the fleet shares, and the per-task success rules.
--
-- Secrets are never stored in clear: `secret` and `token` hold values sealed by
-- shared/secret-box.ts (AES-256-GCM under POSTHORN_SECRET_KEY; the key id is part of the value,
-- so `posthorn connections rotate-key` finds what an old key sealed).

create table connections (
  team_id     bigint not null references teams (id) on delete cascade,
  id          uuid not null,
  name        text not null,
  type        text not null check (type in ('oauth2_client_credentials', 'bearer', 'basic')),
  -- What is not secret: token_url, client_id, scope, audience (oauth2), username (basic).
  settings    jsonb not null default '{}',
  -- Sealed JSON of the secret fields: client_secret, token or password.
  secret      text not null,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  primary key (team_id, id),
  unique (team_id, name)
);

-- One cached access token per OAuth2 connection, shared by every worker. usable_until is the
-- token's expiry less 60 s on the database's clock: past it, the next attempt fetches a new
-- one (under an advisory lock on the connection, so one worker fetches and the rest wait).
create table connection_tokens (
  team_id        bigint not null,
  connection_id  uuid not null,
  token          text not null,             -- sealed
  usable_until   timestamptz not null,
  fetched_at     timestamptz not null default now(),
  primary key (team_id, connection_id),
  foreign key (team_id, connection_id) references connections (team_id, id) on delete cascade
);

-- A task names its connection (by name, as the API does: a connection replaced under the same
-- name is used from the next attempt) and may carry a success rule. Both null for most tasks;
-- nullable columns without a default are a catalog-only change.
alter table tasks add column auth_connection text, add column success jsonb;

-- A new outcome: the credentials could not be had (token endpoint failed, connection deleted).
alter table task_attempts drop constraint task_attempts_outcome_check;
alter table task_attempts add constraint task_attempts_outcome_check
  check (outcome in ('success', 'http_error', 'timeout', 'network_error', 'blocked', 'auth_error')) not valid;
alter table task_attempts validate constraint task_attempts_outcome_check;
