/**
 * Restcomm-Connect and Twilio form webhooks (docs/providers.md, "Restcomm and Twilio requests"), two dialects of one shape:
 * - Restcomm: null parameters as a bare key (`&ForwardedFrom&`), literal "null" strings, call SIDs
 *   `ID<32>-CA<32>`, call-progress `SequenceNumber` fixed per state (initiated 0, ringing 1, answered 2,
 *   completed 3), `CallStatus=answered`, unanswered legs ending `completed` with `CallDuration=0`, `Timestamp`
 *   with a Joda zone id, `From` of a dialled leg as the SIP user part (docs/providers.md, "Restcomm and Twilio quirks").
 * - Twilio: nulls omitted, `SequenceNumber` counting callbacks sent, `in-progress`, the real final status
 *   (busy/no-answer/failed/canceled), RFC 2822 `Timestamp`.
 * Which callback families are used: A (voice request), B (number status, Restcomm inbound), C (call progress),
 * D (Dial action), E (Record action) and Twilio's recording status callback.
 */
import { hookStateFacts, latency, type Delivery, type Fact } from '../delivery.js';
import { Prng } from '../prng.js';
import type { SimCall, SimDial, SimLeg, SimRecording } from '../scenario.js';

type Dialect = 'twilio' | 'restcomm';
type Params = Array<[string, string | null]>;

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number): string => String(n).padStart(2, '0');

const zoneParts = (ms: number, zone: string): { y: number; mo: number; d: number; h: number; mi: number; s: number; wd: number } => {
  const f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', weekday: 'short' });
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(new Date(ms))) p[part.type] = part.value;
  return { y: Number(p.year), mo: Number(p.month) - 1, d: Number(p.day), h: Number(p.hour) % 24, mi: Number(p.minute), s: Number(p.second), wd: DAYS.indexOf(p.weekday!) };
};

/** Joda `EEE, dd MMM YYYY HH:mm:ss ZZZZ`: wall time in the JVM zone followed by the zone *id* (docs/providers.md, "Restcomm and Twilio requests"). */
export const restcommTimestamp = (ms: number, zone: string): string => {
  const t = zoneParts(ms, zone);
  return `${DAYS[t.wd]}, ${pad(t.d)} ${MONTHS[t.mo]} ${t.y} ${pad(t.h)}:${pad(t.mi)}:${pad(t.s)} ${zone}`;
};

