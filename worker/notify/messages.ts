// What a notification says, in each channel's own conventions (docs/notifications.md): the
// event, its subject, the last outcome and a link into the web UI when POSTHORN_PUBLIC_URL is
// set. Short on purpose: people read these on a phone.
import type { Held, Message } from './fold.ts';

type Parts = { title: string; lines: string[]; link?: { url: string; label: string } };

const MAX_ERROR = 300;
const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "HTTP 503 (http_error): upstream down" or "network_error: connect ECONNREFUSED". */
export function outcomeText(data: Record<string, unknown>): string | undefined {
  const code = typeof data.status_code === 'number' ? `HTTP ${data.status_code}` : undefined;
  const outcome = str(data.outcome);
  let error = str(data.error) ?? str(data.last_error);
  if (error && error.length > MAX_ERROR) error = `${error.slice(0, MAX_ERROR)}…`;
  const head = code && outcome ? `${code} (${outcome})` : (code ?? outcome);
  if (!head) return error;
  return error ? `${head}: ${error}` : head;
}

function scheduleLabel(data: Record<string, unknown>, subject: string) {
  const name = str(data.schedule_name);
  return name ? `schedule "${name}"` : `schedule ${subject}`;
}

/** The task.failed subject in words: "to https://api.example.com:443" or 'of schedule "nightly"'. */
function taskTarget(data: Record<string, unknown>, subject: string) {
  return data.schedule_id ? `of ${scheduleLabel(data, subject)}` : `to ${str(data.origin) ?? subject}`;
}

function link(publicUrl: string | undefined, path: string, label: string) {
  return publicUrl ? { url: `${publicUrl}${path}`, label } : undefined;
}

