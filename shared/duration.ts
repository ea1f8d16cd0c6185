// "delay" in docs/api.md §4: whole seconds (a number or a string of digits) or a duration made of
// days, hours, minutes and seconds in that order: "90s", "5m", "1h30m", "2d".
const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Milliseconds, or null when the input is not a duration. */
export function parseDelay(input: number | string): number | null {
  if (typeof input === 'number') return Number.isInteger(input) && input >= 0 ? input * 1000 : null;
  if (/^\d+$/.test(input)) return Number(input) * 1000;
  const m = DURATION_RE.exec(input);
  if (!m || input === '') return null;
  const [d, h, min, s] = m.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number];
  return (((d * 24 + h) * 60 + min) * 60 + s) * 1000;
}
