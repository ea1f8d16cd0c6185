// /openapi.json (OpenAPI 3.1), built from the route list in gateway/openapi-routes.ts and the
// zod schemas that validate requests (shared/schemas.ts) and describe answers
// (gateway/api/responses.ts), so the document cannot drift from the checks.
import { z } from 'zod';
import { PROBLEM_STATUS, type ProblemCode } from '../shared/errors.ts';
import { taskInputSchema } from '../shared/schemas.ts';
import { version } from '../shared/version.ts';
import { RESPONSE_SCHEMAS } from './api/responses.ts';
import { FIELD_NOTES } from './openapi-notes.ts';
import { type Access, REQUEST_SCHEMAS, type RequestHeader, type ResponseHeader, ROUTES, type RouteSpec, TAGS } from './openapi-routes.ts';

type Json = Record<string, any>;

const REF = '#/components/schemas/';

/** Hono's /tasks/:id as OpenAPI's /tasks/{id}. */
export const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

const REQUEST_HEADERS: Record<RequestHeader, Json> = {
  'Idempotency-Key': {
    description:
      'The same as the idempotency_key field (both given: they must agree). Within 24 h, a repeat of the request returns the first task.',
    schema: toJson(taskInputSchema.shape.idempotency_key.unwrap(), 'input'),
  },
  traceparent: {
    description: 'W3C trace context: the task carries the trace on to its deliveries.',
    schema: { type: 'string', examples: ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'] },
  },
};

const RESPONSE_HEADERS: Record<ResponseHeader, Json> = {
  'Idempotent-Replayed': {
    description: '"true" when the answer is the task first stored with this idempotency key',
    schema: { type: 'string', enum: ['true'] },
  },
  'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'string' } },
  'WWW-Authenticate': { description: 'Bearer', schema: { type: 'string' } },
  'RateLimit-Limit': { description: 'requests allowed per window for this key', schema: { type: 'string' } },
  'RateLimit-Remaining': { description: 'requests left in this window', schema: { type: 'string' } },
  'RateLimit-Reset': { description: 'seconds until the window resets', schema: { type: 'string' } },
};

/** Extra problem headers by status. */
const PROBLEM_HEADERS: Record<number, ResponseHeader[]> = {
  401: ['WWW-Authenticate'],
  429: ['Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'],
  503: ['Retry-After'],
};

function toJson(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
  return tidy(rest, io);
}

/**
 * Drops what zod adds that a reader does not need: the ±2^53 bounds of every integer, the
 * 400-character pattern next to format: date-time, and in answers the defaults (they apply to
 * requests) and additionalProperties: false (it would forbid the fields a later version adds).
 */
function tidy(node: any, io: 'input' | 'output'): any {
  if (Array.isArray(node)) return node.map((n) => tidy(n, io));
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'properties') {
      out[k] = Object.fromEntries(Object.entries(v as Json).map(([name, p]) => [name, tidy(p, io)]));
      continue;
    }
    if (k === '$id' || k === '$schema') continue;
    if ((k === 'minimum' || k === 'maximum') && Math.abs(v as number) === Number.MAX_SAFE_INTEGER) continue;
    if (k === 'pattern' && node.format === 'date-time') continue;
    if (io === 'output' && ((k === 'additionalProperties' && v === false) || k === 'default')) continue;
    out[k] = tidy(v, io);
  }
  return out;
}

/** Converts named schemas into components; each schema that is reused inside another becomes a $ref. */
function components(named: Record<string, z.ZodType>, io: 'input' | 'output') {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { io, unrepresentable: 'any', uri: (id) => REF + id });
  return Object.fromEntries(Object.entries(schemas).map(([id, s]) => [id, tidy(s, io)]));
}

function security(access: Access) {
  if (access === 'public') return [];
  if (access === 'operator') return [{ operatorToken: [] }];
  // OpenAPI 3.1: for schemes other than OAuth the array may name the roles an operation needs.
  return [{ apiKey: [access] }];
}

/** The problem codes a route can answer: its own, plus those its access and body imply. */
export function problemCodes(route: RouteSpec): ProblemCode[] {
  const codes = new Set<ProblemCode>(route.errors ?? []);
  if (route.body) for (const c of ['validation_failed', 'unsupported_media_type', 'payload_too_large'] as const) codes.add(c);
  if (route.access !== 'public') for (const c of ['unauthorized', 'rate_limited', 'unavailable'] as const) codes.add(c);
  if (route.access === 'write' || route.access === 'admin') codes.add('forbidden');
  return [...codes];
}

/** One problem+json answer: the Problem schema narrowed to this status and these codes. */
function problemAnswer(status: number, codes: ProblemCode[]): Json {
  return {
    description: codes.join(', '),
    ...headerRefs(PROBLEM_HEADERS[status]),
    content: {
      'application/problem+json': {
        schema: { allOf: [{ $ref: `${REF}Problem` }, { properties: { status: { const: status }, code: { enum: codes } } }] },
      },
    },
  };
}

