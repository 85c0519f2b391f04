import { stringify, type Options } from 'csv-stringify/sync';
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

/**
 * RFC 4180 by csv-stringify: CRLF record ends; a field with a comma, quote, CR or LF is quoted, quotes doubled;
 * so is a field with edge spaces, which a reader might trim. Text is neutralised first; booleans are written as
 * `true`/`false` (csv-stringify's default would be `1` and an empty cell).
 */
const CSV_OPTIONS: Options = {
  record_delimiter: 'windows',
  // csv-stringify quotes a CRLF, but not a lone CR or LF, which spreadsheets also take as a line end.
  quoted_match: /[\r\n]|^\s|\s$/,
  cast: { string: neutraliseFormula, boolean: (b) => String(b) },
};

type CsvValue = string | number | boolean | null;

export const csvLine = (fields: readonly CsvValue[]): string => stringify([fields as CsvValue[]], CSV_OPTIONS);

/** One field as it appears in a line (quoted when needed); a null is an empty field. */
export const csvField = (value: CsvValue): string => csvLine([value]).slice(0, -2);

export const callCsvHeader = (): string => csvLine(CALL_CSV_COLUMNS);

export const callCsvLine = (leg: CallLegDto): string =>
  csvLine([
    leg.provider, leg.accountId, leg.callId, leg.parentCallId, leg.rootCallId, leg.depth, leg.direction, leg.from, leg.to, leg.status,
    leg.startedAt, leg.answeredAt, leg.endedAt, leg.ringDurationSec, leg.talkDurationSec, leg.durationSource.ring, leg.durationSource.talk,
    leg.answeredBy, leg.endReason, leg.sipStatus, leg.recordings.map((r) => r.recordingId).join(';'), leg.recordings.map((r) => r.url).join(';'),
    leg.conferenceIds.join(';'), leg.final, leg.linkConflict, leg.eventCount, leg.lastPosition,
    leg.answeredByDetail, leg.hangupBy, leg.endReasonDetail, leg.timeSource.started, leg.timeSource.answered, leg.timeSource.ended, leg.pddSec, leg.verification,
  ]);
