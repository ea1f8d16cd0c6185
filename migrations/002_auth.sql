-- Sharing Posthorn between teams (docs/api.md §2, §4 "Delivery"): rate-limit counters shared by
-- every gateway, and each team's Standard Webhooks signing secrets.

-- rate-limiter-flexible's PostgreSQL store, in exactly the shape it would create itself
-- (key, points, expire in unix ms), created here so gateways need no DDL rights.
-- UNLOGGED: a counter row is rewritten on every request of a busy key, and these rows are
-- worth nothing after a crash (a window lasts seconds). Skipping the WAL means a commit does
-- not wait for a flush, which is most of the cost of an UPDATE on this machine.
create unlogged table rate_limits (
  key     varchar(255) primary key,
  points  integer not null default 0,
  expire  bigint
);

-- A new secret: "whsec_" + base64 of 32 random bytes. gen_random_uuid() is core PostgreSQL
-- (13+) and draws from the server's strong random source; two of them give 32 bytes of which
-- 244 bits are random (the version and variant bits are fixed), no extension needed.
create function posthorn_new_signing_secret() returns text
language sql volatile as $$
  select 'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64')
$$;

-- One row per team. The previous secret keeps signing next to the current one until
-- previous_expires_at (rotation + 24 h) or until it is deleted.
create table team_signing_keys (
  team_id              bigint primary key references teams (id) on delete cascade,
  current_secret       text not null default posthorn_new_signing_secret(),
  previous_secret      text,
  rotated_at           timestamptz,
  previous_expires_at  timestamptz,
  check ((previous_secret is null) = (previous_expires_at is null))
);

insert into team_signing_keys (team_id) select id from teams;

-- Every team gets its secret when it is created, whoever creates it (operator API, the
-- bootstrap on first start, the CLI or a test), so signing never meets a team without one.
create function posthorn_team_signing_key() returns trigger
language plpgsql as $$
begin
  insert into team_signing_keys (team_id) values (new.id) on conflict do nothing;
  return new;
end
$$;

create trigger teams_signing_key after insert on teams
  for each row execute function posthorn_team_signing_key();
