// Every route the gateway serves, declared once for /openapi.json and /docs (gateway/openapi.ts
// builds the document from this list). test/openapi.test.ts fails when a served route is missing
// here or a route here is not served, so a new route is one more entry in ROUTES.
// The QStash-compatible API (/v2, gateway/qstash/) is deliberately not here: docs/qstash.md is
// its reference, and the same test checks that page instead.
//
// Common answers come from `access` and `body` and need not be listed: an API key route can
// answer 401, 429 and 503 (and 403 when it needs more than read); a route with a body 400, 413
// and 415; an operator route 401, 429 and 503. `errors` lists what the route adds to those.
import { z } from 'zod';
import type { ProblemCode } from '../shared/errors.ts';
import { queueSettingsSchema } from '../shared/queues.ts';
import { batchInputSchema, listTasksQuerySchema, retrySchema, scheduleInputSchema, taskInputSchema } from '../shared/schemas.ts';
import { createTeamSchema, patchTeamSchema } from './api/admin.ts';
import { createChannelSchema } from './api/channels.ts';
import { statusPageSchema as statusPageInputSchema } from './api/circuits.ts';
import { createConnectionSchema, patchConnectionSchema } from './api/connections.ts';
import { endpointInputSchema } from './api/endpoints.ts';
import { createKeySchema } from './api/keys.ts';
import { monitorInputSchema } from './api/monitors.ts';
import * as r from './api/responses.ts';
import { syncInputSchema } from './api/sync.ts';

/** public: no credentials; read/write/admin: an API key with at least that role; operator: POSTHORN_OPERATOR_TOKEN. */
export type Access = 'public' | 'read' | 'write' | 'admin' | 'operator';
export type RequestHeader = 'Idempotency-Key' | 'traceparent';
export type ResponseHeader =
  | 'Idempotent-Replayed'
  | 'Retry-After'
  | 'WWW-Authenticate'
  | 'RateLimit-Limit'
  | 'RateLimit-Remaining'
  | 'RateLimit-Reset';

export type Answer = {
  description: string;
  /** Absent: no body (204). */
  schema?: z.ZodType;
  /** Default application/json. */
  contentType?: string;
  headers?: ResponseHeader[];
};

export type RouteSpec = {
  /** operationId */
  id: string;
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Hono's syntax, as served: /api/v1/tasks/:id */
  path: string;
  tag: Tag;
  summary: string;
  description?: string;
  access: Access;
  /** Descriptions of the path's :params. */
  params?: Record<string, string>;
  query?: z.ZodObject;
  headers?: RequestHeader[];
  body?: z.ZodType;
  /** The answers other than problem+json errors, by status. */
  responses: Record<number, Answer>;
  errors?: ProblemCode[];
};

export const TAGS = {
  Health: 'Liveness and readiness, for load balancers and orchestrators. No credentials.',
  Reference: 'This document, as JSON and as a page. No credentials.',
  Tasks: 'Enqueue HTTP requests to run now, later or in bulk; read, cancel and replay them.',
  Schedules: 'Cron schedules: each tick creates one task from the template.',
  Keys: "The team's API keys (admin role).",
  'Signing keys': "The team's Standard Webhooks secrets that sign every delivery (admin role).",
  Channels: 'Where notifications go: e-mail, Slack, Discord or a signed webhook (admin role).',
  Queues: 'Named queues: parallelism, start rate and pause, enforced fleet-wide (docs/queues.md).',
  Connections:
    'Credentials that tasks and schedules name in auth: OAuth2 client credentials, bearer, basic (admin role; docs/connections.md).',
  Circuits: 'Circuit breakers per target origin, and the public status page (docs/circuits.md).',
  Endpoints: 'Inbound endpoints: receive webhooks at /in/<slug> without a key and forward each as a task (docs/endpoints.md).',
  Monitors: 'Heartbeat monitors: jobs ping /ping/<token>; a missed ping sends monitor.down (docs/monitors.md).',
  Sync: 'Declarative sync of schedules, monitors and endpoints by name (admin role).',
  Operator: 'Teams, with the operator token (POSTHORN_OPERATOR_TOKEN); absent without it.',
} as const;
export type Tag = keyof typeof TAGS;

