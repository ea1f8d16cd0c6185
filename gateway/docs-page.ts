// GET /docs: the OpenAPI document as one readable HTML page, rendered on the server. No script,
// no font, nothing from another origin: it works where users have no internet access, and its
// Content-Security-Policy allows only its own stylesheet (by hash).
import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

type Json = Record<string, any>;
type Html = HtmlEscapedString | Promise<HtmlEscapedString> | string;

const STYLE = `
body{font:15px/1.5 system-ui,sans-serif;color:#1d1d1f;max-width:72rem;margin:0 auto;padding:1rem 1.5rem 4rem}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
h3{margin:2rem 0 .3rem;font-size:1.1rem}h4{margin:1rem 0 .3rem;font-size:.95rem}
code{font:13px/1.4 ui-monospace,monospace;background:#f3f3f5;padding:0 .25rem;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:.3rem 0;font-size:14px}
td,th{border:1px solid #e2e2e6;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f7f7f9;font-weight:600}td table{margin:.3rem 0 0}
.m{display:inline-block;min-width:4.2rem;text-align:center;color:#fff;border-radius:3px;font:600 12px/1.6 ui-monospace,monospace;margin-right:.4rem}
.get{background:#2b6cb0}.post{background:#2f855a}.put{background:#b7791f}.patch{background:#805ad5}.delete{background:#c53030}
.req{color:#c53030;font-size:12px}.muted{color:#666}nav ul{columns:2;padding-left:1.2rem}nav li{break-inside:avoid}
section.op{border-left:3px solid #e2e2e6;padding-left:1rem}
`;

export const DOCS_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const refName = (ref: string) => ref.slice(ref.lastIndexOf('/') + 1);
const literal = (v: unknown) => html`<code>${JSON.stringify(v)}</code>`;
const join = (parts: Html[], sep: string) => parts.flatMap((p, i) => (i ? [sep, p] : [p]));

/** Description text: `code` spans as <code> (the only Markdown the descriptions use), no final full stop. */
function prose(text: string | undefined): Html {
  if (!text) return '';
  const parts = text.replace(/\.$/, '').split('`');
  return html`${parts.map((p, i) => (i % 2 ? html`<code>${p}</code>` : p))}`;
}

/** The type of a schema in a few words, with links to named schemas. */
function typeOf(s: Json | undefined): Html {
  if (!s || Object.keys(s).filter((k) => k !== 'description').length === 0) return 'any JSON value';
  if (s.$ref) return html`<a href="#schema-${refName(s.$ref)}">${refName(s.$ref)}</a>`;
  // Problem answers narrow Problem to their status and codes, which the answer's text names.
  if (s.allOf) return html`${join(s.allOf.filter((a: Json) => a.$ref || a.type).map(typeOf), ' and ')}`;
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) return html`${join(alternatives.map(typeOf), ' or ')}`;
  if (s.const !== undefined) return literal(s.const);
  if (s.enum) return html`${join(s.enum.map(literal), ' | ')}`;
  if (s.type === 'array') return html`array of ${typeOf(s.items)}`;
  if (s.type === 'object' || s.properties) {
    if (s.properties) return 'object';
    if (s.additionalProperties && typeof s.additionalProperties === 'object' && Object.keys(s.additionalProperties).length)
      return html`map of string to ${typeOf(s.additionalProperties)}`;
    return 'object';
  }
  const type = Array.isArray(s.type) ? s.type.join(' or ') : String(s.type ?? 'any JSON value');
  return s.format ? `${type} (${s.format})` : type;
}

/** Constraints worth reading: lengths, ranges, patterns, defaults. */
function limits(s: Json): Html[] {
  const out: Html[] = [];
  const range = (lo: unknown, hi: unknown, unit: string) => {
    if (lo !== undefined && hi !== undefined) out.push(`${lo} to ${hi}${unit}`);
    else if (lo !== undefined) out.push(`at least ${lo}${unit}`);
    else if (hi !== undefined) out.push(`at most ${hi}${unit}`);
  };
  range(s.minLength, s.maxLength, ' characters');
  range(s.minimum, s.maximum, '');
  range(s.minItems, s.maxItems, ' items');
  if (s.pattern) out.push(html`pattern ${literal(s.pattern)}`);
  if (s.default !== undefined) out.push(html`default ${literal(s.default)}`);
  if (s.additionalProperties === false) out.push('no other fields');
  return out;
}

/** An inline object among the schema's alternatives, if any: shown as a nested table. */
const inlineObject = (s: Json): Json | undefined =>
  s.properties
    ? s
    : ((s.anyOf ?? s.oneOf ?? []).find((a: Json) => a.properties) ?? (s.type === 'array' ? inlineObject(s.items ?? {}) : undefined));

function fields(s: Json, depth = 0): Html {
  const required = new Set<string>(s.required ?? []);
  const rows = Object.entries<Json>(s.properties ?? {}).map(([name, p]) => {
    const nested = depth < 3 ? inlineObject(p) : undefined;
    const notes = [...(p.description ? [prose(p.description)] : []), ...limits(p), ...(p.anyOf ?? []).flatMap(limits)];
    return html`<tr>
      <td><code>${name}</code>${required.has(name) ? html` <span class="req">required</span>` : ''}</td>
      <td>${typeOf(p)}</td>
      <td>${join(notes, '; ')}${nested ? fields(nested, depth + 1) : ''}</td>
    </tr>`;
  });
  return html`<table>
    <tr><th>field</th><th>type</th><th>notes</th></tr>
    ${rows}
  </table>`;
}