/** A route's problem answers by status; a status with one code refers to the shared answer for that code. */
function problemResponses(route: RouteSpec, shared: Json) {
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of problemCodes(route)) byStatus.set(PROBLEM_STATUS[code], [...(byStatus.get(PROBLEM_STATUS[code]) ?? []), code]);
  const out: Json = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    if (codes.length > 1) {
      out[status] = problemAnswer(status, codes);
      continue;
    }
    shared[codes[0]!] ??= problemAnswer(status, codes);
    out[status] = { $ref: `#/components/responses/${codes[0]}` };
  }
  return out;
}

const headerRefs = (names?: ResponseHeader[]) =>
  names?.length ? { headers: Object.fromEntries(names.map((h) => [h, { $ref: `#/components/headers/${h}` }])) } : {};

let built: ReturnType<typeof build> | undefined;

/** The document of ROUTES, built once per process (about 50 ms of zod conversion). */
export function buildOpenApi() {
  built ??= build(ROUTES);
  return built;
}

export function build(routes: RouteSpec[]) {
  const names = new Map<z.ZodType, string>();
  const requests: Record<string, z.ZodType> = { ...REQUEST_SCHEMAS };
  const answers: Record<string, z.ZodType> = { ...RESPONSE_SCHEMAS };
  for (const [n, s] of Object.entries({ ...requests, ...answers })) names.set(s, n);

  // A schema without a name here becomes a component named after its route: still one $ref.
  const nameOf = (schema: z.ZodType, into: Record<string, z.ZodType>, fallback: string) => {
    let n = names.get(schema);
    if (!n) {
      n = fallback;
      names.set(schema, n);
      into[n] = schema;
    }
    return { $ref: REF + n };
  };

  const paths: Json = {};
  const sharedResponses: Json = {};
  for (const route of routes) {
    const Id = route.id[0]!.toUpperCase() + route.id.slice(1);
    const parameters: Json[] = [];
    for (const [, name] of route.path.matchAll(/:(\w+)/g)) {
      const description = route.params?.[name!];
      if (!description) throw new Error(`${route.id}: describe the path parameter :${name}`);
      parameters.push({ name, in: 'path', required: true, description, schema: { type: 'string' } });
    }
    if (route.query) {
      const q = toJson(route.query, 'input');
      for (const [name, schema] of Object.entries<Json>(q.properties ?? {})) {
        const { description, ...rest } = schema;
        parameters.push({ name, in: 'query', required: (q.required ?? []).includes(name), description, schema: rest });
      }
    }
    for (const h of route.headers ?? []) parameters.push({ name: h, in: 'header', required: false, ...REQUEST_HEADERS[h] });

    const responses: Json = {};
    for (const [status, a] of Object.entries(route.responses)) {
      const type = a.contentType ?? 'application/json';
      responses[status] = {
        description: a.description,
        ...headerRefs(a.headers),
        ...(a.schema ? { content: { [type]: { schema: nameOf(a.schema, answers, `${Id}${status}`) } } } : {}),
        ...(!a.schema && a.contentType ? { content: { [type]: {} } } : {}),
      };
    }
    Object.assign(responses, problemResponses(route, sharedResponses));

    paths[openApiPath(route.path)] ??= {};
    paths[openApiPath(route.path)][route.method] = {
      operationId: route.id,
      tags: [route.tag],
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      security: security(route.access),
      ...(route.access === 'public' || route.access === 'operator' ? {} : { 'x-posthorn-role': route.access }),
      ...(parameters.length ? { parameters } : {}),
      ...(route.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: nameOf(route.body, requests, `${Id}Body`) } } } }
        : {}),
      responses,
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Posthorn',
      version,
      description:
        'Self-hosted HTTP task queue: POST a task (a URL and the request to make) and workers perform it now, later or on a cron ' +
        'schedule, with retries and a record of every attempt. Errors are application/problem+json. The reference in prose is docs/api.md.',
    },
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
    paths,
    components: {
      schemas: addNotes({ ...components(requests, 'input'), ...components(answers, 'output') }),
      responses: sharedResponses,
      headers: RESPONSE_HEADERS,
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            "An API key (ph_ and at least 32 letters and digits) of one team, with a role: read (GET only), write (also tasks and schedules), admin (also keys and signing keys). An operation's security lists the role it needs.",
        },
        operatorToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'POSTHORN_OPERATOR_TOKEN; without it the operator API is not served (404).',
        },
      },
    },
  };
}

/** Field descriptions kept in gateway/openapi-notes.ts, added where the schema has none. */
function addNotes(schemas: Record<string, Json>) {
  for (const [component, fields] of Object.entries(FIELD_NOTES)) {
    for (const [field, note] of Object.entries(fields)) {
      const prop = schemas[component]?.properties?.[field];
      if (!prop) throw new Error(`gateway/openapi-notes.ts: ${component}.${field} is not in the document`);
      prop.description ??= note;
    }
  }
  return schemas;
}
