import { describe, expect, it } from 'vitest';
import { buildCallTree } from '@lib/ledger';
import { toCallLegDto, toCallTreeDto, type StoredLeg } from './call-leg.mapper.js';

const leg = (callId: string, parentCallId: string | null, startedAt: string | null, extra: Partial<StoredLeg> = {}): StoredLeg => ({
  provider: 'jambonz', accountId: 'acc', callId, parentCallId, direction: parentCallId ? 'outbound-dial' : 'inbound', from: '+1', to: '+2',
  status: 'completed', startedAt, answeredAt: null, endedAt: null, ringDurationSec: 3, talkDurationSec: 60, ringDurationSource: 'derived',
  talkDurationSource: 'provider', answeredBy: null, endReason: null, sipStatus: null, conferenceIds: [], recordings: [], final: true,
  eventCount: 2, lastPosition: '9', linkConflict: false, invalidFields: [], parkedEvents: 0, verification: 'verified', answeredByDetail: null, hangupBy: null, endReasonDetail: null, startedAtSource: null, answeredAtSource: null, endedAtSource: null, pddSec: null, rootCallId: 'root', depth: parentCallId ? 1 : 0, ...extra,
});

describe('call-leg DTOs', () => {
  it('exposes both duration sources as one object, and recordings with their provider and root', () => {
    const dto = toCallLegDto(leg('a', 'root', null, { recordings: [{ recordingId: 'r1', url: 'u', durationSec: 5, scope: 'dial', callId: 'a', createdAt: '2026-01-01T00:00:00.000Z' }] }));
    expect(dto.durationSource).toEqual({ ring: 'derived', talk: 'provider' });
    expect(dto).not.toHaveProperty('ringDurationSource');
    expect(dto.recordings).toEqual([{ recordingId: 'r1', callId: 'a', rootCallId: 'root', provider: 'jambonz', url: 'u', durationSec: 5, scope: 'dial', createdAt: '2026-01-01T00:00:00.000Z' }]);
  });

  it('nests a tree from its root, children by start time with unknown starts last, whatever the input order', () => {
    const legs = [
      leg('c', 'root', null),
      leg('b', 'root', '2026-01-01T00:00:02.000Z'),
      leg('a2', 'a', '2026-01-01T00:00:05.000Z'),
      leg('root', null, '2026-01-01T00:00:00.000Z'),
      leg('a', 'root', '2026-01-01T00:00:01.000Z'),
    ];
    const shape = (n: ReturnType<typeof toCallTreeDto>): unknown => [n.callId, n.depth, n.children.map(shape)];
    for (const input of [legs, [...legs].reverse()]) {
      expect(shape(toCallTreeDto(buildCallTree(input)))).toEqual(['root', 0, [['a', 1, [['a2', 2, []]]], ['b', 1, []], ['c', 1, []]]]);
    }
  });
});
