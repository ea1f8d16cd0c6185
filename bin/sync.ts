// posthorn sync <file.json>: PUT the file to /api/v1/sync of a running gateway (docs/api.md,
// "Declarative sync"; docs/sync-example.json is a sample). The gateway is POSTHORN_URL
// (default http://<HOST>:<PORT>), the admin key POSTHORN_API_KEY; the key is sent, never printed.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { type Config, ConfigError } from '../shared/config.ts';

export const SYNC_USAGE =
  'usage: posthorn sync <file.json> [--delete-removed]  (POSTHORN_API_KEY: an admin key; POSTHORN_URL: the gateway)';

/** What the gateway is asked, and what it answered, in a few lines; returns the exit code. */
export async function runSync(config: Config, args: string[], out: (line: string) => void = console.log): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'delete-removed': { type: 'boolean' } } });
  const [file, ...extra] = positionals;
  if (!file || extra.length) throw new ConfigError(SYNC_USAGE);
  if (!config.apiKey) throw new ConfigError('POSTHORN_API_KEY must be set to an admin key of the team to sync');
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`cannot read ${file} as JSON: ${(e as Error).message}`);
  }
  if (values['delete-removed']) doc = { ...doc, delete_removed: true };
  const base = config.apiUrl ?? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`;
  const res = await fetch(`${base}/api/v1/sync`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${config.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(doc),
  });
  type Answer = {
    code?: string;
    detail?: string;
    errors?: { path: string; message: string }[];
    changed?: boolean;
  } & Partial<Record<'created' | 'updated' | 'deleted' | 'unchanged', Record<string, string[]>>>;
  const body = (await res.json().catch(() => null)) as Answer | null;
  if (res.status !== 200 || !body) {
    out(`posthorn sync: ${res.status} ${body?.code ?? ''}: ${body?.detail ?? 'unexpected answer'}`);
    for (const e of body?.errors ?? []) out(`  ${e.path}: ${e.message}`);
    return 1;
  }
  for (const what of ['created', 'updated', 'deleted', 'unchanged'] as const) {
    for (const [kind, names] of Object.entries<string[]>(body[what] ?? {})) if (names.length) out(`${what} ${kind}: ${names.join(', ')}`);
  }
  out(body.changed ? 'posthorn sync: done' : 'posthorn sync: nothing to change');
  return 0;
}
