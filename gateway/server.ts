// Runs the gateway: the Hono app on Node's HTTP server. Stateless; run as many as you like.

import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Config } from '../shared/config.ts';
import { createSql } from '../shared/db.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { secretBoxFromConfig } from '../shared/secret-box.ts';
import { targetPolicyFromConfig } from '../shared/targets.ts';
import { initTelemetry, shutdownTelemetry } from '../shared/telemetry.ts';
import { createApp } from './app.ts';
import { createEnqueueBatcher } from './enqueue-batcher.ts';
import { createInboundWriter } from './inbound.ts';
import { createGatewayLimits } from './rate-limit.ts';

/** opts: for tests that watch a real gateway in process (its log lines, a short body timeout). */
export async function startGateway(config: Config & { databaseUrl: string }, opts: { logger?: Logger; bodyTimeoutMs?: number } = {}) {
  const logger = opts.logger ?? createLogger('gateway', config.logLevel);
  await initTelemetry(config.telemetry, 'posthorn-gateway', logger);
  const sql = createSql(config.databaseUrl, { max: config.dbPool, name: 'posthorn-gateway' });
  const batcher = createEnqueueBatcher(sql);
  const policy = targetPolicyFromConfig(config, logger);
  // The rate limiter's own few connections: its one UPSERT per request must not wait behind
  // enqueue INSERTs in the main pool (4: enough for ≈10k upserts/s on this machine).
  const limiterSql = createSql(config.databaseUrl, { max: 4, name: 'posthorn-ratelimit' });
  const limits = createGatewayLimits({
    sql: limiterSql,
    defaultLimit: config.rateLimit,
    trustedProxies: config.trustedProxies,
    inboundLimit: config.inboundRateLimit,
  });
  const inboundWriter = createInboundWriter(sql);
  const app = createApp({
    sql,
    batcher,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    checkTarget: policy.checkUrl,
    limits,
    operatorToken: config.operatorToken,
    trustedProxies: config.trustedProxies,
    bodyTimeoutMs: opts.bodyTimeoutMs,
    inboundWriter,
    secretBox: secretBoxFromConfig(config),
  });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
  logger.info({ url }, 'gateway listening');

  async function stop() {
    // Stop accepting, let requests in flight finish (their rows commit), then close the pool.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await batcher.drain();
    await inboundWriter.drain();
    await sql.end({ timeout: 5 });
    await limiterSql.end({ timeout: 5 });
    await shutdownTelemetry(); // exports the spans still buffered
    logger.info('gateway stopped');
  }
  return { url, app, stop };
}
