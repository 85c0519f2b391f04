import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addLeg, cellKey, cellOf, emptyMeasures, hourOf, rollupDelta, type RollupLeg, type RollupMeasures } from './leg-rollup.js';

const legArb: fc.Arbitrary<RollupLeg> = fc.record({
  provider: fc.constantFrom('freeclimb', 'jambonz', 'twilio', 'restcomm'),
  accountId: fc.option(fc.constantFrom('AC1', 'AC2'), { nil: null }),
  parentCallId: fc.option(fc.constant('P'), { nil: null }),
  direction: fc.option(fc.constantFrom('inbound', 'outbound-api', 'outbound-dial'), { nil: null }),
  status: fc.constantFrom('ringing', 'in-progress', 'completed', 'busy', 'no-answer', 'failed', 'canceled'),
  startedAt: fc.option(fc.integer({ min: 1.7e12, max: 1.71e12 }).map((t) => new Date(t).toISOString()), { nil: null }),
  talkDurationSec: fc.option(fc.double({ min: 0, max: 4000, noNaN: true }).map((x) => Math.round(x * 1000) / 1000), { nil: null }),
  ringDurationSec: fc.option(fc.double({ min: 0, max: 60, noNaN: true }).map((x) => Math.round(x * 1000) / 1000), { nil: null }),
  answeredBy: fc.constantFrom('human', 'machine', 'fax', null),
}) as fc.Arbitrary<RollupLeg>;

/** The rollups computed from scratch, as a rebuild does. */
const fromScratch = (legs: RollupLeg[]) => {
  const cells = new Map<string, RollupMeasures>();
  for (const leg of legs) addLeg(cells.get(cellKey(cellOf(leg))) ?? cells.set(cellKey(cellOf(leg)), emptyMeasures()).get(cellKey(cellOf(leg)))!, leg, 1);
  return cells;
};

describe('leg rollups', () => {
  it('truncates start times to the UTC hour', () => {
    expect(hourOf('2026-11-21T03:59:59.999Z')).toBe('2026-11-21T03:00:00.000Z');
    expect(hourOf(null)).toBeNull();
  });

  it('cuts a canonical time to its hour exactly as parsing and printing it does, and parses any other spelling', () => {
    const viaDate = (iso: string) => new Date(Math.floor(Date.parse(iso) / 3_600_000) * 3_600_000).toISOString();
    fc.assert(
      fc.property(fc.date({ min: new Date('0001-01-01T00:00:00.000Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), (d) => {
        const iso = d.toISOString();
        expect(hourOf(iso)).toBe(viaDate(iso));
        // Offsets and shorter spellings go through Date as before.
        const offset = iso.replace('Z', '+00:00');
        expect(hourOf(offset)).toBe(viaDate(offset));
      }),
    );
    expect(hourOf('2026-11-21T03:59:59+02:00')).toBe('2026-11-21T01:00:00.000Z');
  });

  it('applying the deltas of any sequence of leg revisions equals the rollups of the final legs', () => {
    fc.assert(
      fc.property(fc.array(fc.array(legArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }), (histories) => {
        // Each leg goes through its revisions in several projection batches; deltas are applied in turn.
        const live = new Map<string, RollupMeasures>();
        const maxRev = Math.max(...histories.map((h) => h.length));
        for (let rev = 0; rev < maxRev; rev++) {
          const changes = histories.filter((h) => rev < h.length).map((h) => ({ before: rev > 0 ? h[rev - 1]! : null, after: h[rev]! }));
          for (const { cell, delta } of rollupDelta(changes)) {
            const m = live.get(cellKey(cell)) ?? live.set(cellKey(cell), emptyMeasures()).get(cellKey(cell))!;
            m.legs += delta.legs; m.talkMs += delta.talkMs;
            m.ringMs += delta.ringMs; m.ringN += delta.ringN; m.machine += delta.machine;
            delta.talkHistogram.forEach((x, i) => (m.talkHistogram[i]! += x));
          }
        }
        for (const [k, m] of live) if (m.legs === 0) live.delete(k);
        expect(Object.fromEntries(live)).toEqual(Object.fromEntries(fromScratch(histories.map((h) => h.at(-1)!))));
      }),
    );
  });

  it('writes nothing when a leg is re-projected unchanged', () => {
    fc.assert(
      fc.property(legArb, (leg) => {
        expect(rollupDelta([{ before: leg, after: { ...leg } }])).toEqual([]);
      }),
    );
  });
});
