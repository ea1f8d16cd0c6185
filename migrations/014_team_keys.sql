-- Keys that a distributed PostgreSQL (Citus) can shard by team (docs/scaling.md). A distributed
-- table's primary and unique keys, and the foreign keys between distributed tables, must
-- include the distribution column; ours is team_id. Every table that holds a team's data gets
-- team_id at the front of its keys here, in place (no copy of any table); test/schema-keys.test.ts
-- reads the catalog and fails when a key lacks it.
--
-- Not changed, on purpose (the test lists them as exceptions, with why):
--   teams             the reference table every team table points at; it has no team_id.
--   api_keys          looked up by key_hash on every request, before the team is known: a
--                     small reference table (one copy on every node), so key_hash stays unique.
--   status_pages      the public page is found by its token, before the team is known: also a
--                     small reference table (one row per team).
--   ui_sessions, rate_limits, posthorn_migrations: no team_id; found by a hash or key alone.
--
-- Cost: each primary key below is a new index built by reading its table once, under an
-- ACCESS EXCLUSIVE lock: enqueues and claims wait until the migration commits. Measured on
-- the 2-core development machine while other work used most of it: 3.3 s for 200,000 tasks
-- with one attempt each, so about 17 s per million; plan it for a quiet moment.
-- The indexes the new keys make redundant are dropped, so tasks ends with one index fewer
-- than before (tasks_team_id was (team_id, id desc); the new primary key (team_id, id) serves
-- the same newest-first walk backwards), and enqueue and completion write one index fewer.

-- Foreign keys that lean on the old primary keys go first; they come back with team_id.
alter table task_attempts drop constraint task_attempts_task_id_fkey;
alter table channel_deliveries drop constraint channel_deliveries_channel_id_fkey;
alter table notification_windows drop constraint notification_windows_channel_id_fkey;

-- tasks: (team_id, id). Every query that finds a task by id also names its team (the API knows
-- it from the key, a worker from the claimed row).
alter table tasks drop constraint tasks_pkey;
alter table tasks add constraint tasks_pkey primary key (team_id, id);
drop index tasks_team_id;
-- A cron tick is one task: (schedule_id, scheduled_for) was unique; a schedule belongs to one
-- team, so with team_id in front it is the same rule (shared/tasks.ts names it in ON CONFLICT).
drop index tasks_schedule_tick;
create unique index tasks_schedule_tick on tasks (team_id, schedule_id, scheduled_for)
  where schedule_id is not null and scheduled_for is not null;

-- task_attempts: (team_id, task_id, attempt), and its task by (team_id, id). The cascade from
-- a deleted task finds its attempts by the key's first two columns.
alter table task_attempts drop constraint task_attempts_pkey;
alter table task_attempts add constraint task_attempts_pkey primary key (team_id, task_id, attempt);
alter table task_attempts add constraint task_attempts_task_fkey
  foreign key (team_id, task_id) references tasks (team_id, id) on delete cascade;

-- schedules: (team_id, id); schedules_team (team_id, id desc) is the new key read backwards.
alter table schedules drop constraint schedules_pkey;
alter table schedules add constraint schedules_pkey primary key (team_id, id);
drop index schedules_team;

-- events: (team_id, id); events_team likewise. The notifier's queue (events_undispatched) is
-- not a key and stays as it is.
alter table events drop constraint events_pkey;
alter table events add constraint events_pkey primary key (team_id, id);
drop index events_team;

-- circuit_transitions: (team_id, origin, id) is what circuit_transitions_breaker indexed; as
-- the key, it replaces it.
alter table circuit_transitions drop constraint circuit_transitions_pkey;
alter table circuit_transitions add constraint circuit_transitions_pkey primary key (team_id, origin, id);
drop index circuit_transitions_breaker;

-- channels: (team_id, id); channels_team is redundant.
alter table channels drop constraint channels_pkey;
alter table channels add constraint channels_pkey primary key (team_id, id);
drop index channels_team;

alter table channel_deliveries drop constraint channel_deliveries_pkey;
alter table channel_deliveries add constraint channel_deliveries_pkey primary key (team_id, id);
alter table channel_deliveries add constraint channel_deliveries_channel_fkey
  foreign key (team_id, channel_id) references channels (team_id, id) on delete cascade;

-- notification_windows had no team_id: it is copied from each window's channel (a few rows
-- per channel at most; the table holds only live 10-minute windows).
alter table notification_windows add column team_id bigint;
update notification_windows w set team_id = c.team_id from channels c where c.id = w.channel_id;
alter table notification_windows alter column team_id set not null;
alter table notification_windows drop constraint notification_windows_pkey;
alter table notification_windows add constraint notification_windows_pkey primary key (team_id, channel_id, type, subject);
alter table notification_windows add constraint notification_windows_channel_fkey
  foreign key (team_id, channel_id) references channels (team_id, id) on delete cascade;
