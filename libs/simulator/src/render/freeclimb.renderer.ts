/**
 * FreeClimb webhooks (docs/providers.md, "FreeClimb requests"): compact JSON, camelCase keys, absent values as JSON null, `requestType`
 * discriminates. Which leg `callId` names depends on the webhook (docs/providers.md, "FreeClimb requests"): outDialStart names the parent and
 * announces the child in `dialCallId`; outDialConnect and callStatus name the child.
 */
import { hookStateFacts, latency, withRetries, type Delivery, type Fact } from '../delivery.js';
import { Prng } from '../prng.js';
import type { LegOutcome, SimCall, SimLeg } from '../scenario.js';

const STATUS: Record<LegOutcome, string> = { completed: 'completed', busy: 'busy', 'no-answer': 'noAnswer', failed: 'failed', canceled: 'canceled' };
/** Webhooks whose callStatus the translator already reads as the leg's status (the others are action hooks). */
const STATE_OWN = new Set(['inboundCall', 'outDialStart', 'outDialConnect', 'outDialApiConnect', 'callStatus']);
const ENDED_REASON: Record<LegOutcome, string> = { completed: 'farEndHangup', busy: 'busy', 'no-answer': 'noAnswer', failed: 'failed', canceled: 'callCanceled' };

export function renderFreeclimb(call: SimCall, seed: string): Delivery[] {
  const r = new Prng(seed, 'render', call.index);
  // The docs disagree on REST-created legs ("outbound" vs "outboundAPI", docs/providers.md, "FreeClimb requests"): real traffic may carry either.
  const apiDirection = r.pick(['outboundAPI', 'outbound']);
  const byId = new Map(call.legs.map((l) => [l.callId, l]));
  const direction = (leg: SimLeg): string => (leg.direction === 'inbound' ? 'inbound' : leg.direction === 'outbound-api' ? apiDirection : 'outboundDial');
  const out: Delivery[] = [];

  const emit = (atSec: number, path: string, fields: Record<string, unknown>, facts: Fact[]): void => {
    const sentAtMs = call.startMs + atSec * 1000;
    out.push({
      provider: 'freeclimb',
      callIndex: call.index,
      path,
      query: '',
      contentType: 'application/json',
      body: JSON.stringify(fields),
      sentAtMs,
      receivedAtMs: sentAtMs + latency(r),
      providerTimeMs: null,
      facts: STATE_OWN.has(fields.requestType as string)
        ? facts
        : [...facts, ...hookStateFacts(fields.callId as string, fields.callStatus as string, ['inProgress'], Object.values(STATUS))],
      retry: false,
    });
  };

  /** Common fields in FreeClimb's order; `extra` goes after them, as the SDK-generated bodies do. */
  const body = (requestType: string, leg: SimLeg, callStatus: string, extra: Record<string, unknown> = {}, conferenceId: string | null = null) => ({
    requestType,
    accountId: call.accountId,
    callId: leg.callId,
    parentCallId: leg.parentCallId,
    from: leg.from,
    to: leg.to,
    callStatus,
    direction: direction(leg),
    conferenceId,
    queueId: null,
    ...extra,
  });

  for (const leg of call.legs) {
    const parent = leg.parentCallId ? byId.get(leg.parentCallId)! : null;
    const answered = leg.answerSec !== null;
    if (leg.direction === 'inbound') {
      emit(leg.startSec, '/voice', body('inboundCall', leg, 'ringing'), [{ callId: leg.callId, kind: 'initiated' }]);
    } else if (leg.direction === 'outbound-api') {
      // REST Make-a-Call: the callConnectUrl reports the outcome of the attempt (docs/providers.md, "FreeClimb quirks"; docs/providers.md, "What is read from each webhook kind").
      const at = answered ? leg.answerSec! : leg.endSec;
      const status = answered ? 'inProgress' : STATUS[leg.outcome];
      const facts: Fact[] = [{ callId: leg.callId, kind: 'initiated' }, { callId: leg.callId, kind: answered ? 'answered' : 'ended' }];
      emit(at, '/api-connect', body('outDialApiConnect', leg, status, { dialCallStatus: status }), facts);
    } else {
      // OutDial: the parent hears about its child first (outDialStart on the parent's actionUrl), then the child.
      emit(
        leg.startSec,
        '/outdial-start',
        {
          requestType: 'outDialStart',
          accountId: call.accountId,
          callId: parent!.callId,
          dialCallId: leg.callId,
          parentCallId: parent!.parentCallId,
          from: parent!.from,
          to: parent!.to,
          callStatus: 'inProgress',
          direction: direction(parent!),
          conferenceId: null,
          queueId: null,
        },
        [{ callId: leg.callId, kind: 'initiated' }],
      );
      const at = answered ? leg.answerSec! : leg.endSec;
      const status = answered ? 'inProgress' : STATUS[leg.outcome];
      const facts: Fact[] = answered
        ? [{ callId: leg.callId, kind: 'answered' }]
        : [{ callId: leg.callId, kind: 'ended' }, { callId: leg.callId, kind: 'dial-ended' }];
      emit(at, '/outdial-connect', body('outDialConnect', leg, status, { dialCallStatus: status }), facts);
    }

    if (leg.amd && leg.amd.result === 'machine') {
      // FreeClimb only calls ifMachineUrl for a machine (or fax); a human answer produces no webhook (docs/providers.md, "FreeClimb quirks").
      emit(leg.amd.atSec, '/machine', body('machineDetected', leg, 'inProgress', { machineType: 'answering machine' }), [{ callId: leg.callId, kind: 'amd' }]);
    }

    if (leg.conference) {
      const { conferenceId, joinSec, leaveSec } = leg.conference;
      emit(joinSec, '/conference', body('createConference', leg, 'inProgress', { status: 'empty' }, conferenceId), []);
      emit(joinSec, '/conference', body('addToConferenceNotification', leg, 'inProgress', { status: 'populated' }, conferenceId), []);
      emit(leaveSec, '/conference', body('leaveConference', leg, 'inProgress', {}, conferenceId), []);
      emit(leaveSec, '/conference', body('conferenceStatus', leg, 'inProgress', { status: 'terminated', recordingId: null, recordingUrl: null, recordingDurationSec: null }, conferenceId), []);
    }

    for (const rec of leg.recordings) {
      if (rec.scope === 'utterance') {
        emit(
          rec.atSec,
          '/record',
          body('record', leg, 'inProgress', {
            recordingId: rec.recordingId,
            recordingUrl: rec.url,
            recordingSize: String(rec.durationSec! * 16_044),
            recordingFormat: 'audio/wav',
            recordingDurationSec: rec.durationSec,
            termReason: 'finishKey',
            privacyMode: false,
          }),
          [],
        );
      } else if (rec.scope === 'conference') {
        emit(
          rec.atSec + 1,
          '/conference',
          body('conferenceRecordingStatus', leg, 'inProgress', { status: 'empty', recordingId: rec.recordingId, recordingUrl: rec.url, recordingDurationSec: rec.durationSec }, leg.conference!.conferenceId),
          [],
        );
      }
    }

    if (leg.gatherSec !== null) {
      // GetDigits actionUrl: an action hook, whose callStatus alone tells an app without a status callback that the
      // caller was answered (FreeClimb openapi, common request fields).
      emit(leg.gatherSec, '/get-digits', body('getDigits', leg, 'inProgress', { digits: '1', reason: 'finishKey' }), []);
    }

    // No statusCallbackUrl on the application: the leg's end is never reported (action-hooks-only apps).
    if (!call.statusCallbacks) continue;
    const callRec = leg.recordings.find((x) => x.scope === 'call');
    emit(
      leg.endSec,
      '/status',
      body('callStatus', leg, STATUS[leg.outcome], {
        callEndedReason: ENDED_REASON[leg.outcome],
        // Typed as a string in the docs (docs/providers.md, "FreeClimb quirks").
        callDuration: String(leg.talkSec),
        ...(callRec ? { recordingId: callRec.recordingId, recordingUrl: callRec.url, recordingDurationSec: callRec.durationSec } : {}),
      }),
      [{ callId: leg.callId, kind: 'ended' }],
    );
  }
  // FreeClimb's retry policy is undocumented (docs/providers.md, "FreeClimb quirks"); a rare duplicate keeps the ledger's dedupe honest.
  return withRetries(out, r, 0.02);
}