/** RFC 2822 in UTC, as Twilio sends it. */
export const twilioTimestamp = (ms: number): string => {
  const d = new Date(ms);
  return `${DAYS[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
};

/** Apache HttpClient form encoding (URLEncodedUtils.format): unreserved `-_.*` and alphanumerics kept, space as '+'. */
const httpClientEncode = (value: string): string =>
  [...Buffer.from(value, 'utf8')]
    .map((b) =>
      (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f || b === 0x2e || b === 0x2a
        ? String.fromCharCode(b)
        : b === 0x20
          ? '+'
          : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');

/** Restcomm: a null value is a bare name without '=' (docs/providers.md, "Restcomm and Twilio requests"). Twilio: nulls are left out. */
export const encodeForm = (params: Params, dialect: Dialect): string =>
  params
    .filter(([, v]) => dialect === 'restcomm' || v !== null)
    .map(([k, v]) => (v === null ? httpClientEncode(k) : `${httpClientEncode(k)}=${httpClientEncode(v)}`))
    .join('&');

/** Callbacks that carry the calling leg's own CallStatus besides their verb's result (docs/providers.md, "What is read from each webhook kind"). */
const ACTION_PATHS = new Set(['/dial-action', '/record-action', '/gather-action', '/enqueue-action']);

const RESTCOMM_ZONES = ['UTC', 'UTC', 'Europe/Athens', 'America/New_York'];

/** Restcomm's call-progress `From`/`To` of a dialled leg are SIP user parts, not E.164 (docs/providers.md, "Restcomm and Twilio quirks"). */
const userPart = (n: string): string => n.replace(/^\+/, '');

export function renderRcml(call: SimCall, seed: string): Delivery[] {
  const dialect = call.provider as Dialect;
  const r = new Prng(seed, 'render', call.index);
  const zone = new Prng(call.accountId, 'zone').pick(RESTCOMM_ZONES);
  const byId = new Map(call.legs.map((l) => [l.callId, l]));
  const seq = new Map<string, number>();
  const out: Delivery[] = [];
  const restcomm = dialect === 'restcomm';
  const contentType = restcomm ? 'application/x-www-form-urlencoded; charset=UTF-8' : 'application/x-www-form-urlencoded';

  const emit = (atSec: number, path: string, params: Params, facts0: Fact[], stamped: boolean): void => {
    const sentAtMs = call.startMs + atSec * 1000;
    const value = (name: string) => params.find(([k]) => k === name)?.[1] ?? undefined;
    const callSid = value('CallSid');
    // Action callbacks (Dial, Record) carry the leg's own CallStatus (docs/providers.md, "What is read from each webhook kind").
    let facts = ACTION_PATHS.has(path) ? [...facts0, ...hookStateFacts(callSid, value('CallStatus'), ['in-progress'], ['completed', 'busy', 'no-answer', 'failed', 'canceled'])] : facts0;
    // Restcomm's CallTimestamp dates the leg's creation (RC-vi parameters()): its CallInitiated carries that time.
    const created = value('CallTimestamp');
    if (created && callSid) facts = [...facts.filter((f) => !(f.kind === 'initiated' && f.callId === callSid)), { callId: callSid, kind: 'initiated', atMs: Date.parse(created) }];
    out.push({
      provider: call.provider,
      callIndex: call.index,
      path,
      query: '',
      contentType,
      body: encodeForm(params, dialect),
      sentAtMs,
      receivedAtMs: sentAtMs + latency(r),
      providerTimeMs: stamped ? sentAtMs : null,
      facts,
      retry: false,
    });
  };

  const createdMs = (leg: SimLeg): number => call.startMs + leg.startSec * 1000 + 118;

  /** Voice-request parameters (docs/providers.md, "What is read from each webhook kind"): families A, B, D and E share them. */
  const voiceParams = (leg: SimLeg, callStatus: string, outbound?: string): Params =>
    restcomm
      ? [
          ['CallSid', leg.callId],
          ['InstanceId', call.extra.instanceId!],
          ...(outbound ? ([['OutboundCallSid', outbound]] as Params) : []),
          ['AccountSid', call.accountId],
          ['From', leg.from],
          ['To', leg.to],
          ['CallStatus', callStatus],
          ['ApiVersion', '2012-04-24'],
          ['Direction', leg.direction],
          ['CallerName', 'null'],
          ['ForwardedFrom', 'null'],
          ['CallTimestamp', new Date(createdMs(leg)).toISOString()],
        ]
      : [
          ['AccountSid', call.accountId],
          ['ApiVersion', '2010-04-01'],
          ['CallSid', leg.callId],
          ['CallStatus', callStatus],
          ['Called', leg.to],
          ['Caller', leg.from],
          ['Direction', leg.direction],
          ['From', leg.from],
          ...(leg.parentCallId ? ([['ParentCallSid', leg.parentCallId]] as Params) : []),
          ['To', leg.to],
        ];

  /** Call-progress status callback (family C, docs/providers.md, "Restcomm and Twilio quirks"). */
  const progress = (leg: SimLeg, atSec: number, state: 'initiated' | 'ringing' | 'answered' | 'completed', facts: Fact[], extra: Params = []): void => {
    const dialled = leg.direction === 'outbound-dial';
    const next = seq.get(leg.callId) ?? 0;
    seq.set(leg.callId, next + 1);
    const fixed = { initiated: 0, ringing: 1, answered: 2, completed: 3 }[state];
    let status: string = state;
    if (!restcomm) {
      if (state === 'answered') status = 'in-progress';
      else if (state === 'completed' && leg.answerSec === null) status = leg.outcome;
    }
    const params: Params = restcomm
      ? [
          ['InstanceId', call.extra.instanceId!],
          ['AccountSid', call.accountId],
          ['CallSid', leg.callId],
          ['From', dialled ? userPart(leg.from) : leg.from],
          ['To', dialled ? userPart(leg.to) : leg.to],
          ['Direction', leg.direction],
          ['CallerName', userPart(leg.from)],
          ['ForwardedFrom', null],
          ['ParentCallSid', leg.parentCallId],
          ['CallStatus', status],
          ...extra,
          ['Timestamp', restcommTimestamp(call.startMs + atSec * 1000, zone)],
          ['CallbackSource', 'call-progress-events'],
          ['SequenceNumber', String(fixed)],
        ]
      : [
          ['AccountSid', call.accountId],
          ['ApiVersion', '2010-04-01'],
          ['CallSid', leg.callId],
          ['CallStatus', status],
          ['CallbackSource', 'call-progress-events'],
          ['Called', leg.to],
          ['Caller', leg.from],
          ['Direction', leg.direction],
          ['From', leg.from],
          ...(leg.parentCallId ? ([['ParentCallSid', leg.parentCallId]] as Params) : []),
          ['SequenceNumber', String(next)],
          ['Timestamp', twilioTimestamp(call.startMs + atSec * 1000)],
          ['To', leg.to],
          ...extra,
        ];
    emit(atSec, '/status', params, facts, true);
  };

  for (const leg of call.legs) {
    const answered = leg.answerSec !== null;
    const callRec = leg.recordings.find((x) => x.scope === 'call');
    if (!call.statusCallbacks) {
      // No StatusCallback on the number or the <Dial>: the voice request, then only action callbacks.
      if (leg.direction === 'inbound') emit(leg.startSec, '/voice', voiceParams(leg, 'ringing'), [{ callId: leg.callId, kind: 'initiated' }], false);
      if (leg.gatherSec !== null) emit(leg.gatherSec, '/gather-action', [...voiceParams(leg, 'in-progress'), ['Digits', '1'], ...(restcomm ? [] : ([['FinishedOnKey', '']] as Params))], [], false);
      continue;
    }
    if (leg.direction === 'inbound') {
      emit(leg.startSec, '/voice', voiceParams(leg, 'ringing'), [{ callId: leg.callId, kind: 'initiated' }], false);
      if (restcomm) {
        // Number status callback (family B): voice parameters, no Timestamp, each state once (docs/providers.md, "Restcomm and Twilio quirks").
        emit(leg.answerSec!, '/status', voiceParams(leg, 'in-progress'), [{ callId: leg.callId, kind: 'initiated' }, { callId: leg.callId, kind: 'answered' }], false);
        emit(leg.endSec, '/status', [...voiceParams(leg, 'completed'), ['CallDuration', String(leg.talkSec)]], [{ callId: leg.callId, kind: 'ended' }], false);
      } else {
        progress(leg, leg.startSec, 'ringing', []);
        progress(leg, leg.answerSec!, 'answered', [{ callId: leg.callId, kind: 'answered' }]);
        progress(leg, leg.endSec, 'completed', [{ callId: leg.callId, kind: 'ended' }], [['CallDuration', String(leg.talkSec)]]);
      }
    } else {
      // Twilio's default statusCallbackEvent is `completed` alone: many REST calls report nothing else, and the
      // ledger then starts them at their earliest request (docs/providers.md, clocks; expected-outcome.ts).
      const finalOnly = !restcomm && leg.direction === 'outbound-api' && r.chance(0.3);
      if (!finalOnly) {
        progress(leg, leg.startSec, 'initiated', [{ callId: leg.callId, kind: 'initiated' }]);
        if (leg.ringSec !== null) progress(leg, leg.ringSec, 'ringing', []);
      }
      if (answered) {
        if (!finalOnly) progress(leg, leg.answerSec!, 'answered', [{ callId: leg.callId, kind: 'answered' }]);
        // A REST-created call fetches its Url once answered (family A).
        if (leg.direction === 'outbound-api') emit(leg.answerSec!, '/voice', voiceParams(leg, 'in-progress'), [{ callId: leg.callId, kind: 'answered' }], false);
      }
      const recParams: Params =
        callRec && restcomm
          ? [['RecordingUrl', callRec.url], ['RecordingSid', callRec.recordingId], ['RecordingDuration', String(callRec.durationSec)]]
          : [];
      // Synchronous AMD (or a status callback after async AMD) reports AnsweredBy on the final callback too.
      const amdParams: Params = !restcomm && leg.amd && !leg.amd.asyncAmd ? [['AnsweredBy', answeredByValue(leg)]] : [];
      const amdFacts: Fact[] = amdParams.length ? [{ callId: leg.callId, kind: 'amd' }] : [];
      progress(leg, leg.endSec, 'completed', [{ callId: leg.callId, kind: 'ended' }, ...amdFacts], [['CallDuration', String(leg.talkSec)], ...recParams, ...amdParams]);
    }

    for (const rec of leg.recordings) emitRecording(leg, rec);
    if (!restcomm && leg.amd && leg.amd.asyncAmd) emitAsyncAmd(leg, leg.amd);
    if (!restcomm && leg.conference) emitConference(leg, leg.conference);
    if (!restcomm && leg.queue) emitQueue(leg, leg.queue);
  }

  /**
   * Twilio `<Enqueue>` (https://www.twilio.com/docs/voice/twiml/enqueue): the waitUrl is requested when the caller
   * enters the queue and again each time its hold music ends, with QueueSid, QueuePosition, QueueTime (seconds
   * waited so far), AvgQueueTime, CurrentQueueSize and MaxQueueSize; the action URL is requested when the caller
   * leaves, with QueueResult, QueueSid and QueueTime. A bridged caller's action comes after the agent disconnects.
   */
  function emitQueue(leg: SimLeg, q: NonNullable<SimLeg['queue']>): void {
    const size = r.int(1, 4);
    for (let at = q.enterSec; at < q.leaveSec; at += q.waitLoopSec) {
      const position = Math.max(1, size - Math.floor((at - q.enterSec) / 40));
      emit(at, '/queue-wait', [...voiceParams(leg, 'in-progress'), ['AvgQueueTime', String(r.int(10, 90))], ['CurrentQueueSize', String(size)], ['MaxQueueSize', '100'], ['QueuePosition', String(position)], ['QueueSid', q.queueId], ['QueueTime', String(at - q.enterSec)]], [], false);
    }
    const actionSec = q.result === 'bridged' ? leg.endSec - 1 : leg.endSec;
    emit(actionSec, '/enqueue-action', [...voiceParams(leg, q.result === 'bridged' ? 'in-progress' : 'completed'), ['QueueResult', q.result], ['QueueSid', q.queueId], ['QueueTime', String(q.leaveSec - q.enterSec)]], [], false);
  }

  /** Twilio AnsweredBy values (https://www.twilio.com/docs/voice/answering-machine-detection). */
  function answeredByValue(leg: SimLeg): string {
    return leg.amd!.result === 'human' ? 'human' : new Prng(leg.callId, 'answered-by').pick(['machine_start', 'machine_end_beep', 'machine_end_silence', 'machine_end_other']);
  }

  /** AsyncAmdStatusCallback: CallSid, AccountSid, AnsweredBy, MachineDetectionDuration and nothing else. */
  function emitAsyncAmd(leg: SimLeg, amd: NonNullable<SimLeg['amd']>): void {
    const durationMs = Math.max(500, Math.round((amd.atSec - leg.answerSec!) * 1000));
    emit(amd.atSec, '/amd', [['AccountSid', call.accountId], ['AnsweredBy', answeredByValue(leg)], ['CallSid', leg.callId], ['MachineDetectionDuration', String(durationMs)]], [{ callId: leg.callId, kind: 'amd' }], false);
  }

  /** Twilio conference statusCallback (https://www.twilio.com/docs/voice/twiml/conference#attributes-statuscallback). */
  function emitConference(leg: SimLeg, conf: NonNullable<SimLeg['conference']>): void {
    let n = 0;
    const event = (atSec: number, name: string, who: Params): void =>
      emit(
        atSec,
        '/conference',
        [['AccountSid', call.accountId], ...who, ['ConferenceSid', conf.conferenceId], ['FriendlyName', conf.name], ['SequenceNumber', String(n++)], ['StatusCallbackEvent', name], ['Timestamp', twilioTimestamp(call.startMs + atSec * 1000)]],
        [],
        true,
      );
    event(conf.joinSec, 'conference-start', [['CallSid', leg.callId]]);
    event(conf.joinSec, 'participant-join', [['CallSid', leg.callId], ['Coaching', 'false'], ['EndConferenceOnExit', 'true'], ['Hold', 'false'], ['Muted', 'false'], ['StartConferenceOnEnter', 'true']]);
    event(conf.leaveSec, 'participant-leave', [['CallSid', leg.callId], ['Coaching', 'false'], ['EndConferenceOnExit', 'true'], ['Hold', 'false'], ['Muted', 'false'], ['StartConferenceOnEnter', 'true']]);
    event(conf.leaveSec, 'conference-end', [['CallSidEndingConference', leg.callId], ['ReasonConferenceEnded', 'participant-with-end-conference-on-exit-left']]);
  }
  for (const dial of call.dials) emitDialAction(dial);

  function emitRecording(leg: SimLeg, rec: SimRecording): void {
    if (rec.scope === 'utterance') {
      const duration = restcomm ? (Number.isInteger(rec.durationSec) ? rec.durationSec!.toFixed(1) : String(rec.durationSec)) : String(rec.durationSec);
      const params: Params = restcomm
        ? [...voiceParams(leg, 'in-progress'), ['RecordingUrl', rec.url], ['PublicRecordingUrl', rec.url.replace(':8080/restcomm/2012-04-24/Accounts/' + call.accountId + '/Recordings/', '/restcomm/recordings/')], ['RecordingDuration', duration], ['Digits', '#']]
        : [...voiceParams(leg, 'in-progress'), ['Digits', '#'], ['RecordingDuration', duration], ['RecordingSid', rec.recordingId], ['RecordingUrl', rec.url]];
      emit(rec.atSec, '/record-action', params, [], false);
    } else if (!restcomm && (rec.scope === 'conference' || rec.scope === 'call')) {
      // Twilio's recordingStatusCallback; CallSid names the parent leg of a two-leg call (docs/providers.md, "Restcomm and Twilio quirks").
      emit(
        rec.atSec + 1,
        '/recording-status',
        [
          ['AccountSid', call.accountId],
          ['CallSid', leg.callId],
          ...(leg.conference ? ([['ConferenceSid', leg.conference.conferenceId]] as Params) : []),
          ['RecordingChannels', '1'],
          ['RecordingDuration', String(rec.durationSec)],
          ['RecordingSid', rec.recordingId],
          ['RecordingSource', rec.scope === 'conference' ? 'Conference' : 'OutboundAPI'],
          ['RecordingStartTime', twilioTimestamp(call.startMs + (rec.atSec - (rec.durationSec ?? 0)) * 1000)],
          ['RecordingStatus', 'completed'],
          ['RecordingUrl', rec.url],
        ],
        [],
        false,
      );
    }
    // Restcomm 'call' recordings ride on the completed callback; 'dial' ones on the Dial action.
  }

  function emitDialAction(dial: SimDial): void {
    const parent = byId.get(dial.parentId)!;
    const named = dial.winnerId ? byId.get(dial.winnerId)! : dial.childIds.length === 1 ? byId.get(dial.childIds[0]!)! : null;
    const status = named ? (named.answerSec !== null ? 'completed' : named.outcome) : 'no-answer';
    const dialRec = parent.recordings.find((x) => x.scope === 'dial' && x.atSec === dial.endSec);
    const params: Params = voiceParams(parent, 'in-progress', restcomm && named ? named.callId : undefined);
    if (restcomm) {
      if (named) params.push(['DialRingDuration', String((named.answerSec ?? named.endSec) - named.startSec)]);
      params.push(
        ['DialCallSid', named ? named.callId : 'null'],
        ['DialCallStatus', status],
        ['DialCallDuration', String(named ? named.talkSec : 0)],
        ['RecordingUrl', dialRec ? dialRec.url : null],
        ['PublicRecordingUrl', dialRec ? dialRec.url : null],
      );
    } else {
      params.push(
        ...(named ? ([['DialCallSid', named.callId]] as Params) : []),
        ['DialCallStatus', status],
        ['DialCallDuration', String(named ? named.talkSec : 0)],
        ...(dialRec ? ([['RecordingDuration', String(dialRec.durationSec)], ['RecordingSid', dialRec.recordingId], ['RecordingUrl', dialRec.url]] as Params) : []),
      );
    }
    emit(dial.endSec, '/dial-action', params, named ? [{ callId: named.callId, kind: 'dial-ended' }] : [], false);
  }

  return out;
}
