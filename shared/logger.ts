// pino JSON lines. Keys, tokens and secrets never reach a log line: the redaction list
// covers the places they could travel (request headers, config), and code never logs raw keys.
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(name: string, level = 'info'): Logger {
  return pino({
    name,
    level,
    base: { service: name, pid: process.pid },
    redact: {
      paths: [
        'authorization',
        'headers.authorization',
        'req.headers.authorization',
        'key',
        'token',
        'secret',
        'databaseUrl',
        'bootstrapKey',
        'operatorToken',
      ],
      censor: '[redacted]',
    },
  });
}
