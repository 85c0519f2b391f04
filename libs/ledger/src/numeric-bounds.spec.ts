import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { CallEventDataMap, CallEventType } from './call-leg.events.js';
import { newEvent } from './call-leg.events.js';
import type { LedgerEvent } from './call-leg.js';
import { boundEventNumbers, MAX_DURATION_SEC, NUMERIC_FIELDS } from './numeric-bounds.js';
import { projectCallLeg } from './project-call-leg.js';

const T0 = Date.UTC(2024, 0, 1, 12, 0, 0);
const at = (sec: number) => new Date(T0 + sec * 1000).toISOString();
let counter = 0;
const ev = <K extends CallEventType>(type: K, legId: string, data: CallEventDataMap[K], t = 0, extra: Partial<LedgerEvent> = {}): LedgerEvent => {
  counter += 1;
  return {
    position: String(counter), eventId: `ev-${counter}`, type, data, provider: 'jambonz', legId, accountId: 'AC1', parentLegId: null,
    party: null, providerSeq: null, occurredAt: null, sentAt: at(t), receivedAt: at(t), ...extra,
  } as LedgerEvent;
};

describe('boundEventNumbers (applied to every translated event before it is stored)', () => {
  it('keeps valid numbers and returns the event untouched', () => {
    const e = newEvent('CallCompleted', 'A', { outcome: 'completed', durationSec: 74.5, sipStatus: 200 });
    expect(boundEventNumbers(e)).toBe(e);
  });

  it('drops a fraction, a negative, an out-of-range or a huge number and lists it in data.invalidFields', () => {
    const e = newEvent('DialCompleted', 'P', { childLegId: 'C', outcome: 'completed', durationSec: 1e20, ringDurationSec: -3, sipStatus: 486.5 });
    const out = boundEventNumbers(e);
    expect(out.data).toEqual({
      childLegId: 'C',
      outcome: 'completed',
      invalidFields: [
        { field: 'durationSec', value: '100000000000000000000', reason: `above ${MAX_DURATION_SEC} s` },
        { field: 'ringDurationSec', value: '-3', reason: 'negative' },
        { field: 'sipStatus', value: '486.5', reason: 'not an integer' },
      ],
    });
    const big = boundEventNumbers(newEvent('CallAnswered', 'A', { sipStatus: 2 ** 40 }, { providerSeq: 1e300 }));
    expect(big.providerSeq).toBeNull();
    expect((big.data as { invalidFields: { field: string }[] }).invalidFields.map((f) => f.field)).toEqual(['sipStatus', 'providerSeq']);
  });

  it('truncates the value text', () => {
    const out = boundEventNumbers(newEvent('CallAnswered', 'A', { sipStatus: '9'.repeat(500) as unknown as number }));
    const [f] = (out.data as unknown as { invalidFields: { value: string; reason: string }[] }).invalidFields;
    expect(f!.value.length).toBeLessThanOrEqual(65);
    expect(f!.reason).toBe('not a number');
  });

  it('property: whatever number lands in any numeric field, what is left in the data is within its bounds', () => {
    // eslint-disable-next-line no-loss-of-precision -- a literal past 2^53 is one of the inputs under test
    const anyNumber = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -Infinity, 1e400, 2 ** 31, 2 ** 63, -0, 0.5, 99999999999999999999));
    const typed = fc.constantFrom(...(Object.keys(NUMERIC_FIELDS) as CallEventType[]));
    fc.assert(
      fc.property(typed, fc.dictionary(fc.constantFrom('sipStatus', 'durationSec', 'ringDurationSec', 'members', 'confidence', 'queueTimeSec'), anyNumber), (type, numbers) => {
        const out = boundEventNumbers(newEvent(type, 'A', { ...numbers } as never));
        const data = out.data as unknown as Record<string, unknown>;
        for (const [field, schema] of Object.entries(NUMERIC_FIELDS[type]!)) {
          if (data[field] !== undefined) expect(schema.safeParse(data[field]).success).toBe(true);
        }
        const listed = (data.invalidFields as { field: string }[] | undefined) ?? [];
        for (const f of listed) expect(numbers).toHaveProperty(f.field);
      }),
    );
  });
});

describe('projectCallLeg bounds numbers of events stored before the check existed', () => {
  it('does not project an out-of-range SIP status or duration, and reports each on the leg', () => {
    const own = [
      ev('CallInitiated', 'A', { direction: 'inbound', from: '+1', to: '+2' }, 0),
      ev('CallAnswered', 'A', { sipStatus: 200 }, 2),
      ev('CallCompleted', 'A', { outcome: 'completed', durationSec: 1e20, sipStatus: 1e10 }, 30),
      ev('RecordingAvailable', 'A', { url: 'https://x/r', scope: 'call', durationSec: -5 }, 31),
    ];
    const row = projectCallLeg({ provider: 'jambonz', callId: 'A', own, related: [] })!;
    expect(row).toMatchObject({ status: 'completed', sipStatus: 200, talkDurationSec: 28, talkDurationSource: 'derived' });
    expect(row.recordings[0]!.durationSec).toBeNull();
    expect(row.invalidFields).toEqual([
      { position: own[2]!.position, type: 'CallCompleted', field: 'durationSec', value: '100000000000000000000', reason: `above ${MAX_DURATION_SEC} s` },
      { position: own[2]!.position, type: 'CallCompleted', field: 'sipStatus', value: '10000000000', reason: 'above 699' },
      { position: own[3]!.position, type: 'RecordingAvailable', field: 'durationSec', value: '-5', reason: 'negative' },
    ]);
  });

  it('lists what ingest recorded (data.invalidFields) and bounds the parent dial result naming the leg', () => {
    const own = [
      ev('CallInitiated', 'C', { direction: 'outbound-dial', from: '+1', to: '+2' }, 0, { parentLegId: 'P' }),
      ev('CallCompleted', 'C', { outcome: 'busy', invalidFields: [{ field: 'sipStatus', value: '486.5', reason: 'not an integer' }] } as never, 5, { parentLegId: 'P' }),
    ];
    const dial = ev('DialCompleted', 'P', { childLegId: 'C', outcome: 'busy', ringDurationSec: 'x' as unknown as number }, 6);
    const row = projectCallLeg({ provider: 'jambonz', callId: 'C', own, related: [dial] })!;
    expect(row.ringDurationSource).toBe('derived');
    expect(row.invalidFields.map((f) => [f.type, f.field, f.reason])).toEqual([
      ['CallCompleted', 'sipStatus', 'not an integer'],
      ['DialCompleted', 'ringDurationSec', 'not a number'],
    ]);
  });

  it('a duration derived from event times years apart is reported, not projected', () => {
    const own = [
      ev('CallAnswered', 'A', {}, 0),
      ev('CallCompleted', 'A', { outcome: 'completed' }, 0, { occurredAt: '2200-01-01T00:00:00.000Z' }),
    ];
    const row = projectCallLeg({ provider: 'jambonz', callId: 'A', own, related: [] })!;
    expect(row).toMatchObject({ talkDurationSec: null, talkDurationSource: null });
    expect(row.invalidFields).toEqual([expect.objectContaining({ position: null, field: 'talkDurationSec' })]);
  });
});
