-- Notifications (docs/notifications.md): channels, the delivery outbox the notifier sends
-- from, the 10-minute window per (channel, event type, subject), and the per-task opt-out.

-- `"notify": false` on enqueue keeps a task's final failure silent. A boolean, not jsonb like
-- schedules.notify: a task has nothing to configure but on/off. A constant default is a
-- catalog-only change (no table rewrite), however many tasks there are.
alter table tasks add column notify boolean not null default true;

create table channels (
  id          uuid primary key,
  team_id     bigint not null references teams (id) on delete cascade,
  type        text not null check (type in ('email', 'slack', 'discord', 'webhook')),
  target      text not null,               -- an e-mail address or a webhook URL
  events      text[] not null,             -- event types this channel hears
  created_at  timestamptz not null default now()
);
create index channels_team on channels (team_id, id desc);

-- One row per message to send: written in the same transaction that marks the events it
-- stands for dispatched, so a change is announced once even if the notifier dies right after.
-- The sender claims rows with a lease (lease_until), so two notifiers never send one row at once.
create table channel_deliveries (
  id               uuid primary key,
  channel_id       uuid not null references channels (id) on delete cascade,
  team_id          bigint not null,
  kind             text not null check (kind in ('event', 'digest', 'test')),
  event_type       text,
  subject          text,
  message          jsonb not null,           -- what to say (rendered per channel type at send time)
  status           text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
  attempts         int not null default 0,
  next_attempt_at  timestamptz not null,
  lease_until      timestamptz,
  last_error       text,
  last_status_code int,
  history          jsonb not null default '[]',  -- one {at, outcome, status_code, error} per attempt
  created_at       timestamptz not null default now(),
  sent_at          timestamptz
);
create index channel_deliveries_due on channel_deliveries (next_attempt_at) where status = 'pending';
create index channel_deliveries_channel on channel_deliveries (channel_id, created_at desc);

-- The 10-minute window: the first event for a key opens it and is sent at once; later ones
-- only count (held, last) until the window ends, when one digest sums them up.
create table notification_windows (
  channel_id  uuid not null references channels (id) on delete cascade,
  type        text not null,
  subject     text not null,
  opened_at   timestamptz not null,
  held        int not null default 0,
  first_held  jsonb,                         -- data of the first event held back
  last_held   jsonb,                         -- data of the latest event held back
  primary key (channel_id, type, subject)
);
create index notification_windows_due on notification_windows (opened_at) where held > 0;
