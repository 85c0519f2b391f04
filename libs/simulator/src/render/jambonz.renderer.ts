/**
 * jambonz webhooks (docs/providers.md, "jambonz requests"): `JSON.stringify` of a snake-cased CallInfo (plus hook-specific keys), one
 * URL path per hook because no message type travels over HTTP (docs/providers.md, "jambonz quirks"). Delivery habits reproduced here:
 * status hooks are emitted without awaiting, so `ringing` can land after `in-progress` (docs/providers.md, "jambonz quirks"); retries repeat
 * body and signature byte for byte (docs/providers.md, "Signatures"); AMD hooks carry the parent's CallInfo (docs/providers.md, "jambonz quirks"); a simultaneous-ring
 * loser is reported `no-answer` with SIP 487 (docs/providers.md, "jambonz quirks").
 */
import { hookStateFacts, latency, withRetries, type Delivery, type Fact } from '../delivery.js';
import { Prng } from '../prng.js';
import type { SimCall, SimDial, SimLeg } from '../scenario.js';

const SIP_REASON: Record<number, string> = { 100: 'Trying', 180: 'Ringing', 183: 'Session Progress', 200: 'OK', 486: 'Busy Here', 487: 'Request Terminated', 503: 'Service Unavailable' };

export function renderJambonz(call: SimCall, seed: string): Delivery[] {
  const r = new Prng(seed, 'render', call.index);
  const byId = new Map(call.legs.map((l) => [l.callId, l]));
  const sip = new Map(call.legs.map((l) => [l.callId, { callId: `${r.hex(8)}-${r.hex(4)}-${r.hex(4)}-${r.hex(4)}-${r.hex(12)}`, sbc: `${r.hex(7)}-${r.hex(8)}-${r.hex(4)}-${r.hex(2)}` }]));
  const out: Delivery[] = [];

  const emit = (atSec: number, path: string, payload: Record<string, unknown>, facts: Fact[], extraDelayMs = 0): Delivery => {
    const sentAtMs = call.startMs + atSec * 1000;
    const d: Delivery = {
      provider: 'jambonz',
      callIndex: call.index,
      path,
      query: '',
      contentType: 'application/json',
      body: JSON.stringify(payload),
      sentAtMs,
      receivedAtMs: sentAtMs + latency(r, 400) + extraDelayMs,
      providerTimeMs: null,
      facts:
        path === '/status'
          ? facts
          : [...facts, ...hookStateFacts(payload.call_sid as string, payload.call_status as string, ['in-progress'], ['completed', 'busy', 'no-answer', 'failed'])],
      retry: false,
    };
    out.push(d);
    return d;
  };

  /** CallInfo.toJSON() key order (docs/providers.md, "jambonz requests"). */
  const callInfo = (leg: SimLeg, callStatus: string, sipStatus: number, extra: Record<string, unknown> = {}) => {
    const ids = sip.get(leg.callId)!;
    const child = leg.parentCallId !== null;
    return {
      call_sid: leg.callId,
      direction: leg.direction === 'inbound' ? 'inbound' : 'outbound',
      from: leg.from,
      to: leg.to,
      call_id: ids.callId,
      sbc_callid: ids.sbc,
      sip_status: sipStatus,
      sip_reason: SIP_REASON[sipStatus] ?? 'Unknown',
      call_status: callStatus,
      ...(leg.direction !== 'inbound' ? { caller_id: leg.from } : {}),
      account_sid: call.accountId,
      trace_id: call.extra.traceId,
      application_sid: call.extra.applicationSid,
      fs_sip_address: '10.0.12.7:5070',
      ...(child ? { parent_call_sid: leg.parentCallId } : {}),
      ...(leg.direction === 'inbound' ? { originating_sip_ip: '203.0.113.17', originating_sip_trunk_name: 'carrier-a' } : {}),
      ...extra,
    };
  };

  for (const leg of call.legs) {
    const answered = leg.answerSec !== null;
    if (!call.statusCallbacks) {
      // No call status hook configured: the inbound leg's call_hook (session:new) is all jambonz sends of its own,
      // then the action hooks, each with the leg's whole CallInfo (docs/providers.md, "jambonz requests"; docs/providers.md, "What is read from each webhook kind").
      if (leg.direction === 'inbound') {
        emit(leg.startSec, '/call-hook', { ...callInfo(leg, 'trying', 100), caller_name: leg.from.replace(/^\+/, ''), local_sip_address: '10.0.12.7:5060' }, [{ callId: leg.callId, kind: 'initiated' }]);
      }
      if (leg.gatherSec !== null) emit(leg.gatherSec, '/gather', callInfo(leg, 'in-progress', 200, { reason: 'dtmfDetected', digits: '1' }), []);
      continue;
    }
    emit(leg.startSec, '/status', callInfo(leg, 'trying', 100), [{ callId: leg.callId, kind: 'initiated' }]);
    let ringing: Delivery | null = null;
    if (leg.ringSec !== null && leg.direction !== 'inbound') {
      const early = r.chance(0.2);
      ringing = emit(leg.ringSec, '/status', callInfo(leg, early ? 'early-media' : 'ringing', early ? 183 : 180), []);
    }
    if (answered) {
      const inProgress = emit(leg.answerSec!, '/status', callInfo(leg, 'in-progress', 200), [{ callId: leg.callId, kind: 'answered' }]);
      // Out of order (docs/providers.md, "jambonz quirks"): the ringing hook overtakes nothing; it is overtaken by the answer.
      if (ringing && r.chance(0.3)) ringing.receivedAtMs = inProgress.receivedAtMs + r.int(50, 900);
      const terminatedBy = leg.direction === 'inbound' ? r.pick(['caller', 'jambonz']) : 'jambonz';
      emit(
        leg.endSec,
        '/status',
        callInfo(leg, 'completed', 200, { call_termination_by: terminatedBy, duration: leg.talkSec, ...(r.chance(0.3) ? { headers: { x_reason: 'normal clearing' } } : {}) }),
        [{ callId: leg.callId, kind: 'ended' }],
      );
    } else {
      // jambonz has no "canceled": a CANCEL ends the INVITE with 487 and the leg is reported no-answer (docs/providers.md, "jambonz quirks").
      const [status, code] = leg.outcome === 'busy' ? ['busy', 486] : leg.outcome === 'failed' ? ['failed', 503] : ['no-answer', 487];
      emit(leg.endSec, '/status', callInfo(leg, status, code), [{ callId: leg.callId, kind: 'ended' }]);
    }

    if (leg.amd) {
      // The AMD hook is performed on the parent session: the body is the parent's CallInfo (docs/providers.md, "jambonz quirks").
      const parent = byId.get(leg.parentCallId ?? leg.callId)!;
      const machine = leg.amd.result === 'machine';
      emit(
        leg.amd.atSec,
        '/amd',
        callInfo(parent, 'in-progress', 200, {
          type: machine ? 'amd_machine_detected' : 'amd_human_detected',
          reason: machine ? 'long greeting' : 'short greeting',
          greeting: machine ? 'hi you have reached the sales team please leave a message after the tone' : 'hello',
          language: 'en-US',
        }),
        [{ callId: leg.callId, kind: 'amd' }],
      );
    }

    if (leg.conference) {
      const { conferenceId, name, joinSec, leaveSec } = leg.conference;
      const hook = (atSec: number, event: string, members: number) => {
        const timeMs = call.startMs + atSec * 1000 + r.int(0, 999);
        emit(atSec, '/conference', {
          ...callInfo(leg, 'in-progress', 200),
          event,
          conference_sid: conferenceId,
          friendly_name: name,
          time: new Date(timeMs).toISOString(),
          members,
          duration: Math.round((atSec - joinSec) * 1000 + r.int(0, 999)) / 1000,
        }, []);
      };
      hook(joinSec, 'start', 0);
      hook(joinSec, 'join', 1);
      hook(leaveSec, 'leave', 0);
      hook(leaveSec, 'end', 0);
    }
  }

  for (const dial of call.dials) emitDialAction(dial);

  function emitDialAction(dial: SimDial): void {
    const parent = byId.get(dial.parentId)!;
    const named = dial.winnerId ? byId.get(dial.winnerId)! : dial.childIds.length === 1 ? byId.get(dial.childIds[0]!)! : null;
    let status = 'no-answer';
    let code = 487;
    if (named && named.answerSec !== null) [status, code] = ['completed', 200];
    else if (named && named.outcome === 'busy') [status, code] = ['busy', 486];
    else if (named && named.outcome === 'failed') [status, code] = ['failed', 503];
    emit(
      dial.endSec,
      '/dial-action',
      callInfo(parent, 'in-progress', 200, {
        dial_call_status: status,
        dial_sip_status: code,
        ...(named ? { dial_call_sid: named.callId, dial_sbc_callid: sip.get(named.callId)!.sbc } : {}),
      }),
      named ? [{ callId: named.callId, kind: 'dial-ended' }] : [],
    );
  }

  return withRetries(out, r, 0.06);
}