/** PATCH /schedules/:id: any fields of ScheduleInput; null removes one that may be left out. */
const schedulePatchSchema = z.strictObject(
  Object.fromEntries(
    Object.entries(scheduleInputSchema.shape).map(([k, s]) => [k, s.isOptional() ? s.nullable().optional() : s.optional()]),
  ),
);

/** Component names for request bodies; a body not named here becomes one named after its route. */
export const REQUEST_SCHEMAS: Record<string, z.ZodType> = {
  TaskInput: taskInputSchema,
  BatchInput: batchInputSchema,
  Retry: retrySchema,
  ScheduleInput: scheduleInputSchema,
  SchedulePatch: schedulePatchSchema,
  KeyInput: createKeySchema,
  TeamInput: createTeamSchema,
  TeamPatch: patchTeamSchema,
  ChannelInput: createChannelSchema,
  StatusPageInput: statusPageInputSchema,
  EndpointInput: endpointInputSchema,
  MonitorInput: monitorInputSchema,
  SyncInput: syncInputSchema,
  QueueSettings: queueSettingsSchema,
  ConnectionInput: createConnectionSchema,
  ConnectionPatch: patchConnectionSchema,
};

/** PATCH bodies of endpoints and monitors: any fields of the input; null removes an optional one. */
const patchOf = (schema: z.ZodObject) =>
  z.strictObject(Object.fromEntries(Object.entries(schema.shape).map(([k, s]) => [k, (s as z.ZodType).nullable().optional()])));
const ENDPOINT_ID = { id: 'the endpoint id' };
const MONITOR_ID = { id: 'the monitor id' };
const eventListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

const json = (description: string, schema: z.ZodType, headers?: ResponseHeader[]): Answer => ({ description, schema, headers });
const noContent = (description: string): Answer => ({ description });
const ID = { id: 'the id from the response that created it' };
const SCHEDULE_ID = { id: 'the schedule id' };
const CHANNEL_ID = { id: 'the channel id' };
const CONNECTION_ID = { id: "the connection's id or name" };
const SLUG = { slug: "the team's slug" };
const QUEUE_NAME = { name: 'the queue name: letters, digits and _ . : - (at most 64)' };

