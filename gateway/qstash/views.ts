// Native rows as QStash's client expects them (@upstash/qstash's Message, DlqMessage and
// Schedule types): camelCase, times in unix milliseconds, headers as name → [values], absent
// fields left out rather than null.
import type { TaskRow } from '../api/task-queries.ts';

const ms = (d: Date | null | undefined) => (d ? d.getTime() : undefined);

/** Drops undefined and null, as QStash leaves absent fields out. */
function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as Partial<T>;
}

export function headerView(h: Record<string, string> | null | undefined): Record<string, string[]> {
  return Object.fromEntries(Object.entries(h ?? {}).map(([k, v]) => [k, [v]]));
}

export function messageView(t: TaskRow) {
  return compact({
    messageId: t.id,
    url: t.url,
    method: t.method,
    header: headerView(t.headers),
    body: t.body ?? undefined,
    maxRetries: t.max_retries,
    notBefore: ms(t.run_at),
    createdAt: ms(t.created_at),
    callback: t.callback_url,
    failureCallback: t.failure_callback_url,
    queueName: t.queue,
    scheduleId: t.schedule_id,
    label: t.label,
    labels: t.label ? [t.label] : undefined,
    flowControlKey: t.flow_key,
    parallelism: t.flow_parallelism,
    rate: t.flow_rate,
    period: t.flow_rate === null ? undefined : 1,
  });
}

/** A failed task as a DLQ entry: its dlqId is the task id; the response is its last attempt's. */
export function dlqView(t: TaskRow) {
  const a = t.last_attempt;
  const responseHeader = a?.response_headers
    ? Object.fromEntries(Object.entries(a.response_headers).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]))
    : undefined;
  return compact({
    ...messageView(t),
    dlqId: t.id,
    responseStatus: a?.status_code,
    responseHeader,
    responseBody: a && a.response_encoding !== 'base64' ? a.response_body : undefined,
    responseBodyBase64: a && a.response_encoding === 'base64' ? a.response_body : undefined,
  });
}

/** A schedules row (with its template) as QStash's Schedule. */
export type ScheduleRow = {
  id: string;
  name: string;
  cron: string;
  timezone: string;
  template: {
    url: string;
    method: string;
    headers: Record<string, string>;
    body?: unknown;
    retry?: { max_retries: number };
    callback_url?: string;
    failure_callback_url?: string;
    queue?: string;
    label?: string;
  };
  paused: boolean;
  qstash: boolean;
  next_run_at: Date | null;
  last_run_at: Date | null;
  created_at: Date;
};

/** A /v2 schedule's id is its name (what Upstash-Schedule-Id gave, or the row id); a native one's its row id. */
export const qstashScheduleId = (s: Pick<ScheduleRow, 'id' | 'name' | 'qstash'>) => (s.qstash ? s.name : s.id);

export function scheduleView(s: ScheduleRow, defaultRetries: number) {
  const t = s.template;
  return compact({
    scheduleId: qstashScheduleId(s),
    cron: s.timezone === 'UTC' ? s.cron : `CRON_TZ=${s.timezone} ${s.cron}`,
    createdAt: ms(s.created_at),
    destination: t.url,
    method: t.method,
    header: headerView(t.headers),
    body: t.body === undefined || t.body === null ? undefined : typeof t.body === 'string' ? t.body : JSON.stringify(t.body),
    retries: t.retry?.max_retries ?? defaultRetries,
    callback: t.callback_url,
    failureCallback: t.failure_callback_url,
    isPaused: s.paused,
    queueName: t.queue,
    label: t.label,
    labels: t.label ? [t.label] : undefined,
    lastScheduleTime: ms(s.last_run_at),
    nextScheduleTime: ms(s.next_run_at),
  });
}
