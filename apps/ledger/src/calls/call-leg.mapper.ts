import type { LegIntentDto } from './intent.dto.js';
import type { CallLegRow, CallTreeNode } from '@lib/ledger';
import type { CallLegDto, CallTreeDto, RecordingDto } from './calls.dto.js';

/** A read-model row as the repository returns it: the domain row plus its place in the tree. */
export type StoredLeg = CallLegRow & { rootCallId: string; depth: number; parkedEvents?: number };

export const toCallLegDto = (leg: StoredLeg): CallLegDto => ({
  provider: leg.provider,
  accountId: leg.accountId,
  callId: leg.callId,
  parentCallId: leg.parentCallId,
  rootCallId: leg.rootCallId,
  depth: leg.depth,
  direction: leg.direction,
  from: leg.from,
  to: leg.to,
  status: leg.status,
  startedAt: leg.startedAt,
  answeredAt: leg.answeredAt,
  endedAt: leg.endedAt,
  ringDurationSec: leg.ringDurationSec,
  talkDurationSec: leg.talkDurationSec,
  durationSource: { ring: leg.ringDurationSource, talk: leg.talkDurationSource },
  answeredBy: leg.answeredBy,
  endReason: leg.endReason,
  sipStatus: leg.sipStatus,
  recordings: leg.recordings.map(
    (r): RecordingDto => ({
      recordingId: r.recordingId,
      callId: r.callId,
      rootCallId: leg.rootCallId,
      provider: leg.provider,
      url: r.url,
      durationSec: r.durationSec,
      scope: r.scope,
      createdAt: r.createdAt,
    }),
  ),
  conferenceIds: leg.conferenceIds,
  final: leg.final,
  linkConflict: leg.linkConflict,
  verification: leg.verification,
  eventCount: leg.eventCount,
  lastPosition: leg.lastPosition,
  invalidFields: leg.invalidFields,
  parkedEvents: leg.parkedEvents ?? 0,
  answeredByDetail: leg.answeredByDetail,
  hangupBy: leg.hangupBy,
  endReasonDetail: leg.endReasonDetail,
  timeSource: { started: leg.startedAtSource, answered: leg.answeredAtSource, ended: leg.endedAtSource },
  pddSec: leg.pddSec,
});

/** buildCallTree's nodes (children already ordered by start time) as the API shape, recursively. */
// buildCallTree copies each row, so the repository's parkedEvents rides along on the nodes.
// Object.assign onto the new DTO rather than a spread into another literal: see toStoredLeg (calls.repository.ts).
export const toCallTreeDto = (node: CallTreeNode & { parkedEvents?: number }, intentOf: (callId: string) => LegIntentDto = () => null): CallTreeDto =>
  Object.assign(toCallLegDto(node), {
    intent: intentOf(node.callId),
    children: node.children.map((c) => toCallTreeDto(c, intentOf)),
  });
