import { describe, expect, it } from 'vitest';
import { isoWeekKey, monthKey, periodClock, periodsAt } from './periods.js';

const utc = (iso: string) => new Date(`${iso}Z`);

describe('leaderboard periods (UTC)', () => {
  it.each([
    ['2026-12-03T12:00:00', '2026-W49'],
    ['2026-01-01T00:00:00', '2026-W01'], // a Thursday: week 1 of its own year
    ['2025-12-29T00:00:00', '2026-W01'], // the Monday of that week, still in 2025
    ['2026-12-31T23:59:59', '2026-W53'], // 2026 starts on a Thursday: it has 53 weeks
    ['2027-01-03T23:59:59', '2026-W53'], // the Sunday ending it, already in 2027
    ['2027-01-04T00:00:00', '2027-W01'],
    ['2021-01-03T10:00:00', '2020-W53'],
  ])('puts %s in ISO week %s', (at, week) => {
    expect(isoWeekKey(utc(at))).toBe(week);
  });

  it('names the month and says when the week and the month end', () => {
    const periods = periodsAt(utc('2026-12-31T22:00:00'));
    expect(periods).toEqual({
      week: '2026-W53',
      month: '2026-12',
      weekEndsAt: utc('2027-01-04T00:00:00').getTime(),
      monthEndsAt: utc('2027-01-01T00:00:00').getTime(),
    });
    expect(monthKey(utc('2027-01-01T00:00:00'))).toBe('2027-01');
    // A Monday's week ends the next Monday, not the same day.
    expect(periodsAt(utc('2026-12-07T00:00:00')).weekEndsAt).toBe(utc('2026-12-14T00:00:00').getTime());
  });

  it('moves to the next period at its first millisecond', () => {
    let now = utc('2026-11-30T23:59:59.999').getTime();
    const current = periodClock(() => now);
    expect(current()).toMatchObject({ week: '2026-W49', month: '2026-11' });
    now += 1;
    expect(current()).toMatchObject({ week: '2026-W49', month: '2026-12' });
    now = utc('2026-12-07T00:00:00').getTime();
    expect(current()).toMatchObject({ week: '2026-W50', month: '2026-12' });
  });
});
