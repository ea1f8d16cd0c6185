// A browser-like client of the web UI over app.request: keeps cookies, signs in with a key,
// reads the CSRF token off a page and posts forms the way a browser does.
import type { Hono } from 'hono';

export type UiResponse = { status: number; headers: Headers; text: string; location: string | null };

export function uiClient(app: Hono<any>, base = 'http://localhost') {
  const jar = new Map<string, string>();

  function remember(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /max-age=0/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
  }

  async function request(
    method: string,
    path: string,
    form?: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<UiResponse> {
    const h: Record<string, string> = { ...headers };
    if (jar.size) h.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (form) {
      h['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await app.request(`${base}${path}`, { method, headers: h, body, redirect: 'manual' });
    remember(res);
    return { status: res.status, headers: res.headers, text: await res.text(), location: res.headers.get('location') };
  }

  const client = {
    jar,
    get: (path: string, headers?: Record<string, string>) => request('GET', path, undefined, headers),
    post: (path: string, form: Record<string, string>, headers?: Record<string, string>) => request('POST', path, form, headers),
    /** The CSRF token of the page at `path` (every signed-in page carries it in the sign-out form). */
    async csrf(path = '/ui/tasks'): Promise<string> {
      const page = await client.get(path);
      const m = /name="_csrf" value="([^"]+)"/.exec(page.text);
      if (!m) throw new Error(`no CSRF token on ${path} (status ${page.status})`);
      return m[1]!;
    },
    async signIn(key: string): Promise<UiResponse> {
      const form = await client.get('/ui/login');
      const token = /name="login_token" value="([^"]+)"/.exec(form.text)?.[1];
      if (!token) throw new Error(`no sign-in form (status ${form.status})`);
      return client.post('/ui/login', { login_token: token, key });
    },
  };
  return client;
}
