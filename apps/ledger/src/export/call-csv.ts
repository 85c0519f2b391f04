import type { CallLegDto } from '../calls/calls.dto.js';

/** Column order of the CSV export; lists are joined with `;` inside one field. */
export const CALL_CSV_COLUMNS = [
  'provider', 'accountId', 'callId', 'parentCallId', 'rootCallId', 'depth', 'direction', 'from', 'to', 'status', 'startedAt',
  'answeredAt', 'endedAt', 'ringDurationSec', 'talkDurationSec', 'ringDurationSource', 'talkDurationSource', 'answeredBy',
  'endReason', 'sipStatus', 'recordingIds', 'recordingUrls', 'conferenceIds', 'final', 'linkConflict', 'eventCount', 'lastPosition',
  'answeredByDetail', 'hangupBy', 'endReasonDetail', 'startedAtSource', 'answeredAtSource', 'endedAtSource', 'pddSec',
  'verification',
] as const;

/** A whole cell that is an E.164 number: kept as is, so that exported numbers stay readable. */
const E164 = /^\+[0-9]{6,15}$/;
/** What a spreadsheet takes as the start of a formula (OWASP CSV injection), tab and CR included. */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * Text that a spreadsheet would run as a formula gets a leading `'` (OWASP's advice): caller numbers, names and
 * provider fields are attacker-controlled. Numbers and booleans are written as they are, and so is a cell that is
 * entirely an E.164 phone number (`+13125550100`), which no spreadsheet evaluates as a formula.
 */
export const neutraliseFormula = (s: string): string => (FORMULA_START.test(s) && !E164.test(s) ? `'${s}` : s);

/** RFC 4180: a field with a comma, quote, CR or LF (or edge spaces a reader might trim) is quoted, quotes doubled. */
export const csvField = (value: string | number | boolean | null): string => {
  if (value === null) return '';
  const s = typeof value === 'string' ? neutraliseFormula(value) : String(value);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export const csvLine = (fields: readonly (string | number | boolean | null)[]): string => `${fields.map(csvField).join(',')}\r\n`;

export const callCsvHeader = (): string => csvLine(CALL_CSV_COLUMNS);

export const callCsvLine = (leg: CallLegDto): string =>
  csvLine([
    leg.provider, leg.accountId, leg.callId, leg.parentCallId, leg.rootCallId, leg.depth, leg.direction, leg.from, leg.to, leg.status,
    leg.startedAt, leg.answeredAt, leg.endedAt, leg.ringDurationSec, leg.talkDurationSec, leg.durationSource.ring, leg.durationSource.talk,
    leg.answeredBy, leg.endReason, leg.sipStatus, leg.recordings.map((r) => r.recordingId).join(';'), leg.recordings.map((r) => r.url).join(';'),
    leg.conferenceIds.join(';'), leg.final, leg.linkConflict, leg.eventCount, leg.lastPosition,
    leg.answeredByDetail, leg.hangupBy, leg.endReasonDetail, leg.timeSource.started, leg.timeSource.answered, leg.timeSource.ended, leg.pddSec, leg.verification,
  ]);
