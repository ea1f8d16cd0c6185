import { describe, expect, it } from 'vitest';
import { parseDelay } from '../shared/duration.ts';

describe('parseDelay', () => {
  it.each([
    [0, 0],
    [30, 30_000],
    ['30', 30_000],
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['2d', 172_800_000],
    ['1d2h3m4s', 93_784_000],
  ] as const)('%s → %s ms', (input, ms) => expect(parseDelay(input)).toBe(ms));

  it.each(['', '5 m', '1m1h', 'm', '1.5s', '-5', 'five'])('%s is not a duration', (input) => expect(parseDelay(input)).toBeNull());
  it('refuses fractional and negative numbers', () => {
    expect(parseDelay(1.5)).toBeNull();
    expect(parseDelay(-1)).toBeNull();
  });
});
