import { describe, expect, it } from 'vitest';
import { describeWindows, inWindow, parseWindow, parseWindows, scriptedClock, wallClock, windowsOpen } from '../../src/core/window.js';
import { InputError } from '../../src/errors.js';

const at = (iso: string) => new Date(iso);

describe('parseWindow', () => {
  it('reads days, a time range and a zone', () => {
    const w = parseWindow('Sat 01:00-05:00 Europe/Berlin');
    expect([...w.days]).toEqual([6]);
    expect([w.start, w.end, w.timeZone, w.text]).toEqual([60, 300, 'Europe/Berlin', 'Sat 01:00-05:00 Europe/Berlin']);
  });
  it('day ranges, lists, wrap-around ranges, * and omitted days', () => {
    expect([...parseWindow('Mon-Fri 22:00-02:00 UTC').days].sort()).toEqual([1, 2, 3, 4, 5]);
    expect([...parseWindow('Sat,Sun 00:00-24:00').days].sort()).toEqual([0, 6]);
    expect([...parseWindow('Fri-Mon 00:00-06:00').days].sort()).toEqual([0, 1, 5, 6]);
    expect([...parseWindow('mon-wed,fri 00:00-06:00').days].sort()).toEqual([1, 2, 3, 5]);
    expect(parseWindow('* 01:00-02:00').days.size).toBe(7);
    expect(parseWindow('01:00-02:00').days.size).toBe(7);
    expect(parseWindow('01:00-02:00').timeZone).toBe('UTC');
    expect(parseWindow('22:00-24:00').end).toBe(1440);
  });
  it.each([
    ['', /empty window/],
    ['Sat', /no time range/],
    ['Sat 1-5', /no time range/],
    ['Sat 01:00 05:00', /not a time range|unknown time zone/],
    ['Sat 01:00-25:00', /not a time of day/],
    ['Sat 01:60-02:00', /not a time of day/],
    ['Sat 24:00-02:00', /not a time of day/],
    ['Sat 01:00-01:00', /empty/],
    ['Sunday 01:00-05:00', /not a day/],
    ['Sat 01:00-05:00 Mars/Olympus', /unknown time zone/],
    ['Sat 01:00-05:00 UTC extra', /unexpected "extra"/],
    ['Sat Sun 01:00-05:00', /days must be one word/],
    ['Mon-Fri-Sat 01:00-05:00', /not a day range/],
  ])('refuses %j, naming the flag', (text, why) => {
    let err: unknown;
    try {
      parseWindow(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(/^--window /);
    expect((err as Error).message).toMatch(why);
  });
});

describe('inWindow', () => {
  it('start inclusive, end exclusive, on the right day', () => {
    const w = parseWindow('Sat 01:00-05:00 UTC');
    // 2026-11-28 is a Saturday
    expect(inWindow(w, at('2026-11-28T00:59:59Z'))).toBe(false);
    expect(inWindow(w, at('2026-11-28T01:00:00Z'))).toBe(true);
    expect(inWindow(w, at('2026-11-28T04:59:59Z'))).toBe(true);
    expect(inWindow(w, at('2026-11-28T05:00:00Z'))).toBe(false);
    expect(inWindow(w, at('2026-11-27T02:00:00Z'))).toBe(false); // Friday
  });
  it('is read in the window’s time zone', () => {
    const w = parseWindow('Sat 01:00-05:00 Europe/Berlin'); // CET, UTC+1 in November
    expect(inWindow(w, at('2026-11-28T00:30:00Z'))).toBe(true); // 01:30 Berlin
    expect(inWindow(w, at('2026-11-28T04:30:00Z'))).toBe(false); // 05:30 Berlin
    expect(inWindow(w, at('2026-11-27T23:59:00Z'))).toBe(false); // Sat 00:59 Berlin: not yet
    const ny = parseWindow('Fri 22:00-23:00 America/New_York'); // EST, UTC-5
    expect(inWindow(ny, at('2026-11-28T03:30:00Z'))).toBe(true); // Fri 22:30 New York, already Saturday in UTC
  });
  it('follows wall-clock time across a daylight-saving change', () => {
    // Berlin springs forward on Sun 2026-03-29 at 02:00 CET -> 03:00 CEST.
    const w = parseWindow('Sun 01:00-05:00 Europe/Berlin');
    expect(inWindow(w, at('2026-03-29T00:30:00Z'))).toBe(true); // 01:30 CET
    expect(inWindow(w, at('2026-03-29T02:30:00Z'))).toBe(true); // 04:30 CEST
    expect(inWindow(w, at('2026-03-29T03:00:00Z'))).toBe(false); // 05:00 CEST; a fixed +1 offset would say 04:00
    // and falls back on Sun 2026-10-25 at 03:00 CEST -> 02:00 CET
    expect(inWindow(w, at('2026-10-25T03:30:00Z'))).toBe(true); // 04:30 CET
    expect(inWindow(w, at('2026-10-25T04:00:00Z'))).toBe(false); // 05:00 CET
    expect(wallClock(at('2026-10-25T00:30:00Z'), 'Europe/Berlin')).toEqual({ day: 0, minutes: 150 }); // 02:30 CEST
    expect(wallClock(at('2026-10-25T01:30:00Z'), 'Europe/Berlin')).toEqual({ day: 0, minutes: 150 }); // 02:30 CET, again
  });
  it('a window crossing midnight belongs to the day it starts', () => {
    const w = parseWindow('Fri 22:00-02:00 UTC');
    expect(inWindow(w, at('2026-11-27T21:59:00Z'))).toBe(false); // Fri 21:59
    expect(inWindow(w, at('2026-11-27T22:00:00Z'))).toBe(true); // Fri 22:00
    expect(inWindow(w, at('2026-11-28T01:59:00Z'))).toBe(true); // Sat 01:59, Friday's window
    expect(inWindow(w, at('2026-11-28T02:00:00Z'))).toBe(false); // Sat 02:00
    expect(inWindow(w, at('2026-11-28T23:00:00Z'))).toBe(false); // Sat 23:00: no Saturday window
    expect(inWindow(w, at('2026-11-27T01:00:00Z'))).toBe(false); // Fri 01:00: Thursday had none
  });
  it('windowsOpen: none means always; otherwise any', () => {
    expect(windowsOpen([], at('2026-11-28T12:00:00Z'))).toBe(true);
    const ws = parseWindows(['Sat 01:00-02:00', 'Sat 12:00-13:00']);
    expect(windowsOpen(ws, at('2026-11-28T12:30:00Z'))).toBe(true);
    expect(windowsOpen(ws, at('2026-11-28T03:00:00Z'))).toBe(false);
    expect(describeWindows(ws)).toBe('Sat 01:00-02:00; Sat 12:00-13:00');
  });
});

describe('scriptedClock', () => {
  it('returns the instants in turn, the last one repeating', () => {
    const c = scriptedClock('2026-11-28T01:00:00Z, 2026-11-28T06:00:00Z');
    expect([c(), c(), c()].map((d) => d.toISOString())).toEqual(['2026-11-28T01:00:00.000Z', '2026-11-28T06:00:00.000Z', '2026-11-28T06:00:00.000Z']);
  });
  it('refuses a bad time, naming the variable', () => {
    expect(() => scriptedClock('tomorrow')).toThrow(/RUNC_ROLLOUT_NOW: "tomorrow"/);
  });
});
