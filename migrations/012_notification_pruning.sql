-- The pruner (worker/maintenance/pruner.ts) deletes events dispatched longer ago than
-- POSTHORN_NOTIFY_RETENTION_HOURS, oldest first. Partial: undispatched events (a moment's
-- worth) are not in it. One more index entry per event dispatched; events are few (failures
-- of one batch to one origin are one event).
create index events_dispatched on events (dispatched_at) where dispatched_at is not null;
