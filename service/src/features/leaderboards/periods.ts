/**
 * The periods a board covers, in UTC: the ISO week (`2026-W53`), the calendar month (`2026-12`) and
 * all time (`all`, as leaderboard_scores stores it). An award counts towards the week and month it
 * was made in, whichever process made it.
 */
export const PERIODS = ['week', 'month', 'all-time'] as const;
export type Period = (typeof PERIODS)[number];
export const ALL_TIME_KEY = 'all';

export interface CurrentPeriods {
  week: string;
  month: string;
  /** When the week and the month end (ms since the epoch, UTC). */
  weekEndsAt: number;
  monthEndsAt: number;
}

const DAY_MS = 86_400_000;
const pad2 = (n: number) => String(n).padStart(2, '0');

/** The ISO 8601 week of `at`: weeks start on Monday, and week 1 holds the year's first Thursday. */
export function isoWeekKey(at: Date): string {
  const day = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
  const weekday = new Date(day).getUTCDay() || 7; // Monday 1 … Sunday 7
  const thursday = new Date(day + (4 - weekday) * DAY_MS); // its year is the week's year
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / DAY_MS / 7) + 1;
  return `${year}-W${pad2(week)}`;
}

export function monthKey(at: Date): string {
  return `${at.getUTCFullYear()}-${pad2(at.getUTCMonth() + 1)}`;
}

export function periodsAt(at: Date): CurrentPeriods {
  const day = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
  const weekday = new Date(day).getUTCDay() || 7;
  return {
    week: isoWeekKey(at),
    month: monthKey(at),
    weekEndsAt: day + (8 - weekday) * DAY_MS,
    monthEndsAt: Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1),
  };
}

/**
 * The current periods, worked out once per period rather than on every award: the answer holds
 * until the week or the month ends, whichever is first.
 */
export function periodClock(now: () => number = Date.now): () => CurrentPeriods {
  let current: CurrentPeriods | undefined;
  return () => {
    const at = now();
    if (!current || at >= Math.min(current.weekEndsAt, current.monthEndsAt))
      current = periodsAt(new Date(at));
    return current;
  };
}

/** The stored period key of a board's period at the time `periods` describes. */
export function periodKeyOf(period: Period, periods: CurrentPeriods): string {
  return period === 'week' ? periods.week : period === 'month' ? periods.month : ALL_TIME_KEY;
}
