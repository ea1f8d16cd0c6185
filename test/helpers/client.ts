// The tests' one JSON client: builds the request (Bearer key, JSON body or raw text) and reads
// the answer (JSON where it parses, else the text). `send` is what carries it: the in-process
// app (app.request) or a real gateway over HTTP (fetch).
export type JsonResponse = { status: number; headers: Headers; body: any };
export type JsonRequest = { key?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> };
export type Send = (path: string, init: RequestInit) => Response | Promise<Response>;

export async function requestJson(send: Send, method: string, path: string, o: JsonRequest = {}): Promise<JsonResponse> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.key) headers.authorization = `Bearer ${o.key}`;
  const payload = o.body !== undefined ? JSON.stringify(o.body) : o.raw;
  if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
    headers['content-type'] = 'application/json';
  const res = await send(path, { method, headers, body: payload });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body };
}
