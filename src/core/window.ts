// Rollout windows (`--window "Sat 01:00-05:00 Europe/Berlin"`): when a batch
// may start. Pure: the clock is passed in, time zones come from the runtime's
// Intl data, and a window is read in wall-clock time of its zone, so it means
// the same on either side of a daylight-saving change.
import { InputError } from '../errors.js';

export const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface RolloutWindow {
  /** The text it was parsed from, for reports and messages. */
  text: string;
  /** Days (0 = Sunday) on which the window STARTS; a window crossing midnight ends the next day. */
  days: ReadonlySet<number>;
  /** Minutes after local midnight; `end` may be 1440 (24:00). `end <= start` crosses midnight. */
  start: number;
  end: number;
  /** IANA zone, e.g. Europe/Berlin (default UTC). */
  timeZone: string;
}

const TIME = /^(\d{1,2}):(\d{2})$/;
const DAY_INDEX = new Map<string, number>(WEEKDAYS.map((d, i) => [d.toLowerCase(), i]));

function bad(flag: string, text: string, why: string): InputError {
  return new InputError(`${flag} ${JSON.stringify(text)}: ${why}`, [
    `expected [DAYS] HH:MM-HH:MM [TIME_ZONE], e.g. "Sat 01:00-05:00 Europe/Berlin", "Mon-Fri 22:00-02:00 UTC", "* 00:00-06:00"`,
  ]);
}

function parseTime(s: string, flag: string, text: string, allow24: boolean): number {
  const m = TIME.exec(s);
  if (!m) throw bad(flag, text, `${JSON.stringify(s)} is not a time (HH:MM)`);
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (allow24 && h === 24 && min === 0) return 1440;
  if (h > 23 || min > 59) throw bad(flag, text, `${JSON.stringify(s)} is not a time of day`);
  return h * 60 + min;
}

function parseDay(s: string, flag: string, text: string): number {
  const d = DAY_INDEX.get(s.toLowerCase());
  if (d === undefined) throw bad(flag, text, `${JSON.stringify(s)} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)`);
  return d;
}

/** `Mon-Fri`, `Sat,Sun`, `Mon-Wed,Fri`, `Fri-Mon` (wraps), `*`. */
function parseDays(s: string, flag: string, text: string): Set<number> {
  if (s === '*') return new Set([0, 1, 2, 3, 4, 5, 6]);
  const days = new Set<number>();
  for (const part of s.split(',')) {
    const range = part.split('-');
    if (range.length === 1) days.add(parseDay(part, flag, text));
    else if (range.length === 2) {
      const from = parseDay(range[0] as string, flag, text);
      const to = parseDay(range[1] as string, flag, text);
      for (let d = from; ; d = (d + 1) % 7) {
        days.add(d);
        if (d === to) break;
      }
    } else throw bad(flag, text, `${JSON.stringify(part)} is not a day range`);
  }
  return days;
}

function checkTimeZone(tz: string, flag: string, text: string): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    throw bad(flag, text, `unknown time zone ${JSON.stringify(tz)} (an IANA name like Europe/Berlin, or UTC)`);
  }
}

export function parseWindow(text: string, flag = '--window'): RolloutWindow {
  const words = text.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) throw bad(flag, text, 'empty window');
  const rangeAt = words.findIndex((w) => w.includes(':'));
  if (rangeAt < 0) throw bad(flag, text, 'no time range HH:MM-HH:MM');
  if (rangeAt > 1) throw bad(flag, text, 'days must be one word, e.g. Mon-Fri or Sat,Sun');
  if (words.length > rangeAt + 2) throw bad(flag, text, `unexpected ${JSON.stringify(words.slice(rangeAt + 2).join(' '))}`);
  const days = rangeAt === 1 ? parseDays(words[0] as string, flag, text) : parseDays('*', flag, text);
  const range = (words[rangeAt] as string).split('-');
  if (range.length !== 2) throw bad(flag, text, `${JSON.stringify(words[rangeAt])} is not a time range HH:MM-HH:MM`);
  const start = parseTime(range[0] as string, flag, text, false);
  const end = parseTime(range[1] as string, flag, text, true);
  if (start === end) throw bad(flag, text, 'the window is empty (start equals end); use 00:00-24:00 for a whole day');
  const tzWord = words[rangeAt + 1];
  const timeZone = tzWord === undefined ? 'UTC' : checkTimeZone(tzWord, flag, text);
  return { text: text.trim(), days, start, end, timeZone };
}

export function parseWindows(texts: readonly string[], flag = '--window'): RolloutWindow[] {
  return texts.map((t) => parseWindow(t, flag));
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Wall-clock weekday (0 = Sunday) and minutes after midnight of `at` in `timeZone`. */
export function wallClock(at: Date, timeZone: string): { day: number; minutes: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  const parts = f.formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = DAY_INDEX.get(get('weekday').toLowerCase());
  if (day === undefined) throw new Error(`unexpected weekday from Intl: ${get('weekday')}`);
  return { day, minutes: (Number(get('hour')) % 24) * 60 + Number(get('minute')) };
}

/** Whether `at` is inside the window: start inclusive, end exclusive. */
export function inWindow(w: RolloutWindow, at: Date): boolean {
  const { day, minutes } = wallClock(at, w.timeZone);
  if (w.start < w.end) return w.days.has(day) && minutes >= w.start && minutes < w.end;
  // Crosses midnight: the evening part belongs to today's window, the morning part to yesterday's.
  return (w.days.has(day) && minutes >= w.start) || (w.days.has((day + 6) % 7) && minutes < w.end);
}

/** No windows means always open; otherwise open when any window is. */
export function windowsOpen(windows: readonly RolloutWindow[], at: Date): boolean {
  return windows.length === 0 || windows.some((w) => inWindow(w, at));
}

export function describeWindows(windows: readonly RolloutWindow[]): string {
  if (windows.length === 0) return 'any time';
  return windows.map((w) => w.text).join('; ');
}

/**
 * A clock for tests and replays: each read returns the next of the given
 * instants, the last one repeating. `RUNC_ROLLOUT_NOW` feeds it at the CLI edge.
 */
export function scriptedClock(text: string, source = 'RUNC_ROLLOUT_NOW'): () => Date {
  const instants = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const d = new Date(s);
      if (Number.isNaN(d.getTime())) throw new InputError(`${source}: ${JSON.stringify(s)} is not an ISO 8601 time`);
      return d;
    });
  if (instants.length === 0) throw new InputError(`${source}: empty`);
  let i = 0;
  return () => new Date((instants[Math.min(i++, instants.length - 1)] as Date).getTime());
}
