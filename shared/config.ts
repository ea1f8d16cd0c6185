// The one place that reads process.env. Every process parses its environment once, here,
// and an invalid value stops it with a message that names the variable (docs/configuration.md).
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { parseSecretKey } from './secret-box.ts';
import { parseAllowlist } from './targets.ts';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no', '']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

// Bounds of a rate limit (docs/auth.md). Past them a limit was accepted and never enforced:
// "1/99999999999999999h" is a window of 1e20 ms, which the limiter's expiry arithmetic cannot hold.
export const RATE_LIMIT_BOUNDS = { minPoints: 1, maxPoints: 1_000_000, minWindowMs: 1000, maxWindowMs: 3_600_000 };
const B = RATE_LIMIT_BOUNDS;

// "500/1s", "100/10s", "6000/1m": requests per window.
export const rateLimitSchema = z
  .string()
  .max(32)
  .regex(/^\d+\/\d+(ms|s|m|h)$/, 'expected <count>/<window>, e.g. 500/1s')
  .transform((raw) => {
    const [count, win] = raw.split('/') as [string, string];
    const m = /^(\d+)(ms|s|m|h)$/.exec(win)!;
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    return { raw, points: Number(count), windowMs: Number(m[1]) * unit };
  })
  .refine(
    (r) => r.points >= B.minPoints && r.points <= B.maxPoints && r.windowMs >= B.minWindowMs && r.windowMs <= B.maxWindowMs,
    `count must be ${B.minPoints} to ${B.maxPoints} and the window 1s to 1h`,
  );

export type TrustedProxies = [ipaddr.IPv4 | ipaddr.IPv6, number][];

