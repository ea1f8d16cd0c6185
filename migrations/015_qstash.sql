-- The QStash-compatible API (docs/qstash.md): each team's QStash signing keys, and a flag on
-- tasks and schedules that came in through /v2, so the worker adds the Upstash-Signature JWT
-- (and Upstash-Message-Id, Upstash-Retried) to their deliveries and to no others.

-- A QStash signing key: "sig_" + base64 of 32 random bytes without +, / and = (about 43
-- characters, at least 240 random bits; gen_random_uuid() is the server's strong random source,
-- as in posthorn_new_signing_secret of migration 002). Receivers use the key's text as the
-- HMAC key, as QStash's do.
create function posthorn_new_qstash_key() returns text
language sql volatile as $$
  select 'sig_' || translate(encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64'), '+/=', '')
$$;

-- One row per team. Deliveries are signed with current_key; receivers also accept next_key,
-- so a rotation (current := next, next := new) never fails a receiver that holds the pair it
-- read before the rotation.
create table qstash_signing_keys (
  team_id      bigint primary key references teams (id) on delete cascade,
  current_key  text not null default posthorn_new_qstash_key(),
  next_key     text not null default posthorn_new_qstash_key(),
  rotated_at   timestamptz
);

insert into qstash_signing_keys (team_id) select id from teams;

create function posthorn_team_qstash_key() returns trigger
language plpgsql as $$
begin
  insert into qstash_signing_keys (team_id) values (new.id) on conflict do nothing;
  return new;
end
$$;

create trigger teams_qstash_key after insert on teams
  for each row execute function posthorn_team_qstash_key();

-- false for every existing row and every native enqueue; a constant default adds the column
-- without rewriting the table.
alter table tasks add column qstash boolean not null default false;
alter table schedules add column qstash boolean not null default false;
