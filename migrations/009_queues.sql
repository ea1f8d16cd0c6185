-- Queues and flow control (docs/queues.md, docs/api.md §6): named queues with parallelism,
-- a start rate and a pause switch, per-key flow control, and the indexes the fair claim uses.
--
-- No counter of running attempts is kept anywhere: a running attempt's slot IS its tasks row
-- in status running, with its lease. A worker that dies leaves a row whose lease expires; the
-- rescuer moves it back to pending and the slot is free. Nothing can leak.

-- A team's queue settings. A queue without a row has no limits (tasks name queues freely).
create table queues (
  team_id          bigint not null references teams (id) on delete cascade,
  name             text not null,
  parallelism      int check (parallelism between 1 and 10000),            -- null: no limit
  rate_per_second  double precision check (rate_per_second > 0 and rate_per_second <= 10000), -- null: no limit
  paused           boolean not null default false,
  -- Pacing: the next attempt may start at this time, and each start moves it to now + 1/rate.
  -- Written only by the claim, under this row's lock.
  next_start_at    timestamptz not null default '-infinity',
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  primary key (team_id, name)
);

-- Per-key flow control: the limits of the most recent task that named the key (written at
-- enqueue), and the key's pacing (written by the claim).
create table flow_keys (
  team_id          bigint not null references teams (id) on delete cascade,
  key              text not null,
  parallelism      int check (parallelism between 1 and 10000),
  rate_per_second  double precision check (rate_per_second > 0 and rate_per_second <= 10000),
  next_start_at    timestamptz not null default '-infinity',
  updated_at       timestamptz not null default now(),
  primary key (team_id, key)
);

-- A task's flow control as given (shown back on the task). Nullable without a default: a
-- catalog-only change, however many tasks there are.
alter table tasks add column flow_key text, add column flow_parallelism int, add column flow_rate double precision;

-- The fair claim of tasks without a queue or key (worker/claim.ts): one team after another,
-- each team's due rows in run_at order. Only runnable rows, so it stays as small as the backlog.
create index tasks_free_due on tasks (team_id, run_at)
  where status in ('pending', 'retrying') and queue is null and flow_key is null;

-- The claim of tasks with a queue or a key: groups (team, queue) found by a skip scan, each in
-- created_at order (FIFO). '' stands for "no queue" (a queue name is never empty).
create index tasks_gated on tasks (team_id, (coalesce(queue, '')), created_at, id)
  where status in ('pending', 'retrying') and (queue is not null or flow_key is not null);
-- "Is any task with a queue or key due?": the first entry answers it.
create index tasks_gated_due on tasks (run_at)
  where status in ('pending', 'retrying') and (queue is not null or flow_key is not null);

-- Per queue and status (GET /api/v1/queues/:name counts, the oldest pending, the running
-- attempts the claim counts against parallelism): a range of this index per queue.
create index tasks_queue_status on tasks (team_id, queue, status, run_at) where queue is not null;
-- The running attempts per flow key.
create index tasks_flow_running on tasks (team_id, flow_key) where status = 'running' and flow_key is not null;