/** "10.0.0.0/8, 192.168.1.7, fd00::/8": addresses and CIDR ranges, comma-separated. */
export function parseTrustedProxies(raw: string): TrustedProxies {
  const out: TrustedProxies = [];
  for (const item of raw.split(',').map((s) => s.trim())) {
    if (!item) continue;
    if (item.includes('/')) {
      if (!ipaddr.isValidCIDR(item)) throw new Error(`"${item}" is not an address or CIDR range`);
      const [net, bits] = ipaddr.parseCIDR(item);
      // An IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) matches the IPv4 peers it stands for.
      if (net.kind() === 'ipv6' && (net as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96)
        out.push([(net as ipaddr.IPv6).toIPv4Address(), bits - 96]);
      else out.push([net, bits]);
    } else {
      if (!ipaddr.isValid(item)) throw new Error(`"${item}" is not an address or CIDR range`);
      const addr = ipaddr.process(item);
      out.push([addr, addr.kind() === 'ipv4' ? 32 : 128]);
    }
  }
  return out;
}

// POSTHORN_SECRET_KEY: 32 bytes, base64 (shared/secret-box.ts). The previous keys, comma-separated,
// only open what was sealed before a rotation (docs/connections.md).
const secretKey = z.string().transform((raw, ctx) => {
  const key = parseSecretKey(raw);
  if (typeof key === 'string') {
    ctx.addIssue({ code: 'custom', message: key });
    return z.NEVER;
  }
  return key;
});
const secretKeyList = z.string().transform((raw, ctx) => {
  const keys: Buffer[] = [];
  for (const item of raw.split(',').map((s) => s.trim())) {
    if (!item) continue;
    const key = parseSecretKey(item);
    if (typeof key === 'string') {
      ctx.addIssue({ code: 'custom', message: key });
      return z.NEVER;
    }
    keys.push(key);
  }
  return keys;
});

const otlpProtocol = z.enum(['http/protobuf', 'http/json', 'grpc']);

/** A parsed rate limit: POSTHORN_RATE_LIMIT or a team's own (gateway/rate-limit.ts counts it). */
export type RateLimit = z.output<typeof rateLimitSchema>;

const keyPattern = /^ph_[A-Za-z0-9]{32,}$/;

const envSchema = z.object({
  DATABASE_URL: z.string().url().optional(),
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  POSTHORN_DATA_DIR: z.string().min(1).default('./.data'),
  POSTHORN_PG_PORT: int(1, 65535).default(54329),
  POSTHORN_WORKERS: int(0, 64).default(2),
  POSTHORN_WORKER_CONCURRENCY: int(1, 10_000).default(64),
  POSTHORN_BOOTSTRAP_KEY: z.string().regex(keyPattern, 'expected ph_ followed by at least 32 letters or digits').optional(),
  POSTHORN_OPERATOR_TOKEN: z.string().min(16).optional(),
  POSTHORN_ALLOW_PRIVATE_TARGETS: bool.default(false),
  POSTHORN_TARGET_ALLOWLIST: z
    .string()
    .default('')
    .transform((raw, ctx) => {
      try {
        return parseAllowlist(raw);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
  // Reverse proxies whose X-Forwarded-For is believed (gateway/client-address.ts); none by default.
  POSTHORN_TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((raw, ctx) => {
      try {
        return parseTrustedProxies(raw);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
  // "off": no per-key limit except teams' own (the failed-authentication limit stays on).
  POSTHORN_RATE_LIMIT: z
    .literal('off')
    .transform(() => null)
    .or(rateLimitSchema)
    .prefault('500/1s'),
  // Requests per inbound endpoint (/in/<slug>, docs/endpoints.md), shared by all gateways; "off": none.
  POSTHORN_INBOUND_RATE_LIMIT: z
    .literal('off')
    .transform(() => null)
    .or(rateLimitSchema)
    .prefault('100/1s'),
  // `posthorn sync` (bin/sync.ts): the gateway to call and the admin key to call it with.
  POSTHORN_URL: z
    .string()
    .url()
    .refine((u) => /^https?:$/.test(new URL(u).protocol), 'expected an http(s) URL')
    .optional(),
  POSTHORN_API_KEY: z.string().regex(keyPattern, 'expected ph_ followed by at least 32 letters or digits').optional(),
  POSTHORN_MAX_BODY_BYTES: int(1024, 64 * 1024 * 1024).default(1_048_576),
  POSTHORN_LEASE_MS: int(500, 24 * 3_600_000).default(30_000),
  POSTHORN_POLL_INTERVAL_MS: int(10, 60_000).default(1000),
  POSTHORN_SHUTDOWN_GRACE_MS: int(0, 600_000).default(25_000),
  POSTHORN_RETENTION_HOURS: int(1, 24 * 3650).default(168),
  POSTHORN_METRICS_PORT: int(0, 65535).default(9464),
  POSTHORN_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  POSTHORN_DB_POOL: int(1, 200).default(10),
  POSTHORN_WORKER_ID: z.string().min(1).optional(),
  // Set by npm for the processes of `npm start` (and any npm script): see bin/start.ts.
  npm_lifecycle_event: z.string().optional(),
  // Notifications (docs/notifications.md): e-mail through this server; links to the web UI.
  POSTHORN_SMTP_URL: z
    .string()
    .url()
    .refine((u) => /^smtps?:$/.test(new URL(u).protocol), 'expected smtp://user:pass@host:port or smtps://...')
    .optional(),
  POSTHORN_SMTP_FROM: z.string().min(3).max(256).default('Posthorn <posthorn@localhost>'),
  POSTHORN_PUBLIC_URL: z
    .string()
    .url()
    .refine((u) => /^https?:$/.test(new URL(u).protocol), 'expected an http(s) URL')
    .optional(),
  POSTHORN_NOTIFY_INTERVAL_MS: int(50, 600_000).default(1000),
  POSTHORN_NOTIFY_RETENTION_HOURS: int(1, 24 * 3650).default(168),
  POSTHORN_SECRET_KEY: secretKey.optional(),
  POSTHORN_SECRET_KEY_PREVIOUS: secretKeyList.optional(),
  // OpenTelemetry: the standard variables (opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables).
  OTEL_SDK_DISABLED: bool.default(false),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none']).default('otlp'),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.string().url().optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol.default('http/protobuf'),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol.optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_TRACES_SAMPLER: z
    .enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'])
    .default('parentbased_always_on'),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
  // Circuit breakers (docs/circuits.md): the first open period, its cap, and the attempts in
  // the 60 s window before one may open. Lowered by tests; the defaults are the contract's.
  POSTHORN_CIRCUIT_OPEN_MS: int(100, 3_600_000).default(30_000),
  POSTHORN_CIRCUIT_MAX_OPEN_MS: int(100, 24 * 3_600_000).default(600_000),
  POSTHORN_CIRCUIT_MIN_REQUESTS: int(1, 1_000_000).default(10),
});

export type Env = z.input<typeof envSchema>;

export function parseConfig(env: Record<string, string | undefined> = process.env) {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  const res = envSchema.safeParse(picked);
  if (!res.success) {
    const lines = res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const e = res.data;
  return {
    databaseUrl: e.DATABASE_URL,
    port: e.PORT,
    host: e.HOST,
    dataDir: e.POSTHORN_DATA_DIR,
    embeddedPgPort: e.POSTHORN_PG_PORT,
    workers: e.POSTHORN_WORKERS,
    workerConcurrency: e.POSTHORN_WORKER_CONCURRENCY,
    bootstrapKey: e.POSTHORN_BOOTSTRAP_KEY,
    operatorToken: e.POSTHORN_OPERATOR_TOKEN,
    allowPrivateTargets: e.POSTHORN_ALLOW_PRIVATE_TARGETS,
    targetAllowlist: e.POSTHORN_TARGET_ALLOWLIST,
    rateLimit: e.POSTHORN_RATE_LIMIT,
    inboundRateLimit: e.POSTHORN_INBOUND_RATE_LIMIT,
    apiUrl: e.POSTHORN_URL?.replace(/\/+$/, ''),
    apiKey: e.POSTHORN_API_KEY,
    trustedProxies: e.POSTHORN_TRUSTED_PROXIES,
    maxBodyBytes: e.POSTHORN_MAX_BODY_BYTES,
    leaseMs: e.POSTHORN_LEASE_MS,
    pollIntervalMs: e.POSTHORN_POLL_INTERVAL_MS,
    shutdownGraceMs: e.POSTHORN_SHUTDOWN_GRACE_MS,
    retentionHours: e.POSTHORN_RETENTION_HOURS,
    metricsPort: e.POSTHORN_METRICS_PORT,
    logLevel: e.POSTHORN_LOG_LEVEL,
    dbPool: e.POSTHORN_DB_POOL,
    workerId: e.POSTHORN_WORKER_ID,
    launchedByNpm: e.npm_lifecycle_event !== undefined,
    smtpUrl: e.POSTHORN_SMTP_URL,
    smtpFrom: e.POSTHORN_SMTP_FROM,
    publicUrl: e.POSTHORN_PUBLIC_URL?.replace(/\/+$/, ''),
    notifyIntervalMs: e.POSTHORN_NOTIFY_INTERVAL_MS,
    notifyRetentionHours: e.POSTHORN_NOTIFY_RETENTION_HOURS,
    secretKey: e.POSTHORN_SECRET_KEY,
    secretKeyPrevious: e.POSTHORN_SECRET_KEY_PREVIOUS ?? [],
    telemetry: telemetryConfig(e),
    circuit: {
      openMs: e.POSTHORN_CIRCUIT_OPEN_MS,
      maxOpenMs: Math.max(e.POSTHORN_CIRCUIT_OPEN_MS, e.POSTHORN_CIRCUIT_MAX_OPEN_MS),
      minRequests: e.POSTHORN_CIRCUIT_MIN_REQUESTS,
      failureRate: 0.5,
    },
  };
}

/**
 * Where spans go. No endpoint (or OTEL_SDK_DISABLED / OTEL_TRACES_EXPORTER=none): tracesUrl is
 * null and nothing is exported or even recorded. The traces endpoint wins over the general one;
 * for HTTP the general one gets /v1/traces appended, as the OTLP exporter specification says.
 */
function telemetryConfig(e: z.output<typeof envSchema>) {
  const protocol = e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL;
  const base = e.OTEL_EXPORTER_OTLP_ENDPOINT;
  let tracesUrl = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? null;
  if (!tracesUrl && base) tracesUrl = protocol === 'grpc' ? base : `${base.replace(/\/+$/, '')}/v1/traces`;
  if (e.OTEL_SDK_DISABLED || e.OTEL_TRACES_EXPORTER === 'none') tracesUrl = null;
  return {
    tracesUrl,
    protocol,
    serviceName: e.OTEL_SERVICE_NAME,
    sampler: e.OTEL_TRACES_SAMPLER,
    // The specification's default ratio when the argument is absent.
    samplerRatio: e.OTEL_TRACES_SAMPLER_ARG ?? 1,
  };
}

export type TelemetryConfig = ReturnType<typeof telemetryConfig>;

export type Config = ReturnType<typeof parseConfig>;

export class ConfigError extends Error {}

export const API_KEY_PATTERN = keyPattern;
