/**
 * Plant local time for time windows: weekday and minute of the day in the plant's IANA time zone,
 * through Intl (the platform's tz database), so a window "06:00–22:00" follows daylight saving time:
 * on the spring-forward day local time jumps from 01:59 to 03:00 and a window starting at 02:30
 * opens at 03:00; on the fall-back day 01:00–01:59 happens twice and is inside a window covering it
 * both times (T-CLK-02). Computed once per wall-clock minute (no zone has had a sub-minute offset
 * since 1972).
 */
import type { Weekday } from './policy';

const WEEKDAY_INDEX: Readonly<Record<string, number>> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
export const WEEKDAY_NAMES: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

export interface LocalTime {
  /** 0 = Sunday. */
  weekday: number;
  /** Minutes after local midnight, 0…1439. */
  minute: number;
}

export class PlantClock {
  private readonly format: Intl.DateTimeFormat;
  private cachedMinute = NaN;
  private cached: LocalTime = { weekday: 0, minute: 0 };

  constructor(readonly timeZone: string) {
    this.format = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }

  at(wallMs: number): LocalTime {
    const minute = Math.floor(wallMs / 60_000);
    if (minute === this.cachedMinute) return this.cached;
    let weekday = 0;
    let hour = 0;
    let min = 0;
    for (const part of this.format.formatToParts(wallMs)) {
      if (part.type === 'weekday') weekday = WEEKDAY_INDEX[part.value];
      else if (part.type === 'hour') hour = Number(part.value);
      else if (part.type === 'minute') min = Number(part.value);
    }
    this.cachedMinute = minute;
    this.cached = { weekday, minute: hour * 60 + min };
    return this.cached;
  }
}

/**
 * Whether local time `t` is inside a window [from, to) that starts on one of `days` (a bitmask,
 * bit 0 = Sunday). An overnight window (from > to) runs past midnight into the next day.
 */
export function inWindow(t: LocalTime, days: number, from: number, to: number): boolean {
  const today = (days & (1 << t.weekday)) !== 0;
  if (from < to) return today && t.minute >= from && t.minute < to;
  const yesterday = (days & (1 << ((t.weekday + 6) % 7))) !== 0;
  return (today && t.minute >= from) || (yesterday && t.minute < to);
}
