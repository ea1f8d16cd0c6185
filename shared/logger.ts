// pino JSON lines. Keys, tokens and secrets never reach a log line: the redaction list
// covers the places they could travel (request headers, config), and code never logs raw keys.
// A line written inside a traced request or attempt carries its trace_id and span_id.
import { context, trace } from '@opentelemetry/api';
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

/** The active span's ids; nothing outside a span (with tracing off, always nothing). */
function traceIds(): Record<string, string> {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const sc = span.spanContext();
  return trace.isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}

/** `destination`: stdout unless given (tests capture lines). */
export function createLogger(name: string, level = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      name,
      level,
      base: { service: name, pid: process.pid },
      mixin: traceIds,
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
          // Connections (docs/connections.md): code never logs these; the list is the second fence.
          'secretKey',
          'secretKeyPrevious',
          'client_secret',
          'password',
          'access_token',
          '*.client_secret',
          '*.password',
          '*.token',
          '*.access_token',
          '*.authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
