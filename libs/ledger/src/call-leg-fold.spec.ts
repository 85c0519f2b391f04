import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { LedgerEvent } from './call-leg.js';
import { applyToCallLeg, foldCallLeg, type CallLegFold } from './call-leg-fold.js';
import { projectCallLeg } from './project-call-leg.js';
import { callScenarioArb, legInputsOf } from './testing/call-scenarios.js';

const EMPTY: CallLegFold = { own: new Map(), links: new Map(), events: [] };
/** A deep copy of the state between runs: nothing may depend on the identity of the objects it holds. */
const stored = (fold: CallLegFold): CallLegFold => structuredClone(fold);

const shiftIso = (iso: string | null, ms: number) => (iso === null ? null : new Date(Date.parse(iso) + ms).toISOString());

/**
 * A scenario made longer: copies of some of its events as later or earlier callbacks with ids and positions of
 * their own (a long call's repeated status callbacks, some arriving late), some with another SIP code, a missing
 * party or another provenance, plus a few exact re-deliveries (same id: the duplicate rule).
 */
const longCallArb = callScenarioArb.chain((s) =>
  fc
    .tuple(
      fc.array(
        fc.record({
          of: fc.nat({ max: s.events.length - 1 }),
          shiftSec: fc.integer({ min: -120, max: 600 }),
          sip: fc.option(fc.constantFrom(180, 183, 200, 486, 487, 603, 99999), { nil: undefined }),
          dropParty: fc.boolean(),
          verification: fc.option(fc.constantFrom('verified', 'imported', 'unverified') as fc.Arbitrary<LedgerEvent['verification']>, { nil: undefined }),
        }),
        { maxLength: 25 },
      ),
      fc.array(fc.nat({ max: s.events.length - 1 }), { maxLength: 2 }),
      fc.array(fc.double({ noNaN: true }), { minLength: s.events.length + 27, maxLength: s.events.length + 27 }),
      fc.array(fc.nat({ max: s.events.length + 26 }), { maxLength: 5 }),
    )
    .map(([copies, redelivered, keys, cuts]) => {
      let next = 2_000_000_000;
      const extra = copies.map(({ of, shiftSec, sip, dropParty, verification }, i): LedgerEvent => {
        const e = s.events[of]!;
        const ms = shiftSec * 1000;
        const data = sip === undefined ? e.data : ({ ...e.data, sipStatus: sip } as LedgerEvent['data']);
        return {
          ...e,
          data,
          eventId: `${e.eventId}-copy${i}`,
          position: String(next++),
          occurredAt: shiftIso(e.occurredAt, ms),
          sentAt: shiftIso(e.sentAt, ms),
          receivedAt: shiftIso(e.receivedAt, ms)!,
          party: dropParty ? null : e.party,
          ...(verification ? { verification } : {}),
        };
      });
      const again = redelivered.map((i) => ({ ...s.events[i]!, position: String(next++) }));
      const all = [...s.events, ...extra, ...again];
      const arrival = all.map((e, i) => ({ e, k: keys[i] ?? 0 })).sort((a, b) => a.k - b.k).map((x) => x.e);
      const bounds = [...new Set(cuts.map((c) => Math.min(c, arrival.length)))].sort((a, b) => a - b);
      const chunks: LedgerEvent[][] = [];
      let from = 0;
      for (const b of [...bounds, arrival.length]) {
        chunks.push(arrival.slice(from, b));
        from = b;
      }
      return chunks;
    }),
);

const key = (provider: string, callId: string) => `${provider}\u0000${callId}`;

/**
 * What the live projector does, run by run: each run's events are applied to each touched leg's stored state
 * (the leg's new events, the new links naming it, every machine detection of its parents so far), falling back
 * to a full fold of everything seen when the state cannot answer.
 */
const incremental = (chunks: LedgerEvent[][], check: (seen: LedgerEvent[], rows: Map<string, unknown>) => void, readAhead = false) => {
  // A full fold that reads ahead sees the leg's events of later runs too (committed, not yet in a batch).
  const ahead = readAhead ? new Map(legInputsOf(chunks.flat()).map((i) => [key(i.provider, i.callId), i])) : undefined;
  const folds = new Map<string, CallLegFold>();
  const rows = new Map<string, unknown>();
  const seen: LedgerEvent[] = [];
  let fallbacks = 0;
  for (const chunk of chunks) {
    seen.push(...chunk);
    const inputs = legInputsOf(seen);
    const mine = (e: LedgerEvent) => chunk.includes(e);
    for (const input of inputs) {
      const k = key(input.provider, input.callId);
      // The legs a run touches: its events' legs, the children they name, the children of a parent's AMD.
      if (!input.own.some(mine) && !input.related.some(mine)) continue;
      const applied = applyToCallLeg(stored(folds.get(k) ?? EMPTY), {
        provider: input.provider,
        callId: input.callId,
        own: input.own.filter(mine),
        related: input.related.filter((e) => mine(e) || e.type === 'MachineDetected'),
      });
      if (applied === null) fallbacks++;
      const result = applied ?? foldCallLeg(ahead?.get(k) ?? input);
      if (result.row === null) continue;
      folds.set(k, result.fold);
      rows.set(k, result.row);
    }
    check(seen, rows);
  }
  return fallbacks;
};

