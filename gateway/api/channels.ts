// /api/v1/channels (docs/api.md, notifications; admin role): where a team's events are sent.
// The gateway only stores channels and queues messages; the leader's notifier sends them
// through the worker's SSRF-safe dispatcher (worker/maintenance/notifier.ts).
import { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../../shared/db.ts';
import { problem } from '../../shared/errors.ts';
import { EVENT_TYPES } from '../../shared/events.ts';
import { isUuid, uuidv7 } from '../../shared/ids.ts';
import { httpUrl } from '../../shared/schemas.ts';
import type { TargetCheck } from '../../shared/targets.ts';
import { type AuthEnv, requireRole } from '../auth.ts';
import { iso, parseOrThrow, readJson } from '../http.ts';

export const CHANNEL_TYPES = ['email', 'slack', 'discord', 'webhook'] as const;

// One address, no display name, no CR/LF (a header injection would become a second recipient).
const EMAIL_RE = /^[^\s@<>",;:()[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

export const createChannelSchema = z
  .strictObject({
    type: z.enum(CHANNEL_TYPES),
    target: z.string().min(1).max(2048).meta({ description: 'an e-mail address (email) or an http(s) webhook URL' }),
    events: z
      .array(z.enum(EVENT_TYPES))
      .min(1)
      .max(EVENT_TYPES.length)
      .refine((e) => new Set(e).size === e.length, 'each event type once'),
  })
  .superRefine((c, ctx) => {
    if (c.type === 'email') {
      if (c.target.length > 254 || !EMAIL_RE.test(c.target))
        ctx.addIssue({ code: 'custom', path: ['target'], message: 'is not an e-mail address' });
      return;
    }
    const res = httpUrl.safeParse(c.target);
    if (!res.success) for (const i of res.error.issues) ctx.addIssue({ code: 'custom', path: ['target'], message: i.message });
  });

// The last 100 (docs/api.md); the list endpoints' paging shape with no further page.
const DELIVERIES_SHOWN = 100;

type ChannelRow = { id: string; team_id: string; type: string; target: string; events: string[]; created_at: Date };

type DeliveryRow = {
  id: string;
  kind: string;
  event_type: string | null;
  subject: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: Date;
  created_at: Date;
  sent_at: Date | null;
  history: { outcome?: string }[] | null;
};

const channelView = (r: ChannelRow) => ({
  id: r.id,
  type: r.type,
  target: r.target,
  events: r.events,
  created_at: iso(r.created_at),
});

function deliveryView(d: DeliveryRow) {
  const history = d.history ?? [];
  return {
    id: d.id,
    kind: d.kind,
    event_type: d.event_type,
    subject: d.subject,
    // pending (not tried yet), retrying (failed, another attempt planned), sent, failed (gave up).
    status: d.status === 'pending' && d.attempts > 0 ? 'retrying' : d.status,
    outcome: history.at(-1)?.outcome ?? null,
    attempts: d.attempts,
    last_status_code: d.last_status_code,
    last_error: d.last_error,
    next_attempt_at: d.status === 'pending' ? iso(d.next_attempt_at) : null,
    created_at: iso(d.created_at),
    sent_at: iso(d.sent_at),
    history,
  };
}

export function channelRoutes(deps: { sql: Sql; checkTarget: TargetCheck }) {
  const { sql } = deps;
  const app = new Hono<AuthEnv>();
  app.use('/channels', requireRole('admin'));
  app.use('/channels/*', requireRole('admin'));

  async function load(teamId: string, id: string): Promise<ChannelRow> {
    const [row] = isUuid(id) ? await sql<ChannelRow[]>`select * from channels where id = ${id} and team_id = ${teamId}` : [];
    if (!row) throw problem('not_found', 'no such channel');
    return row;
  }

  app.post('/channels', async (c) => {
    const input = parseOrThrow(createChannelSchema, await readJson(c));
    if (input.type !== 'email') {
      // Literal private addresses and localhost names are refused now; names are checked
      // again on every send by the worker's dispatcher.
      const verdict = deps.checkTarget(new URL(input.target));
      if (!verdict.ok) throw problem('target_not_allowed', `target: ${verdict.reason}`, [{ path: 'target', message: verdict.reason }]);
    }
    const [row] = await sql<ChannelRow[]>`
      insert into channels (id, team_id, type, target, events)
      values (${uuidv7()}, ${c.get('principal').teamId}, ${input.type}, ${input.target}, ${input.events})
      returning *`;
    return c.json(channelView(row!), 201);
  });

  app.get('/channels', async (c) => {
    const rows = await sql<ChannelRow[]>`select * from channels where team_id = ${c.get('principal').teamId} order by id desc limit 1000`;
    return c.json({ data: rows.map(channelView), next_cursor: null });
  });

  app.get('/channels/:id', async (c) => c.json(channelView(await load(c.get('principal').teamId, c.req.param('id')))));

  app.delete('/channels/:id', async (c) => {
    const id = c.req.param('id');
    const res = isUuid(id) ? await sql`delete from channels where id = ${id} and team_id = ${c.get('principal').teamId}` : { count: 0 };
    if (res.count === 0) throw problem('not_found', 'no such channel');
    return c.body(null, 204);
  });

  app.get('/channels/:id/deliveries', async (c) => {
    const ch = await load(c.get('principal').teamId, c.req.param('id'));
    const rows = await sql<DeliveryRow[]>`
      select * from channel_deliveries where team_id = ${ch.team_id} and channel_id = ${ch.id}
      order by created_at desc, id desc limit ${DELIVERIES_SHOWN}`;
    return c.json({ data: rows.map(deliveryView), next_cursor: null });
  });

  // 202: queued for the leader's notifier, which sends it on its next pass (within
  // POSTHORN_NOTIFY_INTERVAL_MS, 1 s by default); the outcome shows in /deliveries.
  app.post('/channels/:id/test', async (c) => {
    const ch = await load(c.get('principal').teamId, c.req.param('id'));
    const message = { kind: 'test', type: 'channel.test', subject: ch.id, occurred_at: new Date().toISOString(), data: {} };
    const [row] = await sql<DeliveryRow[]>`
      insert into channel_deliveries (id, channel_id, team_id, kind, event_type, subject, message, next_attempt_at)
      values (${uuidv7()}, ${ch.id}, ${ch.team_id}, 'test', null, ${ch.id}, ${sql.json(message)}, now())
      returning *`;
    return c.json(deliveryView(row!), 202);
  });

  return app;
}
