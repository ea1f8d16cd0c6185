/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The sign-in page: the one page drawn without a session, so without the navigation.
import { ASSETS } from '../assets.ts';

export function LoginPage(props: { loginToken: string; next?: string; error?: string }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Sign in · Posthorn</title>
        <link rel="stylesheet" href={ASSETS.css.href} />
      </head>
      <body>
        <main class="login">
          <h1>Posthorn</h1>
          <p class="muted">
            Sign in with an API key. Its role decides what you can do here: read keys look, write keys act on tasks and schedules, admin
            keys also manage keys.
          </p>
          {props.error ? (
            <p class="error" role="alert">
              {props.error}
            </p>
          ) : null}
          <form method="post" action="/ui/login">
            <input type="hidden" name="login_token" value={props.loginToken} />
            {props.next ? <input type="hidden" name="next" value={props.next} /> : null}
            <label>
              API key
              <input name="key" type="password" autocomplete="current-password" required placeholder="ph_…" class="mono" autofocus />
            </label>
            <button type="submit" class="primary">
              Sign in
            </button>
          </form>
        </main>
      </body>
    </html>
  );
}
