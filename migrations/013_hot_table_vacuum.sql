-- Autovacuum for the hot table (docs/bench.md, "PostgreSQL's share"). Every task leaves two dead
-- row versions in tasks (the claim and the completion are UPDATEs; a retry or a lease renewal
-- adds more), so at 5,000 tasks/s tasks gains ~10,000 dead tuples a second. With the defaults
-- (vacuum after 50 + 20% of the table is dead) a table holding a week of history, say 10 million
-- rows, waits for 2 million dead tuples, ~200 s of traffic, and is then vacuumed with the
-- default cost limit, so the heap and the claim's partial index carry that many dead entries
-- the whole time and the claim walks over them.
--
-- Instead: vacuum once 10,000 + 1% of the table is dead (1 million rows: every ~2 s of full
-- traffic, so in practice every autovacuum_naptime = 1 min; 10 million rows: ~110,000), and let
-- that vacuum run at the rate a hot table needs: a cost limit of 2,000 (10x the default) and a
-- delay of 1 ms. Finished history is all-visible after its first vacuum, so the visibility map
-- lets a vacuum skip it: a pass costs about the pages the last minute dirtied, however long the
-- retention. Analyze after 2% changed keeps the planner's row counts for the partial indexes
-- current. Inserts alone (a burst of delayed tasks) trigger a vacuum after 5% (default 20%),
-- which sets the visibility map and freezes in small steps instead of one anti-wraparound pass.
--
-- fillfactor stays 100: none of a task's state changes can be a HOT update, because status
-- is in the predicate of tasks_runnable, tasks_leased and tasks_team_failed, and a lease
-- renewal changes lease_expires_at, the key of tasks_leased; free space kept on every page would
-- only make the table larger.
alter table tasks set (
  autovacuum_vacuum_threshold = 10000,
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_insert_threshold = 10000,
  autovacuum_vacuum_insert_scale_factor = 0.05,
  autovacuum_analyze_threshold = 10000,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_cost_limit = 2000,
  autovacuum_vacuum_cost_delay = 1
);

-- Attempts are only inserted (and deleted with their task by the pruner): vacuum after 5% new
-- rows keeps the visibility map current and freezes in small steps.
alter table task_attempts set (
  autovacuum_vacuum_insert_threshold = 10000,
  autovacuum_vacuum_insert_scale_factor = 0.05
);
