// posthorn start | gateway | worker | migrate | keys ...  (docs/api.md, docs/configuration.md)

// Each command imports what it runs when it runs: a worker never loads the gateway's routes,
// UI and OpenAPI document (~20 MB of a worker's idle RSS; docs/bench.md, memory).
import { type Config, ConfigError, parseConfig } from '../shared/config.ts';
import { createSql } from '../shared/db.ts';
import { EmbeddedError, openEmbeddedDatabase } from '../shared/embedded.ts';
import { bootstrap } from '../shared/keys.ts';
import { createLogger } from '../shared/logger.ts';
import { migrate } from '../shared/migrate.ts';
import { secretBoxFromConfig } from '../shared/secret-box.ts';

const USAGE = `usage: posthorn <command>
  start              embedded PostgreSQL (unless DATABASE_URL), migrations, gateway and workers
  gateway            the HTTP gateway alone
  worker             one worker process
  migrate            apply pending migrations and exit
  keys create --team <slug> --role admin|write|read [--name <name>]
  keys list [--team <slug>]
  keys revoke <id>
  sync <file.json> [--delete-removed]
                     PUT the file to /api/v1/sync (POSTHORN_API_KEY, an admin key;
                     POSTHORN_URL, default http://HOST:PORT); docs/sync-example.json
  connections rotate-key   re-encrypt every connection under POSTHORN_SECRET_KEY (docs/connections.md)
The keys and connections commands use DATABASE_URL, else the embedded database of POSTHORN_DATA_DIR
(the running one, or started for the command). Configuration: docs/configuration.md`;

function needDatabase(config: Config): Config & { databaseUrl: string } {
  if (!config.databaseUrl) throw new ConfigError('DATABASE_URL must be set for this command (posthorn start sets it for its children)');
  return config as Config & { databaseUrl: string };
}

/**
 * SIGTERM/SIGINT run stop once, then exit 0. Later signals are ignored, not taken as "hurry":
 * a Ctrl-C reaches every process of the group and `posthorn start` then sends its own SIGTERM,
 * so a child sees two at once. The grace period bounds the stop (the supervisor SIGKILLs after it).
 */
function onShutdown(stop: () => Promise<void>) {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    stop()
      .then(() => process.exit(0))
      .catch((err) => {
        console.error(`posthorn: error while stopping after ${signal}:`, err);
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
  // A child of `posthorn start` whose supervisor died without stopping it (SIGKILL) sees its
  // IPC channel close: it stops too, instead of serving on as an orphan.
  if (process.send) process.on('disconnect', () => handler('disconnect'));
}

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  const config = parseConfig();
  switch (command) {
    case 'start':
      return (await import('./start.ts')).runStart(config);
    case 'gateway': {
      const { startGateway } = await import('../gateway/server.ts');
      const gw = await startGateway(needDatabase(config));
      process.send?.({ type: 'ready', url: gw.url });
      onShutdown(gw.stop);
      return;
    }
    case 'worker': {
      const { startWorker } = await import('../worker/main.ts');
      const w = await startWorker(needDatabase(config));
      process.send?.({ type: 'ready', worker_id: w.workerId });
      onShutdown(w.stop);
      return;
    }
    case 'migrate': {
      const sql = createSql(needDatabase(config).databaseUrl, { max: 1 });
      const { applied } = await migrate(sql);
      // The same bootstrap as `start`, so a compose deployment gets its first team and key here.
      const key = await bootstrap(sql, config.bootstrapKey);
      await sql.end();
      createLogger('migrate', config.logLevel).info({ applied }, applied.length ? 'migrations applied' : 'migrations current');
      if (key && !config.bootstrapKey) process.stdout.write(`posthorn bootstrap admin key (team "default"; shown once): ${key}\n`);
      return;
    }
    case 'keys': {
      const { runKeys } = await import('./keys.ts');
      if (config.databaseUrl) return runKeys(config.databaseUrl, rest);
      const db = await openEmbeddedDatabase({ dataDir: config.dataDir, port: config.embeddedPgPort });
      try {
        return await runKeys(db.url, rest);
      } finally {
        await db.stop();
      }
    }
    case 'sync': {
      const { runSync } = await import('./sync.ts');
      const code = await runSync(config, rest);
      if (code !== 0) process.exit(code);
      return;
    }
    case 'connections': {
      const { runConnections } = await import('./connections.ts');
      const box = secretBoxFromConfig(config);
      if (config.databaseUrl) return runConnections(config.databaseUrl, box, rest);
      const db = await openEmbeddedDatabase({ dataDir: config.dataDir, port: config.embeddedPgPort });
      try {
        return await runConnections(db.url, box, rest);
      } finally {
        await db.stop();
      }
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      console.error(`posthorn: unknown command "${command}"\n${USAGE}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err) => {
  // Problems the user can fix are one line saying why and what to do; anything else is a bug
  // and keeps its stack.
  if (err instanceof ConfigError || err instanceof EmbeddedError) console.error(`posthorn: ${err.message}`);
  else console.error('posthorn:', err);
  process.exit(1);
});
