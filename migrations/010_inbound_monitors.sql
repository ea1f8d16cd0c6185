-- Inbound endpoints, heartbeat monitors (docs/endpoints.md, docs/monitors.md), and the one
-- column forwarded webhooks need on tasks.
--
-- Citus-ready keys: every table here holds one team's rows, so team_id leads every primary and
-- unique key and every foreign key between them. The two lookups that come without a team
-- (/in/<slug>, /ping/<token>) use plain indexes on the random slug and token: 24 base62
-- characters (143 bits) cannot collide in practice, and uniqueness per team is what the keys
-- enforce.

-- A forwarded webhook's body is sent byte for byte. Text bodies (UTF-8 without NUL) stay in
-- `body` as they are; anything else is stored there as base64 with body_encoding 'base64', and
-- the worker decodes it before sending and signing (PostgreSQL text cannot hold NUL or invalid
-- UTF-8). A constant default null is a catalog-only change, however many tasks there are.
alter table tasks add column body_encoding text check (body_encoding = 'base64');

create table endpoints (
  team_id      bigint not null references teams (id) on delete cascade,
  id           uuid not null,
  name         text not null,
  slug         text not null,
  forward_url  text not null,
  retry        jsonb,                          -- null: the default retry policy
  queue        text,
  enabled      boolean not null default true,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  primary key (team_id, id),
  unique (team_id, name),
  unique (team_id, slug)
);
create index endpoints_slug on endpoints (slug);

-- One row per request received on /in/<slug>: what came in, exactly, and the task that
-- forwards it (the latest one after a replay).
create table endpoint_events (
  team_id       bigint not null,
  id            uuid not null,                 -- UUIDv7: sorts by arrival
  endpoint_id   uuid not null,
  method        text not null,
  query         text not null default '',      -- the query string, '?' included, or ''
  headers       jsonb not null,                -- the original headers, hop-by-hop ones dropped
  content_type  text,
  body          bytea,                         -- exactly the bytes received
  task_id       uuid,
  received_at   timestamptz not null default now(),
  primary key (team_id, id),
  foreign key (team_id, endpoint_id) references endpoints (team_id, id) on delete cascade
);
create index endpoint_events_endpoint on endpoint_events (team_id, endpoint_id, id desc);
-- The leader deletes events past POSTHORN_RETENTION_HOURS (worker/maintenance/event-pruner.ts).
create index endpoint_events_received on endpoint_events (received_at);

create table monitors (
  team_id           bigint not null references teams (id) on delete cascade,
  id                uuid not null,
  name              text not null,
  token             text not null,
  interval_seconds  int check (interval_seconds > 0),
  cron              text,
  timezone          text not null default 'UTC',
  grace_seconds     int not null default 300 check (grace_seconds >= 0),
  paused            boolean not null default false,
  status            text not null default 'new' check (status in ('new', 'up', 'down')),
  last_ping_at      timestamptz,
  next_expected_at  timestamptz,               -- when the next ping is due
  down_at           timestamptz,               -- next_expected_at + grace: late from then on
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  primary key (team_id, id),
  unique (team_id, name),
  unique (team_id, token),
  check ((interval_seconds is null) <> (cron is null))
);
create index monitors_token on monitors (token);
-- The leader's overdue check reads only this: monitors that are up and running, by deadline.
-- New, down and paused monitors are not in it, so the check is one index range scan.
create index monitors_overdue on monitors (down_at) where status = 'up' and not paused;

create table monitor_pings (
  team_id      bigint not null,
  monitor_id   uuid not null,
  id           bigint generated always as identity,
  kind         text not null check (kind in ('success', 'fail')),
  method       text not null,
  user_agent   text,
  received_at  timestamptz not null default now(),
  primary key (team_id, monitor_id, id),
  foreign key (team_id, monitor_id) references monitors (team_id, id) on delete cascade
);
