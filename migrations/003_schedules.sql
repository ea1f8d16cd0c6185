-- Cron schedules (docs/api.md §5). The task a tick creates is built from `template` (the validated
-- task fields), and (schedule_id, scheduled_for) is unique, so a tick becomes exactly one task
-- whichever worker leads, across leader changes, restarts and two leaders overlapping.
create table schedules (
  id                    uuid primary key,
  team_id               bigint not null references teams (id) on delete cascade,
  name                  text not null,
  cron                  text not null,
  timezone              text not null default 'UTC',
  template              jsonb not null,     -- url, method, headers, body, retry, timeout_ms, ...
  paused                boolean not null default false,
  notify                jsonb,
  next_run_at           timestamptz,        -- the next tick; the scheduler's cursor
  last_run_at           timestamptz,        -- scheduled_for of the last tick turned into a task
  last_status           text,               -- of the last finished task from this schedule
  consecutive_failures  int not null default 0,
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now()
);
create index schedules_due on schedules (next_run_at) where not paused;
create index schedules_team on schedules (team_id, id desc);

create unique index tasks_schedule_tick on tasks (schedule_id, scheduled_for)
  where schedule_id is not null and scheduled_for is not null;
