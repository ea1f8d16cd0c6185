// postgres.js pool, configured in one place. connect_timeout keeps a lost database from
// hanging a request: the gateway must answer 503 within 5 s (API.md §3).
import postgres from 'postgres';

export type Sql = postgres.Sql<{}>;

export function createSql(url: string, opts: { max?: number; name?: string } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    connect_timeout: 3,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    onnotice: () => {},
    connection: { application_name: opts.name ?? 'posthorn' },
  });
}
