// postgres.js pool, configured in one place. connect_timeout keeps a lost database from
// hanging a request: the gateway must answer 503 within 5 s (API.md §3).
import postgres from 'postgres';

export type Sql = postgres.Sql<{}>;

export function createSql(url: string, opts: { max?: number; name?: string } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    connect_timeout: 3,
    // Reconnect waits (s): 0.1, 0.2, 0.4, then 0.5. postgres.js's default grows to 20 s, and
    // queries wait that out: a gateway kept answering 503 for 5-20 s after PostgreSQL was back,
    // and while it was away requests sat until the 4.5 s deadline instead of failing at once.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 0.5),
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    onnotice: () => {},
    connection: { application_name: opts.name ?? 'posthorn' },
  });
}