export function describe(m: Message, publicUrl?: string): Parts {
  const d = m.data;
  const last = outcomeText(d);
  const lastLine = last ? [`Last outcome: ${last}`] : [];
  const taskId = str(d.task_id);
  const taskLink = taskId ? link(publicUrl, `/ui/tasks/${encodeURIComponent(taskId)}`, 'Open the task') : undefined;
  if (m.kind === 'test') {
    return { title: 'Test notification', lines: ['Posthorn can reach this channel.'], link: link(publicUrl, '/ui/channels', 'Channels') };
  }
  if (m.kind === 'digest') {
    const n = m.count ?? 0;
    let line: string;
    if (m.type === 'task.failed') line = `and ${plural(n, 'more task')} ${taskTarget(d, m.subject)} failed`;
    else line = `and ${plural(n, `more ${m.type} event`)} for ${m.type.startsWith('schedule.') ? scheduleLabel(d, m.subject) : m.subject}`;
    return {
      title: `${m.type}: ${m.subject}`,
      lines: [`${line} in the last 10 minutes.`, ...lastLine],
      link: m.type === 'task.failed' ? taskLink : pageLink(m.type, publicUrl),
    };
  }
  switch (m.type) {
    case 'task.failed':
      return {
        title: 'Task failed',
        lines: [
          `Task ${taskId ?? ''} ${taskTarget(d, m.subject)} failed after ${plural(Number(d.attempts ?? 0), 'attempt')}.`,
          ...lastLine,
        ],
        link: taskLink,
      };
    case 'schedule.failed':
      return {
        title: 'Schedule failed',
        lines: [`${cap(scheduleLabel(d, m.subject))} failed.`, ...lastLine],
        link: pageLink(m.type, publicUrl),
      };
    case 'schedule.recovered': {
      const n = Number(d.consecutive_failures ?? 0);
      const after = n > 0 ? ` after ${plural(n, 'failure')} in a row` : '';
      return {
        title: 'Schedule recovered',
        lines: [`${cap(scheduleLabel(d, m.subject))} succeeded again${after}.`],
        link: pageLink(m.type, publicUrl),
      };
    }
    case 'circuit.opened':
    case 'circuit.closed': {
      const opened = m.type === 'circuit.opened';
      const rate = typeof d.failure_rate === 'number' ? ` (${Math.round(d.failure_rate * 100)}% of recent attempts failed)` : '';
      return {
        title: opened ? 'Circuit opened' : 'Circuit closed',
        lines: [opened ? `Requests to ${m.subject} are paused${rate}.` : `Requests to ${m.subject} flow again.`, ...lastLine],
        link: pageLink(m.type, publicUrl),
      };
    }
    case 'monitor.down':
    case 'monitor.up': {
      const name = str(d.monitor_name) ?? str(d.name) ?? m.subject;
      const down = m.type === 'monitor.down';
      return {
        title: down ? 'Monitor down' : 'Monitor up',
        // reason (shared/monitors.ts): 'late' (no ping by the deadline) or 'fail' (/ping/<token>/fail).
        lines: [
          down
            ? d.reason === 'fail'
              ? `Monitor "${name}" reported a failure.`
              : `Monitor "${name}" missed its check-in${str(d.last_ping_at) ? ` (last ping ${d.last_ping_at})` : ''}.`
            : `Monitor "${name}" checked in again.`,
          ...lastLine,
        ],
        link: pageLink(m.type, publicUrl),
      };
    }
    default:
      return { title: m.type, lines: [`Subject: ${m.subject}`, ...lastLine] };
  }
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function pageLink(type: string, publicUrl?: string) {
  if (type.startsWith('schedule.')) return link(publicUrl, '/ui/schedules', 'Schedules');
  if (type.startsWith('circuit.')) return link(publicUrl, '/ui/status', 'Status page');
  if (type.startsWith('monitor.')) return link(publicUrl, '/ui/monitors', 'Monitors');
  return undefined;
}

// Slack mrkdwn: only &, < and > need escaping; links are <url|text>.
const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function slackPayload(m: Message, publicUrl?: string): { text: string } {
  const p = describe(m, publicUrl);
  const lines = [`*${slackEscape(p.title)}*`, ...p.lines.map(slackEscape)];
  if (p.link) lines.push(`<${p.link.url}|${slackEscape(p.link.label)}>`);
  return { text: lines.join('\n') };
}

// Discord markdown: escape the characters that format, links are [text](url); no mentions,
// whatever an error message says (an "@everyone" in a response body must not ping a server).
const discordEscape = (s: string) => s.replace(/([\\*_~`|[\]()])/g, '\\$1').replace(/@/g, '@\u200b');
const DISCORD_MAX = 2000;

export function discordPayload(m: Message, publicUrl?: string): { content: string; allowed_mentions: { parse: never[] } } {
  const p = describe(m, publicUrl);
  const lines = [`**${discordEscape(p.title)}**`, ...p.lines.map(discordEscape)];
  if (p.link) lines.push(`[${discordEscape(p.link.label)}](<${p.link.url}>)`);
  let content = lines.join('\n');
  if (content.length > DISCORD_MAX) content = `${content.slice(0, DISCORD_MAX - 1)}…`;
  return { content, allowed_mentions: { parse: [] } };
}

const htmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function emailContent(m: Message, publicUrl?: string): { subject: string; text: string; html: string } {
  const p = describe(m, publicUrl);
  const subject = `[Posthorn] ${p.title}: ${m.kind === 'test' ? 'channel check' : m.subject}`.replace(/[\r\n]+/g, ' ').slice(0, 200);
  const text = [p.title, '', ...p.lines, ...(p.link ? ['', `${p.link.label}: ${p.link.url}`] : [])].join('\n');
  const html = [
    `<p><strong>${htmlEscape(p.title)}</strong></p>`,
    ...p.lines.map((l) => `<p>${htmlEscape(l)}</p>`),
    ...(p.link ? [`<p><a href="${htmlEscape(p.link.url)}">${htmlEscape(p.link.label)}</a></p>`] : []),
  ].join('\n');
  return { subject, text: `${text}\n`, html };
}

/** The `webhook` channel's body: {type, team, subject, occurred_at, data}. A digest's data says so. */
export function webhookPayload(m: Message, team: string) {
  const digest: { digest?: unknown } =
    m.kind === 'digest'
      ? { digest: { count: m.count, window_start: m.window_start, window_end: m.window_end, first: m.first, last: m.last } }
      : {};
  return {
    type: m.kind === 'test' ? 'channel.test' : m.type,
    team,
    subject: m.subject,
    occurred_at: m.occurred_at,
    data: { ...m.data, ...digest },
  };
}

export type { Held };
