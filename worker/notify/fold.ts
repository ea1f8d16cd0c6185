// Folding events into messages (docs/notifications.md). Pure: the notifier loads events,
// channels and windows, calls these with its `now`, and writes what they return in one
// transaction. Tests drive them (through the notifier's runOnce(now)) with a clock they control.
//
// Per (channel, event type, subject) there is a 10-minute window. The first event of a window
// is a message at once; the rest are only counted, and when the window ends one digest sums
// them up. The digest starts the next window, so a failure that goes on for an hour is one
// message every 10 minutes, and 10,000 failed tasks to one origin within a minute are two.

export const WINDOW_MS = 10 * 60_000;

export type EventRow = {
  id: string;
  team_id: string;
  type: string;
  subject: string;
  data: Record<string, unknown>;
  occurred_at: Date;
};

export type ChannelRow = { id: string; team_id: string; events: string[] };

export type WindowRow = {
  team_id: string;
  channel_id: string;
  type: string;
  subject: string;
  opened_at: Date;
  held: number;
  first_held: Held | null;
  last_held: Held | null;
};

/** What a digest remembers of an event it holds back: its data and when it happened. */
export type Held = { occurred_at: string; data: Record<string, unknown> };

/** What a delivery says; rendered per channel type at send time (worker/notify/messages.ts). */
export type Message = {
  kind: 'event' | 'digest' | 'test';
  type: string;
  subject: string;
  occurred_at: string;
  data: Record<string, unknown>;
  /** Digest: how many events were held back, the first and last of them, and the window. */
  count?: number;
  first?: Held | null;
  last?: Held | null;
  window_start?: string;
  window_end?: string;
};

export type NewDelivery = {
  channel_id: string;
  team_id: string;
  kind: 'event' | 'digest';
  event_type: string;
  subject: string;
  message: Message;
};

/** How many changes an event stands for: the completer folds one batch's failures per subject into one (data.count). */
export const countOf = (e: { data: Record<string, unknown> }) => {
  const n = Number(e.data.count ?? 1);
  return Number.isInteger(n) && n > 0 ? n : 1;
};

export const windowKey = (channelId: string, type: string, subject: string) => `${channelId}\u0000${type}\u0000${subject}`;

function digestOf(w: WindowRow, teamId: string, now: Date): NewDelivery {
  return {
    channel_id: w.channel_id,
    team_id: teamId,
    kind: 'digest',
    event_type: w.type,
    subject: w.subject,
    message: {
      kind: 'digest',
      type: w.type,
      subject: w.subject,
      occurred_at: now.toISOString(),
      data: w.last_held?.data ?? {},
      count: w.held,
      first: w.first_held,
      last: w.last_held,
      window_start: w.opened_at.toISOString(),
      window_end: now.toISOString(),
    },
  };
}

/** A window that ended with events held back yields its digest and starts a new window at `now`. */
function closeWindow(w: WindowRow, teamId: string, now: Date, out: NewDelivery[]) {
  out.push(digestOf(w, teamId, now));
  w.opened_at = now;
  w.held = 0;
  w.first_held = null;
  w.last_held = null;
}

/**
 * Digests for every window that has ended with events held back. `teamOf` maps a channel to
 * its team. Changed windows are returned for writing.
 */
export function dueDigests(windows: WindowRow[], teamOf: (channelId: string) => string | undefined, now: Date) {
  const deliveries: NewDelivery[] = [];
  const changed: WindowRow[] = [];
  for (const w of windows) {
    const team = teamOf(w.channel_id);
    if (team === undefined || w.held === 0 || now.getTime() - w.opened_at.getTime() < WINDOW_MS) continue;
    closeWindow(w, team, now, deliveries);
    changed.push(w);
  }
  return { deliveries, changed };
}

/**
 * Folds events (in id order) into the channels that hear them. `windows` holds the current
 * window of every key the events touch (missing = none); it is updated in place, and the
 * windows that changed are returned with the deliveries to create.
 */
export function foldEvents(events: EventRow[], channels: ChannelRow[], windows: Map<string, WindowRow>, now: Date) {
  const byTeam = new Map<string, ChannelRow[]>();
  for (const c of channels) byTeam.set(c.team_id, [...(byTeam.get(c.team_id) ?? []), c]);
  const deliveries: NewDelivery[] = [];
  const changed = new Map<string, WindowRow>();
  for (const e of events) {
    for (const c of byTeam.get(e.team_id) ?? []) {
      if (!c.events.includes(e.type)) continue;
      const key = windowKey(c.id, e.type, e.subject);
      let w = windows.get(key);
      const open = w !== undefined && now.getTime() - w.opened_at.getTime() < WINDOW_MS;
      let toHold = countOf(e);
      if (w && !open && w.held > 0) {
        // Its digest was not sent yet (the notifier was away when the window ended): send it
        // now, and this event belongs to the window the digest starts.
        closeWindow(w, e.team_id, now, deliveries);
      } else if (!w || !open) {
        w = {
          team_id: e.team_id,
          channel_id: c.id,
          type: e.type,
          subject: e.subject,
          opened_at: now,
          held: 0,
          first_held: null,
          last_held: null,
        };
        windows.set(key, w);
        deliveries.push({
          channel_id: c.id,
          team_id: e.team_id,
          kind: 'event',
          event_type: e.type,
          subject: e.subject,
          message: { kind: 'event', type: e.type, subject: e.subject, occurred_at: e.occurred_at.toISOString(), data: e.data },
        });
        toHold--; // an event that stands for several changes: this message is the first, the rest are held
      }
      changed.set(key, w);
      if (toHold === 0) continue;
      const held: Held = { occurred_at: e.occurred_at.toISOString(), data: e.data };
      w.held += toHold;
      w.first_held ??= held;
      w.last_held = held;
      changed.set(key, w);
    }
  }
  return { deliveries, changed: [...changed.values()] };
}