/** A schema where it is used: a link when named, else its fields. */
function schemaBlock(s: Json | undefined): Html {
  if (!s || s.$ref || !inlineObject(s)) return html`<div>${typeOf(s)}</div>`;
  return fields(inlineObject(s)!);
}

function parametersTable(params: Json[]): Html {
  return html`<h4>Parameters</h4>
    <table>
      <tr><th>name</th><th>in</th><th>type</th><th>notes</th></tr>
      ${params.map(
        (p) => html`<tr>
          <td><code>${p.name}</code>${p.required ? html` <span class="req">required</span>` : ''}</td>
          <td>${p.in}</td>
          <td>${typeOf(p.schema)}</td>
          <td>${join([...(p.description ? [prose(p.description)] : []), ...limits(p.schema ?? {})], '; ')}</td>
        </tr>`,
      )}
    </table>`;
}

function responsesBlock(responses: Json, shared: Json): Html {
  const rows = Object.entries<Json>(responses).map(([status, r0]) => {
    const r = r0.$ref ? shared[refName(r0.$ref)] : r0;
    const [type, media] = Object.entries<Json>(r.content ?? {})[0] ?? [];
    const headers = Object.keys(r.headers ?? {});
    return html`<tr>
      <td><b>${status}</b></td>
      <td>${prose(r.description)}${
        headers.length
          ? html`<br /><span class="muted">headers: ${join(
              headers.map((h) => html`<code>${h}</code>`),
              ', ',
            )}</span>`
          : ''
      }</td>
      <td>${type ? html`<span class="muted">${type}</span> ${media?.schema ? schemaBlock(media.schema) : ''}` : html`<span class="muted">no body</span>`}</td>
    </tr>`;
  });
  return html`<h4>Responses</h4>
    <table>
      <tr><th>status</th><th>meaning</th><th>body</th></tr>
      ${rows}
    </table>`;
}

function access(op: Json): string {
  const [req] = op.security ?? [];
  if (!req) return 'No credentials.';
  if (req.operatorToken) return 'Authorization: Bearer <operator token>.';
  return `Authorization: Bearer <API key> with role ${req.apiKey?.[0] ?? 'read'} or higher.`;
}

function operation(path: string, method: string, op: Json, doc: Json): Html {
  const body = op.requestBody?.content?.['application/json']?.schema;
  return html`<section class="op" id="${op.operationId}">
    <h3><span class="m ${method}">${method.toUpperCase()}</span><code>${path}</code></h3>
    <p><b>${op.summary}</b>${op.description ? html`<br />${prose(op.description)}` : ''}</p>
    <p class="muted">${access(op)}</p>
    ${op.parameters?.length ? parametersTable(op.parameters) : ''}
    ${body ? html`<h4>Request body</h4><span class="muted">application/json</span> ${schemaBlock(body)}` : ''}
    ${responsesBlock(op.responses, doc.components?.responses ?? {})}
  </section>`;
}

export function renderDocs(doc: Json): Promise<string> {
  const ops = Object.entries<Json>(doc.paths).flatMap(([path, item]) =>
    Object.entries<Json>(item).map(([method, op]) => ({ path, method, op, tag: op.tags?.[0] ?? 'Other' })),
  );
  const tags: { name: string; description?: string }[] = doc.tags ?? [];
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>${doc.info.title} API ${doc.info.version}</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<h1>${doc.info.title} API <span class="muted">${doc.info.version}</span></h1>
<p>${prose(doc.info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${doc.openapi}). Every error is
<code>application/problem+json</code> shaped like <a href="#schema-Problem">Problem</a>.</p>
<nav>
${tags.map(
  (t) => html`<h4><a href="#tag-${t.name}">${t.name}</a></h4>
    <ul>
      ${ops.filter((o) => o.tag === t.name).map((o) => html`<li><a href="#${o.op.operationId}">${o.method.toUpperCase()} ${o.path}</a></li>`)}
    </ul>`,
)}
<h4><a href="#schemas">Schemas</a></h4>
</nav>
<main>
${tags.map(
  (t) => html`<h2 id="tag-${t.name}">${t.name}</h2>
    <p>${prose(t.description)}</p>
    ${ops.filter((o) => o.tag === t.name).map((o) => operation(o.path, o.method, o.op, doc))}`,
)}
<h2 id="schemas">Schemas</h2>
${Object.entries<Json>(doc.components?.schemas ?? {}).map(
  ([name, s]) => html`<h3 id="schema-${name}">${name}</h3>
    ${s.description ? html`<p>${prose(s.description)}</p>` : ''}
    ${s.properties ? fields(s) : html`<p>${typeOf(s)}</p>`}`,
)}
</main>
</body>
</html>`;
  return Promise.resolve(page).then(String);
}

/** The handler: renders once, on the first request. */
export function docsPage(doc: Json) {
  let rendered: Promise<string> | undefined;
  return async (c: Context) => {
    rendered ??= renderDocs(doc);
    c.header('content-security-policy', DOCS_CSP);
    c.header('x-content-type-options', 'nosniff');
    return c.html(await rendered);
  };
}
