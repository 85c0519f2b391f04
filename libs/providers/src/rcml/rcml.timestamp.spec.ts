import { describe, it, expect } from 'vitest';
import { parseRcmlTimestamp } from './rcml.timestamp.js';

describe('parseRcmlTimestamp', () => {
  it.each([
    // Twilio: RFC 2822 with numeric offset
    ['Mon, 05 Jan 2026 14:05:51 +0000', '2026-01-05T14:05:51.000Z'],
    ['Mon, 05 Jan 2026 16:05:51 +0200', '2026-01-05T14:05:51.000Z'],
    ['Mon, 05 Jan 2026 09:05:51 -05:00', '2026-01-05T14:05:51.000Z'],
    ['Mon, 05 Jan 2026 14:05:51 GMT', '2026-01-05T14:05:51.000Z'],
    ['Mon, 05 Jan 2026 09:05:51 EST', '2026-01-05T14:05:51.000Z'],
    ['05 Jan 2026 14:05:51 +0000', '2026-01-05T14:05:51.000Z'],
    // Restcomm: Joda `ZZZZ` prints a zone id
    ['Mon, 05 Jan 2026 14:05:51 UTC', '2026-01-05T14:05:51.000Z'],
    ['Mon, 05 Jan 2026 16:05:51 Europe/Athens', '2026-01-05T14:05:51.000Z'],
    ['Wed, 01 Jul 2026 17:00:00 Europe/Athens', '2026-07-01T14:00:00.000Z'],
    ['Mon, 05 Jan 2026 09:05:51 America/New_York', '2026-01-05T14:05:51.000Z'],
    ['Sat, 14 Mar 2026 23:30:00 Asia/Kolkata', '2026-03-14T18:00:00.000Z'],
    ['Mon, 05 Jan 2026 14:05:51 Etc/UTC', '2026-01-05T14:05:51.000Z'],
    // CallTimestamp style
    ['2026-01-05T14:02:10.118Z', '2026-01-05T14:02:10.118Z'],
    ['2026-01-05T16:02:10.118+02:00', '2026-01-05T14:02:10.118Z'],
  ])('%s -> %s', (input, expected) => {
    expect(parseRcmlTimestamp(input)).toBe(expected);
  });

  it('resolves the offset in force at that local time across a DST change', () => {
    // Europe/Athens switches to +03:00 at 2026-03-29 01:00Z (04:00 local).
    expect(parseRcmlTimestamp('Sun, 29 Mar 2026 02:59:59 Europe/Athens')).toBe('2026-03-29T00:59:59.000Z');
    expect(parseRcmlTimestamp('Sun, 29 Mar 2026 04:00:00 Europe/Athens')).toBe('2026-03-29T01:00:00.000Z');
  });

  it.each([
    [undefined],
    [null],
    [42],
    [''],
    ['null'],
    ['yesterday'],
    ['Mon, 05 Jan 2026 14:05:51 Mars/Olympus_Mons'],
    ['Mon, 05 Jan 2026 14:05:51'],
    ['Mon, 31 Feb 2026 14:05:51 UTC'],
    ['Mon, 05 Foo 2026 14:05:51 UTC'],
    ['Mon, 05 Jan 2026 25:05:51 UTC'],
    ['Mon, 05 Jan 2026 14:05:51 +2500'],
  ])('returns null for %j', (input) => {
    expect(parseRcmlTimestamp(input)).toBeNull();
  });
});
