// /openapi.json, generated from the same zod schemas that validate requests (zod 4's own
// JSON Schema output), so the document cannot drift from the checks.
import { z } from 'zod';
import { batchInputSchema, problemSchema, taskInputSchema } from '../shared/schemas.ts';
import { version } from '../shared/version.ts';
import { createKeySchema } from './api/keys.ts';

const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });

export function buildOpenApi() {
  const problem = {
    description: 'problem+json',
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  };
  const errors = {
    '400': problem,
    '401': problem,
    '403': problem,
    '404': problem,
    '409': problem,
    '413': problem,
    '415': problem,
    '429': problem,
    '503': problem,
  };
  const json = (ref: string) => ({ content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } });
  const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];
  return {
    openapi: '3.1.0',
    info: { title: 'Posthorn', version, description: 'Self-hosted HTTP task queue' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        TaskInput: schema(taskInputSchema),
        BatchInput: schema(batchInputSchema),
        KeyInput: schema(createKeySchema),
        Problem: schema(problemSchema),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/api/v1/queue': {
        post: {
          summary: 'Enqueue a task',
          requestBody: json('TaskInput'),
          responses: { '202': { description: 'accepted' }, '200': { description: 'idempotent replay' }, ...errors },
        },
      },
      '/api/v1/queue/batch': {
        post: {
          summary: 'Enqueue up to 1000 tasks atomically',
          requestBody: json('BatchInput'),
          responses: { '202': { description: 'accepted' }, ...errors },
        },
      },
      '/api/v1/tasks': {
        get: {
          summary: 'List tasks, newest first',
          parameters: ['status', 'queue', 'schedule_id', 'label', 'limit', 'cursor'].map((name) => ({
            name,
            in: 'query',
            schema: { type: name === 'limit' ? 'integer' : 'string' },
          })),
          responses: { '200': { description: '{data, next_cursor}' }, ...errors },
        },
      },
      '/api/v1/tasks/{id}': {
        get: { summary: 'Read a task', parameters: idParam, responses: { '200': { description: 'the task' }, ...errors } },
        delete: { summary: 'Cancel a task', parameters: idParam, responses: { '200': { description: 'canceled' }, ...errors } },
      },
      '/api/v1/tasks/{id}/attempts': {
        get: { summary: 'Attempts of a task', parameters: idParam, responses: { '200': { description: '{data}' }, ...errors } },
      },
      '/api/v1/tasks/{id}/replay': {
        post: {
          summary: 'Run a failed or canceled task again',
          parameters: idParam,
          responses: { '202': { description: 'replayed' }, ...errors },
        },
      },
      '/api/v1/keys': {
        post: {
          summary: 'Create an API key (admin); the key is in this response only',
          requestBody: json('KeyInput'),
          responses: { '201': { description: '{id, name, role, key, created_at}' }, ...errors },
        },
        get: {
          summary: "The team's API keys, without secrets (admin)",
          responses: { '200': { description: '{data: [{id, name, role, created_at, revoked_at}]}' }, ...errors },
        },
      },
      '/api/v1/keys/{id}': {
        delete: {
          summary: 'Revoke an API key (admin); refused everywhere within 5 s',
          parameters: idParam,
          responses: { '204': { description: 'revoked' }, ...errors },
        },
      },
      '/api/v1/signing-keys': {
        get: {
          summary: 'Webhook signing secrets (admin)',
          responses: { '200': { description: '{current, previous, rotated_at, previous_expires_at}' }, ...errors },
        },
      },
      '/api/v1/signing-keys/rotate': {
        post: {
          summary: 'New current secret; the previous one keeps signing for 24 h (admin)',
          responses: { '200': { description: '{current, previous, rotated_at, previous_expires_at}' }, ...errors },
        },
      },
      '/api/v1/signing-keys/previous': {
        delete: {
          summary: 'Stop signing with the previous secret now (admin)',
          responses: { '204': { description: 'deleted' }, ...errors },
        },
      },
    },
  };
}