const full = (events: readonly LedgerEvent[]) =>
  new Map(
    legInputsOf(events).flatMap((input) => {
      const row = projectCallLeg(input);
      return row ? [[key(input.provider, input.callId), row] as const] : [];
    }),
  );

describe('applyToCallLeg (incremental fold) equals the full fold', () => {
  it('for any events, any arrival order and any split into runs, after every run', () => {
    let fallbacks = 0;
    let retained = 0;
    let total = 0;
    fc.assert(
      fc.property(longCallArb, (chunks) => {
        fallbacks += incremental(chunks, (seen, rows) => {
          expect(rows).toEqual(full(seen));
        });
        for (const input of legInputsOf(chunks.flat())) {
          retained += foldCallLeg(input).fold.events.length;
          total += input.own.length;
        }
      }),
      { numRuns: 400 },
    );
    // The generator exercises the duplicate rule, and the state holds fewer events than the legs have.
    expect(fallbacks).toBeGreaterThan(0);
    expect(retained).toBeLessThan(total);
  });

  it('when the full fold reads ahead (later runs then bring events folded already), after the last run', () => {
    fc.assert(
      fc.property(longCallArb, (chunks) => {
        let last: Map<string, unknown> = new Map();
        incremental(chunks, (_seen, rows) => (last = rows), true);
        expect(last).toEqual(full(chunks.flat()));
      }),
      { numRuns: 300 },
    );
  });

  it('holds a bounded state for a long call: repeated callbacks add ids, not events', () => {
    fc.assert(
      fc.property(callScenarioArb, fc.integer({ min: 50, max: 200 }), (s, n) => {
        const input = legInputsOf(s.events).find((i) => i.own.some((e) => e.type === 'CallRinging' || e.type === 'CallInitiated'));
        fc.pre(input !== undefined);
        const base = input!.own.find((e) => e.type === 'CallRinging' || e.type === 'CallInitiated')!;
        const callbacks = Array.from({ length: n }, (_, i): LedgerEvent => ({
          ...base,
          eventId: `cb-${i}`,
          position: String(3_000_000_000 + i),
          receivedAt: shiftIso(base.receivedAt, (i + 1) * 1000)!,
          sentAt: shiftIso(base.sentAt, (i + 1) * 1000),
          occurredAt: shiftIso(base.occurredAt, (i + 1) * 1000),
        }));
        const leg = input!;
        let fold = foldCallLeg(leg).fold;
        for (const cb of callbacks) fold = applyToCallLeg(stored(fold), { ...leg, own: [cb], related: leg.related.filter((e) => e.type === 'MachineDetected') })!.fold;
        expect(fold.own.size).toBe(new Set(leg.own.map((e) => e.eventId)).size + n);
        // The last callback holds the highest position; the others hold no role the scenario's events do not.
        expect(fold.events.length).toBeLessThanOrEqual(foldCallLeg(leg).fold.events.length + 1);
        const all = { ...leg, own: [...leg.own, ...callbacks] };
        const row = projectCallLeg(all);
        expect(applyToCallLeg(fold, { ...leg, own: [], related: leg.related.filter((e) => e.type === 'MachineDetected') })!.row).toEqual(row);
      }),
      { numRuns: 50 },
    );
  });

  it('refolds in full after an erasure or an event id folded at another position, and skips one folded already', () => {
    const [s] = fc.sample(callScenarioArb, { numRuns: 1, seed: 7 });
    const input = legInputsOf(s!.events).find((i) => i.own.length > 0)!;
    const { fold } = foldCallLeg(input);
    const erased = { ...input.own[0]!, type: 'PersonalDataErased', eventId: 'erase-1', position: '9999999999', data: { erasureId: 'x', positions: [], fields: 1 } } as LedgerEvent;
    expect(applyToCallLeg(fold, { ...input, own: [erased], related: [] })).toBeNull();
    expect(applyToCallLeg(fold, { ...input, own: [{ ...input.own[0]!, position: '9999999998' }], related: [] })).toBeNull();
    expect(applyToCallLeg(fold, { ...input, own: [], related: [] })!.row).toEqual(projectCallLeg(input));
    // The same event again (read ahead by a full fold, then in its own batch): nothing changes.
    expect(applyToCallLeg(fold, { ...input, own: [input.own[0]!], related: [] })).toEqual(foldCallLeg(input));
  });
});
