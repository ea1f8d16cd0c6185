-- The core: teams, API keys, tasks (the hot table) and their attempts (history, cold).
-- team_id is on every row so that every hot query can run within one team's rows, and the
-- tables can later be distributed by team (Citus) without a rewrite.

create table teams (
  id          bigint generated always as identity primary key,
  slug        text not null unique,
  name        text not null,
  rate_limit  text,                       -- null: POSTHORN_RATE_LIMIT
  created_at  timestamptz not null default now()
);

create table api_keys (
  id          uuid primary key,
  team_id     bigint not null references teams (id) on delete cascade,
  name        text not null,
  role        text not null check (role in ('read', 'write', 'admin')),
  key_hash    bytea not null unique,      -- sha256 of the key; the key itself is never stored
  created_at  timestamptz not null default now(),
  revoked_at  timestamptz
);
create index api_keys_team on api_keys (team_id);

-- Status as stored: pending (waiting for run_at, "scheduled" while run_at is in the future),
-- running, retrying, succeeded, failed, canceled.
create table tasks (
  id                    uuid primary key,  -- UUIDv7: sorts by creation time
  team_id               bigint not null references teams (id) on delete cascade,
  status                text not null check (status in ('pending', 'running', 'retrying', 'succeeded', 'failed', 'canceled')),
  url                   text not null,
  method                text not null,
  headers               jsonb not null default '{}',
  body                  text,              -- exactly the bytes to send (UTF-8)
  body_is_json          boolean not null default false,
  run_at                timestamptz not null,   -- next time it may run
  max_retries           int not null,
  min_backoff_ms        int not null,
  max_backoff_ms        int not null,
  timeout_ms            int not null,
  queue                 text,
  label                 text,
  callback_url          text,
  failure_callback_url  text,
  idempotency_key       text,
  parent_id             uuid,
  schedule_id           uuid,
  scheduled_for         timestamptz,
  traceparent           text,
  attempts              int not null default 0,  -- attempts started, over the task's whole life
  retry_base            int not null default 0,  -- attempts before the last replay: retries count from here
  started_at            timestamptz,       -- when the current attempt was claimed
  lease_token           uuid,
  lease_expires_at      timestamptz,
  locked_by             text,
  created_at            timestamptz not null default now(),
  finished_at           timestamptz
);

-- The claim index holds only runnable rows, so it stays small however much history piles up.
create index tasks_runnable on tasks (run_at) where status in ('pending', 'retrying');
-- The rescuer looks only at running rows.
create index tasks_leased on tasks (lease_expires_at) where status = 'running';
-- Listing is per team, newest first (ids are time ordered), with cursor = last id.
create index tasks_team_id on tasks (team_id, id desc);
create index tasks_team_schedule on tasks (team_id, schedule_id, id desc) where schedule_id is not null;

-- Idempotency keys live 24 h (docs/api.md §4); a row past expires_at is taken over by a new task.
create table idempotency_keys (
  team_id       bigint not null references teams (id) on delete cascade,
  key           text not null,
  task_id       uuid not null,
  request_hash  bytea not null,
  expires_at    timestamptz not null,
  primary key (team_id, key)
);

create table task_attempts (
  task_id             uuid not null references tasks (id) on delete cascade,
  attempt             int not null,
  team_id             bigint not null,
  started_at          timestamptz not null,
  finished_at         timestamptz not null,
  duration_ms         int not null,
  outcome             text not null check (outcome in ('success', 'http_error', 'timeout', 'network_error', 'blocked')),
  status_code         int,
  response_headers    jsonb,
  response_body       text,
  response_encoding   text,               -- null = utf8 text, 'base64' for binary
  response_truncated  boolean not null default false,
  error               text,
  primary key (task_id, attempt)
);
