import { lookupTable } from '@lib/ledger';
const MONTHS = lookupTable<number>({
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
});

// RFC 2822 obsolete zone names; Intl knows EST/MST/HST as IANA links but not the daylight ones.
const NAMED_OFFSETS_MIN = lookupTable<number>({
  UT: 0, UTC: 0, GMT: 0, Z: 0,
  EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420,
});

// `EEE, dd MMM YYYY HH:mm:ss <zone>`; the weekday is optional in RFC 2822 and not checked (it carries no information).
// Fractional seconds are accepted: some Twilio-compatible platforms print milliseconds there.
const RFC2822_LIKE = /^(?:[A-Za-z]{3},?\s+)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s+(\S+)$/;
const NUMERIC_OFFSET = /^([+-])(\d{2}):?(\d{2})$/;
// ISO 8601 as Twilio-compatible platforms send it: `T` or a space between date and time (SQL style), fractional
// seconds, `Z`, a numeric offset or ` UTC`; without any zone the time is UTC (every such platform stamps in UTC).
const ISO_8601_LIKE = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$/i;

const formatters = new Map<string, Intl.DateTimeFormat>();

const zoneFormatter = (zone: string): Intl.DateTimeFormat | null => {
  let f = formatters.get(zone);
  if (f) return f;
  try {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    return null; // RangeError: not a zone this runtime knows
  }
  formatters.set(zone, f);
  return f;
};

/** Offset of `zone` from UTC at `instantMs`, in ms (wall clock minus UTC). */
const zoneOffsetMs = (f: Intl.DateTimeFormat, instantMs: number): number => {
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(new Date(instantMs))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour! % 24, parts.minute!, parts.second!);
  return wall - Math.floor(instantMs / 1000) * 1000;
};

/**
 * Wall-clock time in an IANA zone -> UTC ms. Two passes because the offset depends on the instant we are
 * solving for; in a DST gap or overlap this lands on one of the two plausible instants, which is good enough
 * for an event time that only orders events.
 */
const wallTimeInZoneToUtc = (wallMs: number, f: Intl.DateTimeFormat): number => {
  const first = zoneOffsetMs(f, wallMs);
  const guess = wallMs - first;
  const second = zoneOffsetMs(f, guess);
  return second === first ? guess : wallMs - second;
};

const offsetMinutes = (token: string): number | null => {
  const named = NAMED_OFFSETS_MIN[token.toUpperCase()];
  if (named !== undefined) return named;
  const m = NUMERIC_OFFSET.exec(token);
  if (!m) return null;
  const hours = Number(m[2]);
  const minutes = Number(m[3]);
  if (hours > 23 || minutes > 59) return null;
  return (m[1] === '-' ? -1 : 1) * (hours * 60 + minutes);
};

/**
 * Restcomm / Twilio `Timestamp` -> ISO-8601 UTC, or null. Twilio sends RFC 2822 (`... +0000`); Restcomm formats
 * with Joda `ZZZZ`, which prints a zone *id* (`UTC`, `Europe/Athens`) instead (docs/providers.md, "Restcomm and Twilio requests"). ISO-8601
 * (`CallTimestamp` style) is accepted too. Never throws: a bad timestamp must not cost the event.
 */
export const parseRcmlTimestamp = (value: unknown): string | null => {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (text === '' || text === 'null') return null;

  const iso = ISO_8601_LIKE.exec(text);
  if (iso) {
    const [, date, time, zoneToken] = iso;
    // Date.parse accepts at most milliseconds; finer digits are cut, never rounded into the next second.
    const hms = time!.replace(/(\.\d{3})\d+$/, '$1');
    const zone = !zoneToken || /^(z|utc|gmt)$/i.test(zoneToken) ? 'Z' : zoneToken.length === 3 ? `${zoneToken}:00` : zoneToken.includes(':') ? zoneToken : `${zoneToken.slice(0, 3)}:${zoneToken.slice(3)}`;
    const ms = Date.parse(`${date}T${hms}${zone}`);
    if (!Number.isFinite(ms)) return null;
    const out = new Date(ms);
    // Date.parse rolls 2026-02-31 over into March on some engines; a date that does not exist is unparseable.
    return out.toISOString().slice(0, 10) === date || zone !== 'Z' ? out.toISOString() : null;
  }

  const m = RFC2822_LIKE.exec(text);
  if (!m) return null;
  const day = Number(m[1]);
  const month = MONTHS[m[2]!.toLowerCase()];
  const year = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  const zone = m[8]!;
  if (month === undefined || hour > 23 || minute > 59 || second > 59) return null;

  const wallMs = Date.UTC(year, month, day, hour, minute, second, millis);
  const check = new Date(wallMs);
  // Date.UTC rolls 31 Feb over into March; a date that does not exist is unparseable, not "close enough".
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month || check.getUTCFullYear() !== year) return null;

  const fixed = offsetMinutes(zone);
  let utcMs: number;
  if (fixed !== null) {
    utcMs = wallMs - fixed * 60_000;
  } else {
    const f = zoneFormatter(zone);
    if (!f) return null;
    utcMs = wallTimeInZoneToUtc(wallMs, f);
  }
  return Number.isFinite(utcMs) ? new Date(utcMs).toISOString() : null;
};
