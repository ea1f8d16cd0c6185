// postgres.js pool, configured in one place. connect_timeout keeps a lost database from
// hanging a request: the gateway must answer 503 within 5 s (docs/api.md §3).
import postgres from 'postgres';

export type Sql = postgres.Sql<{}>;

/**
 * What a query can run on: the pool, a reserved connection or a transaction (the `tx` that
 * sql.begin hands its callback). postgres.js's TransactionSql is not a Sql (it has no begin,
 * listen or end), but both extend ISql, which holds the tagged template and json(); functions
 * that only run queries take this, so they work inside and outside a transaction without a cast.
 */
export type Queryable = postgres.ISql<{}>;

/** A value postgres.js can send as json/jsonb (its own JSONValue). */
export type JsonValue = postgres.JSONValue;

/** A parameter of sql.unsafe(). */
export type SqlParameter = postgres.ParameterOrJSON<never>;

type PoolOptions = { max?: number; name?: string; connectTimeoutS?: number };

const poolOptions = (o: PoolOptions) =>
  ({
    max: o.max ?? 10,
    connect_timeout: o.connectTimeoutS ?? 3,
    // Reconnect waits (s): 0.1, 0.2, 0.4, then 0.5. postgres.js's default grows to 20 s, and
    // queries wait that out: a gateway kept answering 503 for 5-20 s after PostgreSQL was back,
    // and while it was away requests sat until the 4.5 s deadline instead of failing at once.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 0.5),
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    onnotice: () => {},
    connection: { application_name: o.name ?? 'posthorn' },
  }) satisfies postgres.Options<{}>;

// How each pool was made, for its single-connection sessions (createSession).
const made = new WeakMap<Sql, { url: string; opts: PoolOptions }>();

/**
 * A pool. After a database restart it reconnects per query; its `listen` (one connection for all
 * of the pool's LISTENs) issues LISTEN again on every close until it holds, then runs each
 * listener's onlisten (test/db-reconnect.test.ts keeps postgres.js to that).
 */
export function createSql(url: string, opts: PoolOptions = {}): Sql {
  const sql = postgres(url, poolOptions(opts));
  made.set(sql, { url, opts });
  return sql;
}

/**
 * One connection of its own, for state that lives in a session (the leader's advisory lock,
 * worker/maintenance/elector.ts): a pool of one that never closes an idle or old connection.
 * Not sql.reserve(): in postgres.js 3.4.9 a query on a reserved connection whose server went
 * away throws from a timer (connection.js nextWrite, `socket` is null), an uncaught TypeError
 * that killed every worker when PostgreSQL restarted. A pool of one reconnects instead; the
 * session (and its locks) is new then, which the caller must expect. End it when done.
 */
export function createSession(sql: Sql, name?: string): Sql {
  const m = made.get(sql);
  if (!m) throw new Error('createSession needs a pool made by createSql');
  return postgres(m.url, { ...poolOptions({ ...m.opts, name: name ?? m.opts.name }), max: 1, idle_timeout: 0, max_lifetime: 0 });
}

/**
 * A fixed SQL fragment (no per-call values), built once per pool and reused: postgres.js builds
 * a fragment as a full query object, ≈20 µs each on this machine, which the completer's and the
 * enqueue's one statement per batch would otherwise pay for every fragment they hold.
 * A transaction is a new `sql` each time, so it builds its own (those paths are not hot).
 */
export function fixedFragment(build: (sql: Queryable) => postgres.PendingQuery<postgres.Row[]>) {
  const built = new WeakMap<Queryable, postgres.PendingQuery<postgres.Row[]>>();
  return (sql: Queryable) => {
    let f = built.get(sql);
    if (!f) {
      f = build(sql);
      built.set(sql, f);
    }
    return f;
  };
}

/** The database's clock (transaction start time inside a transaction): one clock for every node. */
export async function dbNow(sql: Queryable): Promise<Date> {
  const [row] = await sql<{ now: Date }[]>`select now() as now`;
  return row!.now;
}
