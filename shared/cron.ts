// Cron expressions through croner: 5 fields, or 6 with seconds first (docs/api.md §5), in an IANA
// time zone. DST follows croner (Vixie cron's rules, see docs/schedules.md).
import { Cron } from 'croner';

/** Why the expression is refused, or null. */
export function cronProblem(expr: string): string | null {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) return `expected 5 fields (or 6 with seconds first), got ${fields.length}`;
  try {
    new Cron(expr, { paused: true, timezone: 'UTC' });
    return null;
  } catch (e) {
    return (e as Error).message.replace(/^CronPattern: /, '');
  }
}

export function timezoneProblem(tz: string): string | null {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return null;
  } catch {
    return `"${tz}" is not an IANA time zone`;
  }
}

const cron = (expr: string, timezone: string) => new Cron(expr, { paused: true, timezone });

/** The first tick strictly after `after`; null when the expression never fires again. */
export function nextTick(expr: string, timezone: string, after: Date): Date | null {
  return cron(expr, timezone).nextRun(after);
}

/** The latest tick at or before `at` (missed ticks collapse into this one). */
export function latestTickAtOrBefore(expr: string, timezone: string, at: Date): Date | null {
  return cron(expr, timezone).previousRuns(1, new Date(at.getTime() + 1))[0] ?? null;
}
