// Descriptions of request fields for /openapi.json and /docs, kept apart from the validating
// schemas in shared/schemas.ts so that documentation and validation can change independently.
// gateway/openapi.ts adds each where the generated schema has no description of its own, and
// throws when a field named here is not in the document (so a rename cannot leave one behind).

const request = {
  url: 'http or https URL to send the request to; no credentials in it (send an authorization header). Private and loopback addresses are refused unless the server allows them.',
  method: 'HTTP method of the request sent',
  headers:
    'headers sent with the request (at most 64); hop-by-hop headers and names starting with proxy-, webhook- or x-posthorn- are refused',
  retry: 'how often and how far apart failed attempts are retried',
  timeout_ms: 'how long one attempt may take, in ms',
  queue: 'a name that groups tasks (filter with ?queue=)',
  callback_url: 'receives a JSON summary when the task ends (succeeded or failed), as a task of its own',
  failure_callback_url: 'receives a JSON summary when the task fails, as a task of its own',
  label: 'free text to find the task by (filter with ?label=)',
};

export const FIELD_NOTES: Record<string, Record<string, string>> = {
  TaskInput: {
    ...request,
    delay: 'run after this long: whole seconds, or a duration like 90s, 5m, 1h30m, 2d (at most 365 days); not with run_at',
    run_at: 'run at this time (RFC 3339 with an offset; at most 365 days ahead; a past time runs now); not with delay',
    idempotency_key: 'the same key within 24 h returns the first task instead of storing another (a different request with it is 409)',
  },
  ScheduleInput: {
    ...request,
    name: 'a name for people',
    cron: '5 fields, or 6 with seconds first (e.g. "*/15 * * * *")',
    timezone: 'IANA zone the cron expression is read in',
    paused: 'a paused schedule makes no tasks',
  },
  Retry: {
    max_retries: 'retries after the first attempt',
    min_backoff_ms: 'the wait before the first retry; it doubles each retry up to max_backoff_ms',
    max_backoff_ms: 'the longest wait between attempts (also caps a Retry-After from the target)',
  },
  BatchInput: { tasks: 'each one a TaskInput' },
  KeyInput: { role: 'read: GET only; write: also tasks and schedules; admin: also keys and signing keys' },
  TeamInput: { slug: "the team's name in URLs and the CLI (--team)", name: 'a name for people' },
};
