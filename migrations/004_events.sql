-- The event outbox (docs/api.md, notifications). A state change that people may be told about
-- (a task failed for good, a schedule failed or recovered, a circuit opened or closed, a
-- monitor went down or up) inserts its event in the same transaction as the change itself, so
-- no event is lost when a process dies after the change and none exists for a change that
-- rolled back. The notifier reads undispatched events in id order and marks them dispatched.
create table events (
  id             bigint generated always as identity primary key,
  team_id        bigint not null references teams (id) on delete cascade,
  type           text not null,        -- task.failed, schedule.failed, circuit.opened, ...
  subject        text not null,        -- what it is about: a schedule id, an origin, a monitor id
  data           jsonb not null default '{}',
  occurred_at    timestamptz not null default now(),
  dispatched_at  timestamptz
);
-- Only undispatched events are indexed: the notifier's queue stays small however long the
-- history grows.
create index events_undispatched on events (id) where dispatched_at is null;
create index events_team on events (team_id, id desc);
