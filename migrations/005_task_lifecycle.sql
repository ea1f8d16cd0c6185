-- The task lifecycle (shared/tasks.ts): finished_at is set exactly when a task is in a
-- terminal status. succeeded and failed get it from the completer or the rescuer, canceled
-- from the cancel itself (the moment of the cancel, also when an attempt was still running
-- then; that attempt's own end is in task_attempts). Replay clears it with the move back to
-- pending. Every code path already keeps this; the constraint makes a future one that does not
-- fail loudly instead of leaving tasks the pruner never deletes (it selects on finished_at) or
-- a finished_at on a task that will still run.
--
-- Rows written by hand before this migration are brought in line first, so it cannot fail on
-- an existing database: a terminal task without finished_at is taken as finished when it was
-- last started (or created), and a task still to run loses a stray finished_at.
update tasks set finished_at = coalesce(started_at, created_at)
where status in ('succeeded', 'failed', 'canceled') and finished_at is null;
update tasks set finished_at = null
where status not in ('succeeded', 'failed', 'canceled') and finished_at is not null;

alter table tasks add constraint tasks_finished_at_terminal
  check ((status in ('succeeded', 'failed', 'canceled')) = (finished_at is not null));