export const ROUTES: RouteSpec[] = [
  // Health and reference
  {
    id: 'healthz',
    method: 'get',
    path: '/healthz',
    tag: 'Health',
    access: 'public',
    summary: 'Liveness',
    description: 'Answers 200 while the process runs; it does not touch the database.',
    responses: { 200: json('the process runs', r.healthSchema) },
  },
  {
    id: 'readyz',
    method: 'get',
    path: '/readyz',
    tag: 'Health',
    access: 'public',
    summary: 'Readiness',
    description:
      'Answers 200 only when PostgreSQL answers within 2 s and every migration is applied; else 503 (plain JSON, not problem+json).',
    responses: {
      200: json('ready to serve', r.readySchema),
      503: json('the database is unreachable or migrations are pending', r.readySchema),
    },
  },
  {
    id: 'metrics',
    method: 'get',
    path: '/metrics',
    tag: 'Health',
    access: 'public',
    summary: 'Prometheus metrics',
    description: "The gateway's metrics in Prometheus text format (docs/observability.md lists them).",
    responses: { 200: { description: 'Prometheus text format 0.0.4', contentType: 'text/plain' } },
  },
  {
    id: 'openapi',
    method: 'get',
    path: '/openapi.json',
    tag: 'Reference',
    access: 'public',
    summary: 'This OpenAPI 3.1 document',
    responses: { 200: { description: 'the document', contentType: 'application/json' } },
  },
  {
    id: 'docs',
    method: 'get',
    path: '/docs',
    tag: 'Reference',
    access: 'public',
    summary: 'This document as a readable page',
    responses: { 200: { description: 'an HTML page without scripts or external resources', contentType: 'text/html' } },
  },

  // Tasks
  {
    id: 'enqueueTask',
    method: 'post',
    path: '/api/v1/queue',
    tag: 'Tasks',
    access: 'write',
    summary: 'Enqueue a task',
    description:
      'Stores the request for a worker to send now (no delay), after `delay`, or at `run_at`. Only `url` is required. ' +
      'With an idempotency key (field or header), the same key within 24 h answers 200 with the first task; ' +
      'the same key with a different request is 409.',
    headers: ['Idempotency-Key', 'traceparent'],
    body: taskInputSchema,
    responses: {
      202: json('stored', r.acceptedSchema),
      200: json('an idempotent replay: the task first stored with this key', r.acceptedSchema, ['Idempotent-Replayed']),
    },
    errors: ['target_not_allowed', 'idempotency_conflict'],
  },
  {
    id: 'enqueueBatch',
    method: 'post',
    path: '/api/v1/queue/batch',
    tag: 'Tasks',
    access: 'write',
    summary: 'Enqueue up to 1000 tasks at once',
    description:
      'Every task is validated first and all are stored in one transaction, or none is; `errors[].path` names the task ' +
      '(`tasks.17.url`). The request may be up to 10 times POSTHORN_MAX_BODY_BYTES.',
    headers: ['traceparent'],
    body: batchInputSchema,
    responses: { 202: json('all stored, in the order sent', r.batchAcceptedSchema) },
    errors: ['target_not_allowed', 'idempotency_conflict'],
  },
  {
    id: 'listTasks',
    method: 'get',
    path: '/api/v1/tasks',
    tag: 'Tasks',
    access: 'read',
    summary: 'List tasks, newest first',
    query: listTasksQuerySchema,
    responses: { 200: json('one page', r.taskListSchema) },
    errors: ['validation_failed'],
  },
  {
    id: 'getTask',
    method: 'get',
    path: '/api/v1/tasks/:id',
    tag: 'Tasks',
    access: 'read',
    summary: 'Read a task',
    params: ID,
    responses: { 200: json('the task', r.taskSchema) },
    errors: ['not_found'],
  },
  {
    id: 'cancelTask',
    method: 'delete',
    path: '/api/v1/tasks/:id',
    tag: 'Tasks',
    access: 'write',
    summary: 'Cancel a task that has not finished',
    description: 'A running attempt finishes, but is not retried. A task that has finished (canceled included) answers 409.',
    params: ID,
    responses: { 200: json('canceled', r.taskSchema) },
    errors: ['not_found', 'conflict'],
  },
  {
    id: 'listAttempts',
    method: 'get',
    path: '/api/v1/tasks/:id/attempts',
    tag: 'Tasks',
    access: 'read',
    summary: "A task's attempts, with the responses received",
    params: ID,
    responses: { 200: json('every attempt', r.attemptListSchema) },
    errors: ['not_found'],
  },
  {
    id: 'replayTask',
    method: 'post',
    path: '/api/v1/tasks/:id/replay',
    tag: 'Tasks',
    access: 'write',
    summary: 'Run a failed or canceled task again',
    description: 'The task becomes pending now with a fresh set of retries; its earlier attempts stay. Any other status answers 409.',
    params: ID,
    responses: { 202: json('pending again', r.replayedSchema) },
    errors: ['not_found', 'conflict'],
  },

  // Schedules
  {
    id: 'createSchedule',
    method: 'post',
    path: '/api/v1/schedules',
    tag: 'Schedules',
    access: 'write',
    summary: 'Create a schedule',
    body: scheduleInputSchema,
    responses: { 201: json('created', r.scheduleSchema) },
    errors: ['target_not_allowed'],
  },
  {
    id: 'listSchedules',
    method: 'get',
    path: '/api/v1/schedules',
    tag: 'Schedules',
    access: 'read',
    summary: 'List schedules, newest first',
    responses: { 200: json('every schedule (at most 1000)', r.scheduleListSchema) },
  },
  {
    id: 'getSchedule',
    method: 'get',
    path: '/api/v1/schedules/:id',
    tag: 'Schedules',
    access: 'read',
    summary: 'Read a schedule',
    params: SCHEDULE_ID,
    responses: { 200: json('the schedule', r.scheduleSchema) },
    errors: ['not_found'],
  },
  {
    id: 'updateSchedule',
    method: 'patch',
    path: '/api/v1/schedules/:id',
    tag: 'Schedules',
    access: 'write',
    summary: 'Change some fields of a schedule',
    description:
      'Send any fields of ScheduleInput; `null` removes an optional one. The result is validated as a whole, like a create. ' +
      'Changing cron, timezone or paused recomputes next_run_at.',
    params: SCHEDULE_ID,
    body: schedulePatchSchema,
    responses: { 200: json('the schedule as changed', r.scheduleSchema) },
    errors: ['not_found', 'target_not_allowed'],
  },
  {
    id: 'deleteSchedule',
    method: 'delete',
    path: '/api/v1/schedules/:id',
    tag: 'Schedules',
    access: 'write',
    summary: 'Delete a schedule',
    description: 'Tasks it already made stay. A schedule that does not exist (or was deleted) answers 404.',
    params: SCHEDULE_ID,
    responses: { 204: noContent('deleted') },
    errors: ['not_found'],
  },
  {
    id: 'pauseSchedule',
    method: 'post',
    path: '/api/v1/schedules/:id/pause',
    tag: 'Schedules',
    access: 'write',
    summary: 'Pause a schedule',
    description: 'No ticks run while paused; next_run_at becomes null.',
    params: SCHEDULE_ID,
    responses: { 200: json('paused', r.scheduleSchema) },
    errors: ['not_found'],
  },
  {
    id: 'resumeSchedule',
    method: 'post',
    path: '/api/v1/schedules/:id/resume',
    tag: 'Schedules',
    access: 'write',
    summary: 'Resume a schedule',
    description: 'Runs from the next tick after now; ticks that passed while paused are not run.',
    params: SCHEDULE_ID,
    responses: { 200: json('running', r.scheduleSchema) },
    errors: ['not_found'],
  },
  {
    id: 'triggerSchedule',
    method: 'post',
    path: '/api/v1/schedules/:id/trigger',
    tag: 'Schedules',
    access: 'write',
    summary: 'Run a schedule once, now',
    description: 'Creates one task from the template (with scheduled_for null), outside the cron; paused schedules too.',
    params: SCHEDULE_ID,
    responses: { 202: json('the task made', r.triggeredSchema) },
    errors: ['not_found'],
  },

  // Keys and signing keys
  {
    id: 'createKey',
    method: 'post',
    path: '/api/v1/keys',
    tag: 'Keys',
    access: 'admin',
    summary: 'Create an API key',
    description: 'The key is in this response only; the server keeps its SHA-256.',
    body: createKeySchema,
    responses: { 201: json('created', r.keyCreatedSchema) },
  },
  {
    id: 'listKeys',
    method: 'get',
    path: '/api/v1/keys',
    tag: 'Keys',
    access: 'admin',
    summary: "The team's API keys, without secrets",
    responses: { 200: json('every key', r.keyListSchema) },
  },
  {
    id: 'revokeKey',
    method: 'delete',
    path: '/api/v1/keys/:id',
    tag: 'Keys',
    access: 'admin',
    summary: 'Revoke an API key',
    description: 'Every gateway refuses the key within 2 s. Revoking a revoked key is 404, like every DELETE of something already gone.',
    params: { id: 'the key id' },
    responses: { 204: noContent('revoked') },
    errors: ['not_found'],
  },
  {
    id: 'getSigningKeys',
    method: 'get',
    path: '/api/v1/signing-keys',
    tag: 'Signing keys',
    access: 'admin',
    summary: 'The webhook signing secrets',
    responses: { 200: json('the secrets', r.signingKeysSchema) },
    errors: ['not_found'],
  },
  {
    id: 'rotateSigningKey',
    method: 'post',
    path: '/api/v1/signing-keys/rotate',
    tag: 'Signing keys',
    access: 'admin',
    summary: 'Make a new current secret',
    description: 'The previous secret keeps signing next to the new one (a second signature) for 24 h, or until it is deleted.',
    responses: { 200: json('the secrets after rotation', r.signingKeysSchema) },
    errors: ['not_found'],
  },
  {
    id: 'deletePreviousSigningKey',
    method: 'delete',
    path: '/api/v1/signing-keys/previous',
    tag: 'Signing keys',
    access: 'admin',
    summary: 'Stop signing with the previous secret now',
    responses: { 204: noContent('deleted; 404 when there is no previous secret') },
    errors: ['not_found'],
  },

  // Connections (docs/connections.md)
  {
    id: 'createConnection',
    method: 'post',
    path: '/api/v1/connections',
    tag: 'Connections',
    access: 'admin',
    summary: 'Store credentials for tasks to use',
    description:
      'The secret (client_secret, token or password) is encrypted at rest and never returned. 409 when the name is taken, or when the server has no POSTHORN_SECRET_KEY.',
    body: createConnectionSchema,
    responses: { 201: json('created, without its secret', r.connectionSchema) },
    errors: ['target_not_allowed', 'conflict'],
  },
  {
    id: 'listConnections',
    method: 'get',
    path: '/api/v1/connections',
    tag: 'Connections',
    access: 'admin',
    summary: "The team's connections, without secrets",
    responses: { 200: json('the connections', r.connectionListSchema) },
  },
  {
    id: 'getConnection',
    method: 'get',
    path: '/api/v1/connections/:id',
    tag: 'Connections',
    access: 'admin',
    summary: 'Read a connection, without its secret',
    params: CONNECTION_ID,
    responses: { 200: json('the connection', r.connectionSchema) },
    errors: ['not_found'],
  },
  {
    id: 'updateConnection',
    method: 'patch',
    path: '/api/v1/connections/:id',
    tag: 'Connections',
    access: 'admin',
    summary: "Change a connection's fields or secret",
    description: 'The type stays. A change drops the cached OAuth2 token. null removes scope or audience.',
    params: CONNECTION_ID,
    body: patchConnectionSchema,
    responses: { 200: json('the connection as changed, without its secret', r.connectionSchema) },
    errors: ['not_found', 'target_not_allowed', 'conflict'],
  },
  {
    id: 'deleteConnection',
    method: 'delete',
    path: '/api/v1/connections/:id',
    tag: 'Connections',
    access: 'admin',
    summary: 'Delete a connection',
    description: 'Tasks that still name it fail their attempts as auth_error (retried per their policy).',
    params: CONNECTION_ID,
    responses: { 204: noContent('deleted; 404 when it is already gone') },
    errors: ['not_found'],
  },

  // Notification channels
  {
    id: 'createChannel',
    method: 'post',
    path: '/api/v1/channels',
    tag: 'Channels',
    access: 'admin',
    summary: 'Create a notification channel',
    body: createChannelSchema,
    responses: { 201: json('created', r.channelSchema) },
    errors: ['target_not_allowed'],
  },
  {
    id: 'listChannels',
    method: 'get',
    path: '/api/v1/channels',
    tag: 'Channels',
    access: 'admin',
    summary: "The team's channels",
    responses: { 200: json('the channels', r.channelListSchema) },
  },
  {
    id: 'getChannel',
    method: 'get',
    path: '/api/v1/channels/:id',
    tag: 'Channels',
    access: 'admin',
    summary: 'Read a channel',
    params: CHANNEL_ID,
    responses: { 200: json('the channel', r.channelSchema) },
    errors: ['not_found'],
  },
  {
    id: 'deleteChannel',
    method: 'delete',
    path: '/api/v1/channels/:id',
    tag: 'Channels',
    access: 'admin',
    summary: 'Delete a channel',
    params: CHANNEL_ID,
    responses: { 204: noContent('deleted; 404 when it is already gone') },
    errors: ['not_found'],
  },
  {
    id: 'listChannelDeliveries',
    method: 'get',
    path: '/api/v1/channels/:id/deliveries',
    tag: 'Channels',
    access: 'admin',
    summary: "The channel's last 100 messages with their outcome",
    params: CHANNEL_ID,
    responses: { 200: json('the deliveries', r.channelDeliveryListSchema) },
    errors: ['not_found'],
  },
  {
    id: 'testChannel',
    method: 'post',
    path: '/api/v1/channels/:id/test',
    tag: 'Channels',
    access: 'admin',
    summary: 'Send a test message now',
    description: "Queued for the leader's notifier, which sends it within about a second; its outcome shows in the deliveries.",
    params: CHANNEL_ID,
    responses: { 202: json('queued', r.channelDeliverySchema) },
    errors: ['not_found'],
  },

  // Queues
  {
    id: 'listQueues',
    method: 'get',
    path: '/api/v1/queues',
    tag: 'Queues',
    access: 'read',
    summary: "The team's configured queues with their counts",
    responses: { 200: json('the queues', r.queueListSchema) },
  },
  {
    id: 'getQueue',
    method: 'get',
    path: '/api/v1/queues/:name',
    tag: 'Queues',
    access: 'read',
    summary: 'A queue: its settings, counts per status and the oldest pending age',
    description: 'A name with no settings that tasks use answers with configured false and no limits; a name neither has is a 404.',
    params: QUEUE_NAME,
    responses: { 200: json('the queue', r.queueSchema) },
    errors: ['validation_failed', 'not_found'],
  },
  {
    id: 'putQueue',
    method: 'put',
    path: '/api/v1/queues/:name',
    tag: 'Queues',
    access: 'write',
    summary: "Create or replace a queue's settings",
    description: 'A field left out is no limit. Applies to the next claim on every worker; attempts already running go on.',
    params: QUEUE_NAME,
    body: queueSettingsSchema,
    responses: { 200: json('the queue as stored', r.queueSchema) },
  },
  {
    id: 'deleteQueue',
    method: 'delete',
    path: '/api/v1/queues/:name',
    tag: 'Queues',
    access: 'write',
    summary: "Remove a queue's limits",
    description: 'Its tasks keep their queue name and run without limits.',
    params: QUEUE_NAME,
    responses: { 204: noContent('removed') },
    errors: ['validation_failed', 'not_found'],
  },

  // Circuit breakers
  {
    id: 'listCircuits',
    method: 'get',
    path: '/api/v1/circuits',
    tag: 'Circuits',
    access: 'read',
    summary: "The team's circuit breakers",
    description: 'Every origin with attempts in the last 24 h, and any breaker not closed (docs/circuits.md).',
    responses: { 200: json('the breakers', r.circuitListSchema) },
  },
  {
    id: 'getCircuit',
    method: 'get',
    path: '/api/v1/circuits/:origin',
    tag: 'Circuits',
    access: 'read',
    summary: 'One breaker with its last 50 transitions',
    params: { origin: 'scheme://host[:port], URL-encoded (https%3A%2F%2Fapi.example.com)' },
    responses: { 200: json('the breaker', r.circuitDetailSchema) },
    errors: ['validation_failed', 'not_found'],
  },
  {
    id: 'resetCircuit',
    method: 'post',
    path: '/api/v1/circuits/:origin/reset',
    tag: 'Circuits',
    access: 'admin',
    summary: 'Close a breaker now',
    description: 'The tasks it held back are due at once.',
    params: { origin: 'scheme://host[:port], URL-encoded' },
    responses: { 200: json('the breaker, closed', r.circuitDetailSchema) },
    errors: ['validation_failed', 'not_found'],
  },
  {
    id: 'setStatusPage',
    method: 'put',
    path: '/api/v1/status-page',
    tag: 'Circuits',
    access: 'admin',
    summary: 'Make the status page public, or private again',
    description: '{"public": true} answers an unguessable URL (the same one when asked again); {"public": false} revokes it.',
    body: statusPageInputSchema,
    responses: { 200: json('the public URL, or null', r.statusPageSchema) },
  },
  {
    id: 'publicStatusPage',
    method: 'get',
    path: '/status/:token',
    tag: 'Circuits',
    access: 'public',
    summary: "A team's public status page (HTML)",
    description:
      'The page PUT /api/v1/status-page made public: origins, their breaker states and 24 hourly states, refreshed by the page itself. No paths, queries, errors or tasks.',
    params: { token: 'the token in public_url' },
    responses: {
      200: { description: 'an HTML page', contentType: 'text/html' },
      404: { description: 'an HTML page: no such token, or it was revoked', contentType: 'text/html' },
    },
  },

  // Inbound endpoints
  {
    id: 'createEndpoint',
    method: 'post',
    path: '/api/v1/endpoints',
    tag: 'Endpoints',
    access: 'write',
    summary: 'Create an inbound endpoint',
    description: 'Returns the unguessable slug and inbound_url (/in/<slug>) that receives webhooks without an API key.',
    body: endpointInputSchema,
    responses: { 201: json('created', r.endpointSchema) },
    errors: ['target_not_allowed', 'conflict'],
  },
  {
    id: 'listEndpoints',
    method: 'get',
    path: '/api/v1/endpoints',
    tag: 'Endpoints',
    access: 'read',
    summary: "List the team's endpoints",
    responses: { 200: json('every endpoint, newest first', r.endpointListSchema) },
  },
  {
    id: 'getEndpoint',
    method: 'get',
    path: '/api/v1/endpoints/:id',
    tag: 'Endpoints',
    access: 'read',
    summary: 'Read an endpoint',
    params: ENDPOINT_ID,
    responses: { 200: json('the endpoint', r.endpointSchema) },
    errors: ['not_found'],
  },
  {
    id: 'updateEndpoint',
    method: 'patch',
    path: '/api/v1/endpoints/:id',
    tag: 'Endpoints',
    access: 'write',
    summary: 'Change an endpoint',
    description: 'The fields given replace the stored ones (null removes retry or queue); the slug stays.',
    params: ENDPOINT_ID,
    body: patchOf(endpointInputSchema),
    responses: { 200: json('the endpoint as changed', r.endpointSchema) },
    errors: ['not_found', 'target_not_allowed', 'conflict'],
  },
  {
    id: 'deleteEndpoint',
    method: 'delete',
    path: '/api/v1/endpoints/:id',
    tag: 'Endpoints',
    access: 'write',
    summary: 'Delete an endpoint and its events',
    description: 'Its slug answers 404 from then on; tasks already made keep running.',
    params: ENDPOINT_ID,
    responses: { 204: noContent('deleted') },
    errors: ['not_found'],
  },
  {
    id: 'listEndpointEvents',
    method: 'get',
    path: '/api/v1/endpoints/:id/events',
    tag: 'Endpoints',
    access: 'read',
    summary: "List an endpoint's events with their forwarding task",
    params: ENDPOINT_ID,
    query: eventListQuery,
    responses: { 200: json('one page, newest first', r.endpointEventListSchema) },
    errors: ['not_found', 'validation_failed'],
  },
  {
    id: 'replayEndpointEvent',
    method: 'post',
    path: '/api/v1/endpoints/:id/events/:event_id/replay',
    tag: 'Endpoints',
    access: 'write',
    summary: 'Forward an event again',
    description: "A new task with the endpoint's current forward_url, retry and queue; the event then names it.",
    params: { id: 'the endpoint id', event_id: 'the event id' },
    responses: { 202: json('the new task', r.eventReplayedSchema) },
    errors: ['not_found'],
  },
  ...(['get', 'post', 'put', 'patch', 'delete'] as const).map(
    (method): RouteSpec => ({
      id: `receive${method[0]!.toUpperCase()}${method.slice(1)}`,
      method,
      path: '/in/:slug',
      tag: 'Endpoints',
      access: 'public',
      summary: `Receive a webhook (${method.toUpperCase()})`,
      description:
        'No API key: the slug is the credential. Stored as an event and answered 202 once stored, then forwarded as a task with the ' +
        'same method, body bytes, content type and query string; original headers go as x-posthorn-forwarded-<name>. ' +
        'Body up to POSTHORN_MAX_BODY_BYTES; POSTHORN_INBOUND_RATE_LIMIT requests per endpoint.',
      params: { slug: "the endpoint's slug" },
      responses: { 202: json('stored; the task forwards it', r.inboundAcceptedSchema) },
      errors: ['not_found', 'payload_too_large', 'rate_limited', 'request_timeout', 'unavailable', 'validation_failed'],
    }),
  ),

  // Monitors
  {
    id: 'createMonitor',
    method: 'post',
    path: '/api/v1/monitors',
    tag: 'Monitors',
    access: 'write',
    summary: 'Create a heartbeat monitor',
    description: 'interval_seconds, or cron with timezone; grace_seconds (default 300) after each expected ping before it is down.',
    body: monitorInputSchema,
    responses: { 201: json('created, status new', r.monitorSchema) },
    errors: ['conflict'],
  },
  {
    id: 'listMonitors',
    method: 'get',
    path: '/api/v1/monitors',
    tag: 'Monitors',
    access: 'read',
    summary: "List the team's monitors",
    responses: { 200: json('every monitor, newest first', r.monitorListSchema) },
  },
  {
    id: 'getMonitor',
    method: 'get',
    path: '/api/v1/monitors/:id',
    tag: 'Monitors',
    access: 'read',
    summary: 'Read a monitor',
    params: MONITOR_ID,
    responses: { 200: json('the monitor', r.monitorSchema) },
    errors: ['not_found'],
  },
  {
    id: 'updateMonitor',
    method: 'patch',
    path: '/api/v1/monitors/:id',
    tag: 'Monitors',
    access: 'write',
    summary: 'Change a monitor',
    description: 'Giving cron drops interval_seconds and the other way round. Resuming a paused monitor makes it new again.',
    params: MONITOR_ID,
    body: patchOf(monitorInputSchema as unknown as z.ZodObject),
    responses: { 200: json('the monitor as changed', r.monitorSchema) },
    errors: ['not_found', 'conflict'],
  },
  {
    id: 'deleteMonitor',
    method: 'delete',
    path: '/api/v1/monitors/:id',
    tag: 'Monitors',
    access: 'write',
    summary: 'Delete a monitor and its pings',
    params: MONITOR_ID,
    responses: { 204: noContent('deleted') },
    errors: ['not_found'],
  },
  {
    id: 'listMonitorPings',
    method: 'get',
    path: '/api/v1/monitors/:id/pings',
    tag: 'Monitors',
    access: 'read',
    summary: "A monitor's last 100 pings",
    params: MONITOR_ID,
    responses: { 200: json('newest first', r.monitorPingListSchema) },
    errors: ['not_found'],
  },
  ...(['get', 'post'] as const).flatMap((method): RouteSpec[] => [
    {
      id: `ping${method === 'get' ? 'Get' : 'Post'}`,
      method,
      path: '/ping/:token',
      tag: 'Monitors',
      access: 'public',
      summary: `Record a ping (${method.toUpperCase()})`,
      description: 'No API key: the token is the credential. The monitor is up; it was down: monitor.up. The body is not read.',
      params: { token: "the monitor's token" },
      responses: { 200: json('recorded', r.pingedSchema) },
      errors: ['not_found', 'gone', 'unavailable'],
    },
    {
      id: `pingFail${method === 'get' ? 'Get' : 'Post'}`,
      method,
      path: '/ping/:token/fail',
      tag: 'Monitors',
      access: 'public',
      summary: `Report a failure (${method.toUpperCase()})`,
      description: 'The monitor is down at once (monitor.down unless it already was).',
      params: { token: "the monitor's token" },
      responses: { 200: json('recorded', r.pingedSchema) },
      errors: ['not_found', 'gone', 'unavailable'],
    },
  ]),

  // Sync
  {
    id: 'sync',
    method: 'put',
    path: '/api/v1/sync',
    tag: 'Sync',
    access: 'admin',
    summary: 'Make schedules, monitors and endpoints match a document',
    description:
      'Items are identified by name: missing ones are created, changed ones updated, equal ones left alone; with delete_removed, ' +
      'items of the kinds given that the document does not name are deleted. One transaction; a second identical PUT changes nothing.',
    body: syncInputSchema,
    responses: { 200: json('what was done, by kind', r.syncResultSchema) },
    errors: ['target_not_allowed', 'conflict'],
  },

  // Operator API
  {
    id: 'createTeam',
    method: 'post',
    path: '/admin/v1/teams',
    tag: 'Operator',
    access: 'operator',
    summary: 'Create a team with its first admin key',
    body: createTeamSchema,
    responses: { 201: json('created; admin_key is shown this once', r.teamCreatedSchema) },
    errors: ['conflict'],
  },
  {
    id: 'listTeams',
    method: 'get',
    path: '/admin/v1/teams',
    tag: 'Operator',
    access: 'operator',
    summary: 'List teams',
    responses: { 200: json('every team', r.teamListSchema) },
  },
  {
    id: 'getTeam',
    method: 'get',
    path: '/admin/v1/teams/:slug',
    tag: 'Operator',
    access: 'operator',
    summary: 'Read a team',
    params: SLUG,
    responses: { 200: json('the team', r.teamSchema) },
    errors: ['not_found'],
  },
  {
    id: 'updateTeam',
    method: 'patch',
    path: '/admin/v1/teams/:slug',
    tag: 'Operator',
    access: 'operator',
    summary: "Change a team's name or rate limit",
    description: 'A new rate limit applies on every gateway within 2 s.',
    params: SLUG,
    body: patchTeamSchema,
    responses: { 200: json('the team as changed', r.teamSchema) },
    errors: ['not_found'],
  },
];
