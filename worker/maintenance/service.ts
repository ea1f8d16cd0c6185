// The shape every leader service has, after River's maintenance services: a named default
// interval, runOnce() that does one pass and returns what it did (tests and logs read it),
// and start/stop around a loop that runs it now and then `intervalMs` after each pass ends
// (never two passes at once). A failed pass is reported and the loop goes on.
import type { Logger } from '../../shared/logger.ts';

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
  /** What a pass did, worth a log line (nothing done: say nothing). */
  report?: (result: R) => void;
  /** How loud a failed pass is: warn (the next pass retries it), error where a failure costs work. */
  failureLevel?: 'warn' | 'error';
}): MaintenanceService<R> {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  const pass = () => {
    running = o
      .runOnce()
      .then(o.report, (err) => o.logger[o.failureLevel ?? 'warn']({ err }, `${o.name} pass failed`))
      .finally(() => {
        if (timer) timer = setTimeout(pass, o.intervalMs);
      });
  };
  return {
    name: o.name,
    intervalMs: o.intervalMs,
    runOnce: o.runOnce,
    start: () => void (timer = setTimeout(pass, 0)),
    stop: async () => {
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
