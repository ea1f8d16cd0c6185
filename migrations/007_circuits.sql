-- Circuit breakers, one per team and target origin (docs/circuits.md). The state is here so
-- every worker shares it and it survives restarts; each worker keeps a local copy of the
-- breakers that are not closed (circuits_not_closed) and refreshes it every second and on NOTIFY.
create table circuits (
  team_id         bigint not null references teams (id) on delete cascade,
  origin          text not null,            -- scheme://host:port, the port always written out
  state           text not null default 'closed' check (state in ('closed', 'open', 'half_open')),
  opened_at       timestamptz,              -- when the current open spell began (kept through half_open)
  open_ms         int not null default 0,   -- the current open period: 30 s, doubled on each re-open, at most 10 min
  next_probe_at   timestamptz,              -- open: when the one probe may start
  probe_token     uuid,                     -- half_open: which attempt is the probe
  probe_deadline  timestamptz,              -- half_open: another probe may start after this (a probe's worker died)
  changed_at      timestamptz not null default now(),
  primary key (team_id, origin)
);
create index circuits_not_closed on circuits (team_id) where state <> 'closed';

-- The last 50 state changes per breaker, with why.
create table circuit_transitions (
  id          bigint generated always as identity primary key,
  team_id     bigint not null references teams (id) on delete cascade,
  origin      text not null,
  at          timestamptz not null default now(),
  from_state  text not null,
  to_state    text not null,
  reason      text not null
);
create index circuit_transitions_breaker on circuit_transitions (team_id, origin, id desc);

-- The sliding window: attempts and retryable failures per 10 s. Only the last minute matters,
-- so rows older than a few minutes are deleted.
create table circuit_buckets (
  team_id   bigint not null,
  origin    text not null,
  bucket    timestamptz not null,
  requests  int not null,
  failures  int not null,
  primary key (team_id, origin, bucket)
);

-- Per hour, for the 24 h figures and history of the status page; kept 25 h.
create table circuit_hours (
  team_id        bigint not null,
  origin         text not null,
  hour           timestamptz not null,
  requests       int not null,
  failures       int not null,
  last_error     text,
  last_error_at  timestamptz,
  primary key (team_id, origin, hour)
);

-- Per endpoint (origin + path, never the query) and hour; kept 25 h.
create table circuit_endpoints (
  team_id          bigint not null,
  origin           text not null,
  path             text not null,
  hour             timestamptz not null,
  requests         int not null,
  successes        int not null,
  last_status      int,
  last_outcome     text not null,
  last_attempt_at  timestamptz not null,
  primary key (team_id, origin, path, hour)
);

-- A team's public status page: a random token (unguessable, 32 bytes) kept as is, so that
-- asking for the page again answers the same URL. Deleting the row revokes it.
create table status_pages (
  team_id     bigint primary key references teams (id) on delete cascade,
  token       text not null unique,
  created_at  timestamptz not null default now()
);
