// The shape every leader service has, after River's maintenance services: a named default
// interval, runOnce() that does one pass and returns what it did (tests and logs read it),
// and start/stop around a loop that runs it now and then `intervalMs` after each pass ends
// (never two passes at once). A failed pass is reported and the loop goes on.
import type { Attributes } from '@opentelemetry/api';
import type { Logger } from '../../shared/logger.ts';
import { recordPass } from '../../shared/telemetry.ts';

export type MaintenanceService<R> = {
  readonly name: string;
  readonly intervalMs: number;
  runOnce(): Promise<R>;
  start(): void;
  /** Stops the loop and waits for a pass in progress to end. */
  stop(): Promise<void>;
};

export function createService<R>(o: {
  name: string;
  intervalMs: number;
  logger: Logger;
  runOnce: () => Promise<R>;
  /** Wait before the first pass after start(); default 0. */
  startDelayMs?: number;
  /** What a pass did, worth a log line (nothing done: say nothing). */
  report?: (result: R) => void;
  /** How loud a failed pass is: warn (the next pass retries it), error where a failure costs work. */
  failureLevel?: 'warn' | 'error';
  /**
   * With tracing on, a root span named `span` for a pass that did something (attributes gives
   * its attributes, null for an idle pass) or failed: idle passes run every few hundred
   * milliseconds and would bury the useful ones (shared/telemetry.ts, recordPass).
   */
  trace?: { span: string; attributes: (result: R) => Attributes | null };
}): MaintenanceService<R> {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  const pass = () => {
    const t0 = Date.now();
    running = o
      .runOnce()
      .then(
        (result) => {
          o.report?.(result);
          const attributes = o.trace?.attributes(result);
          if (o.trace && attributes) recordPass(o.trace.span, t0, attributes);
        },
        (err) => {
          o.logger[o.failureLevel ?? 'warn']({ err }, `${o.name} pass failed`);
          if (o.trace) recordPass(o.trace.span, t0, {}, err);
        },
      )
      .finally(() => {
        if (timer) timer = setTimeout(pass, o.intervalMs);
      });
  };
  return {
    name: o.name,
    intervalMs: o.intervalMs,
    runOnce: o.runOnce,
    start: () => void (timer = setTimeout(pass, o.startDelayMs ?? 0)),
    stop: async () => {
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
