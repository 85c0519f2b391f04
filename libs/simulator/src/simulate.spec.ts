import twilio from 'twilio';
import { describe, expect, it } from 'vitest';
import { ProviderRegistry } from '@lib/providers';
import type { Delivery } from './delivery.js';
import { SIM_PROVIDERS, kindsFor, type GenerateOptions } from './scenario.js';
import { importLine, simulate } from './simulate.js';
import { signDelivery } from './signing.js';

const SECRETS = { freeclimb: 'sigsec_sim_fc', jambonz: 'whsec_sim_jz', twilio: 'sim_twilio_token', restcomm: 'sim-rc-token' };
const PUBLIC_URL = 'https://ledger.example.com';
const registry = new ProviderRegistry(
  { freeclimb: [SECRETS.freeclimb], jambonz: [SECRETS.jambonz], twilio: [SECRETS.twilio], restcomm: [SECRETS.restcomm] },
  PUBLIC_URL,
);

const base: GenerateOptions = { seed: 'spec', calls: 300, provider: 'mixed', baseTimeMs: Date.UTC(2026, 0, 5, 12), mode: 'import', days: 10, rate: 20, maxTalkSec: 300 };
const run = simulate(base);
const serialise = (r: ReturnType<typeof simulate>) => r.deliveries.map(importLine).join('\n') + JSON.stringify(r.expected);

describe('generation', () => {
  it('is deterministic: the same seed and base time give byte-identical traffic and expectations', () => {
    expect(serialise(simulate(base))).toBe(serialise(run));
    expect(serialise(simulate({ ...base, seed: 'other' }))).not.toBe(serialise(run));
  });

  it('keeps call N the same whatever the number of calls after it', () => {
    const fewer = simulate({ ...base, calls: 10 });
    const firstTen = (r: typeof run) => r.calls.filter((c) => c.index < 10).map((c) => JSON.stringify({ ...c, startMs: 0 }));
    expect(firstTen(fewer)).toEqual(firstTen(run));
  });

  it('draws every provider and every kind each provider supports', () => {
    const big = simulate({ ...base, calls: 2000 });
    for (const p of SIM_PROVIDERS) {
      expect(new Set(big.calls.filter((c) => c.provider === p).map((c) => c.kind))).toEqual(new Set(kindsFor(p)));
    }
  });

  it('spreads import receive times over the requested days, ending at the base time', () => {
    const times = run.deliveries.map((d) => d.receivedAtMs);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(base.baseTimeMs - 10 * 86_400_000);
    expect(Math.min(...times)).toBeLessThan(base.baseTimeMs - 8 * 86_400_000);
    expect(run.deliveries.map((d) => d.receivedAtMs)).toEqual([...times].sort((a, b) => a - b));
  });

  it('starts live traffic at the base time with Poisson arrivals at the requested rate', () => {
    const live = simulate({ ...base, mode: 'live', calls: 200, rate: 10 });
    const starts = live.calls.map((c) => c.startMs);
    expect(Math.min(...starts)).toBe(base.baseTimeMs);
    expect((Math.max(...starts) - base.baseTimeMs) / 1000).toBeGreaterThan(10);
    expect((Math.max(...starts) - base.baseTimeMs) / 1000).toBeLessThan(40);
  });
});

describe('rendered deliveries', () => {
  const verify = (d: Delivery) => {
    const s = signDelivery(d, SECRETS, PUBLIC_URL);
    return registry.get(d.provider).verify({ rawBody: s.body, headers: s.headers, url: s.url, nowSec: Math.floor(d.sentAtMs / 1000) + 30 });
  };

  it("are accepted by each adapter's own signature check and translate without UnrecognizedWebhook", () => {
    for (const d of run.deliveries) {
      expect(verify(d), `${d.provider}${d.path} ${d.body}`).toMatchObject({ status: 'verified' });
      const url = new URL(signDelivery(d, SECRETS, PUBLIC_URL).url, PUBLIC_URL);
      const events = registry.get(d.provider).translate(Buffer.from(d.body), {
        provider: d.provider,
        path: d.path.replace(/^\//, ''),
        query: url.searchParams,
        contentType: d.contentType,
      });
      expect(events.map((e) => e.type), `${d.provider}${d.path} ${d.body}`).not.toContain('UnrecognizedWebhook');
    }
  });

  it('are refused when signed with another secret', () => {
    const wrong = { freeclimb: 'x', jambonz: 'x', twilio: 'x', restcomm: 'x' };
    for (const d of run.deliveries.slice(0, 200)) {
      const s = signDelivery(d, wrong, PUBLIC_URL);
      expect(registry.get(d.provider).verify({ rawBody: s.body, headers: s.headers, url: s.url, nowSec: Math.floor(d.sentAtMs / 1000) }).status).toBe('rejected');
    }
  });

  it("sign Twilio callbacks so that Twilio's own SDK validates them against the public URL", () => {
    const deliveries = run.deliveries.filter((d) => d.provider === 'twilio');
    expect(deliveries.length).toBeGreaterThan(50);
    for (const d of deliveries) {
      const s = signDelivery(d, SECRETS, PUBLIC_URL);
      const params = Object.fromEntries(new URLSearchParams(d.body));
      expect(twilio.validateRequest(SECRETS.twilio, s.headers['x-twilio-signature']!, PUBLIC_URL + s.url, params)).toBe(true);
    }
  });

  it('repeat a delivery byte for byte on retries, signature included', () => {
    const retries = run.deliveries.filter((d) => d.retry);
    expect(retries.length).toBeGreaterThan(10);
    for (const r of retries) {
      const original = run.deliveries.find((d) => !d.retry && d.body === r.body)!;
      expect(original.receivedAtMs).toBeLessThan(r.receivedAtMs);
      expect(signDelivery(r, SECRETS, PUBLIC_URL)).toEqual(signDelivery(original, SECRETS, PUBLIC_URL));
    }
    // Only providers known to retry do: Restcomm makes one attempt (docs/providers.md, "Restcomm and Twilio requests").
    expect(new Set(retries.map((d) => d.provider))).not.toContain('restcomm');
  });

  it('deliver jambonz status hooks out of order: ringing after in-progress for some legs', () => {
    const hooks = run.deliveries.filter((d) => d.provider === 'jambonz' && d.path === '/status' && !d.retry).map((d) => ({ d, b: JSON.parse(d.body) as { call_sid: string; call_status: string } }));
    const late = hooks.filter(({ d, b }) => {
      if (b.call_status !== 'ringing' && b.call_status !== 'early-media') return false;
      const answer = hooks.find((h) => h.b.call_sid === b.call_sid && h.b.call_status === 'in-progress');
      return answer && answer.d.sentAtMs > d.sentAtMs && answer.d.receivedAtMs < d.receivedAtMs;
    });
    expect(late.length).toBeGreaterThan(0);
  });

  it("send Restcomm's fixed sequence numbers, bare keys and zone-id timestamps", () => {
    const progress = run.deliveries.filter((d) => d.provider === 'restcomm' && d.body.includes('CallbackSource=call-progress-events'));
    expect(progress.length).toBeGreaterThan(20);
    const FIXED: Record<string, string> = { initiated: '0', ringing: '1', answered: '2', completed: '3' };
    for (const d of progress) {
      const p = new URLSearchParams(d.body);
      expect(p.get('SequenceNumber')).toBe(FIXED[p.get('CallStatus')!]);
      expect(d.body).toMatch(/&ForwardedFrom&/);
      expect(p.get('Timestamp')).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} (UTC|Europe\/Athens|America\/New_York)$/);
    }
    // Unanswered legs skip 2 and end with a bare `completed` and CallDuration=0 (docs/providers.md, "Restcomm and Twilio quirks").
    expect(progress.some((d) => d.body.includes('CallStatus=completed&CallDuration=0&'))).toBe(true);
    const dial = run.deliveries.find((d) => d.provider === 'restcomm' && d.path === '/dial-action' && d.body.includes('&RecordingUrl&PublicRecordingUrl'));
    expect(dial).toBeDefined();
  });

  it('count Twilio sequence numbers per callback and report the real final status', () => {
    const progress = run.deliveries.filter((d) => d.provider === 'twilio' && d.body.includes('CallbackSource=call-progress-events'));
    const byCall = new Map<string, string[]>();
    for (const d of progress) {
      const p = new URLSearchParams(d.body);
      byCall.set(p.get('CallSid')!, [...(byCall.get(p.get('CallSid')!) ?? []), p.get('SequenceNumber')!]);
    }
    for (const seqs of byCall.values()) expect(seqs.map(Number).sort((a, b) => a - b)).toEqual(seqs.map((_, i) => i));
    expect(progress.some((d) => /CallStatus=(busy|no-answer|failed|canceled)/.test(d.body))).toBe(true);
  });
});

describe('expected outcome', () => {
  const legs = simulate({ ...base, calls: 1500 }).expected.calls.flatMap((c) => c.legs);

  it('covers every status, both AMD results and provisional Restcomm children', () => {
    // in-progress: roots of action-hooks-only apps, whose end no hook reports.
    expect(new Set(legs.map((l) => l.status))).toEqual(new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled', 'in-progress']));
    expect(new Set(legs.map((l) => l.answeredBy))).toEqual(new Set([null, 'machine', 'human']));
    expect(legs.some((l) => l.provider === 'restcomm' && l.parentCallId && !l.final)).toBe(true);
    expect(legs.filter((l) => l.recordings.length > 0).length).toBeGreaterThan(20);
    expect(legs.some((l) => l.conferenceIds.length > 0)).toBe(true);
  });

  it('predicts every time in import mode and leaves out only arrival-timed RCML values live', () => {
    expect(legs.every((l) => 'ringDurationSec' in l && 'startedAt' in l && 'endedAt' in l)).toBe(true);
    const live = simulate({ ...base, mode: 'live', calls: 300 }).expected;
    const liveLegs = live.calls.flatMap((c) => c.legs);
    expect(liveLegs.filter((l) => l.provider === 'freeclimb' || l.provider === 'jambonz').every((l) => 'ringDurationSec' in l)).toBe(true);
    expect(liveLegs.some((l) => !('startedAt' in l))).toBe(true);
    expect(live.totals).not.toHaveProperty('avgRingSec');
  });
});

const translate = (d: Delivery) =>
  registry.get(d.provider).translate(Buffer.from(d.body), { provider: d.provider, path: d.path.replace(/^\//, ''), query: new URLSearchParams(d.query), contentType: d.contentType });

describe('action-hooks-only apps (no status callback configured)', () => {
  const hooks = SIM_PROVIDERS.map((provider) => simulate({ ...base, provider, calls: 40, kinds: ['action-hooks-only'] }));

  it('send no status callback in any dialect: only the voice request / call hook and action hooks', () => {
    for (const r of hooks) {
      const own = r.deliveries.filter((d) => !d.retry);
      expect(own.length).toBeGreaterThan(40);
      expect(own.filter((d) => d.path === '/status' || d.body.includes('call-progress-events')), r.calls[0]!.provider).toEqual([]);
    }
  });

  it("carry each leg's own state in its action hooks, which the adapters read", () => {
    // jambonz gather/dial actionHook: call_status of the CallInfo; FreeClimb getDigits: callStatus; Twilio/Restcomm
    // gather and Dial action: the caller's own CallStatus (docs/providers.md).
    for (const r of hooks) {
      for (const call of r.calls) {
        const root = call.legs[0]!;
        const events = r.deliveries.filter((d) => d.callIndex === call.index && !d.retry).flatMap((d) => translate(d));
        expect(events.filter((e) => e.type === 'CallAnswered' && e.legId === root.callId).length, call.provider).toBeGreaterThan(0);
        expect(events.filter((e) => e.type === 'CallCompleted' && e.legId === root.callId)).toEqual([]);
      }
    }
  });

  it('expect each leg to reach the state its own hooks report, per dialect', () => {
    const byProvider = Object.fromEntries(hooks.map((r) => [r.calls[0]!.provider, r.expected.calls]));
    for (const calls of Object.values(byProvider)) {
      for (const c of calls) expect(c.legs[0]).toMatchObject({ status: 'in-progress', talkDurationSec: null, final: false, endedAt: null });
    }
    const answeredChildren = (p: string) => byProvider[p]!.flatMap((c) => c.legs.slice(1)).filter((l) => l.status === 'completed' || l.status === 'in-progress');
    // The Dial action's DialCallDuration is a provider talk time (Twilio, Restcomm); jambonz reports none.
    for (const p of ['twilio', 'restcomm']) {
      expect(answeredChildren(p).length).toBeGreaterThan(5);
      for (const l of answeredChildren(p)) expect(l).toMatchObject({ status: 'completed', durationSource: 'provider', final: true, direction: null });
    }
    for (const l of answeredChildren('jambonz')) expect(l).toMatchObject({ status: 'completed', talkDurationSec: null, final: false });
    for (const l of answeredChildren('freeclimb')) expect(l).toMatchObject({ status: 'in-progress', talkDurationSec: null, final: false, direction: 'outbound-dial' });
    for (const p of SIM_PROVIDERS) expect(byProvider[p]!.flatMap((c) => c.legs.slice(1)).some((l) => l.status === 'busy' || l.status === 'no-answer')).toBe(true);
  });
});

describe('Twilio queues (<Enqueue>)', () => {
  const q = simulate({ ...base, provider: 'twilio', calls: 30, kinds: ['queue'] });
  const params = (d: Delivery) => new URLSearchParams(d.body);

  it("request the waitUrl and the action with Twilio's field names (https://www.twilio.com/docs/voice/twiml/enqueue)", () => {
    const waits = q.deliveries.filter((d) => d.path === '/queue-wait');
    const actions = q.deliveries.filter((d) => d.path === '/enqueue-action');
    expect(actions).toHaveLength(30);
    for (const d of waits) {
      for (const k of ['QueuePosition', 'QueueSid', 'QueueTime', 'AvgQueueTime', 'CurrentQueueSize', 'MaxQueueSize', 'CallSid', 'CallStatus']) expect(params(d).has(k), k).toBe(true);
      expect(params(d).has('QueueResult')).toBe(false);
    }
    for (const d of actions) {
      expect(['bridged', 'hangup']).toContain(params(d).get('QueueResult'));
      expect(Number(params(d).get('QueueTime'))).toBeGreaterThan(0);
      expect(params(d).get('QueueSid')).toMatch(/^QU[0-9a-f]{32}$/);
    }
    expect(new Set(actions.map((d) => params(d).get('QueueResult')))).toEqual(new Set(['bridged', 'hangup']));
  });

  it('translate to QueueEntered per waitUrl request and one QueueLeft, as the expectation counts them', () => {
    for (const call of q.expected.calls) {
      const [stay] = call.queues!;
      const events = q.deliveries.filter((d) => d.callIndex === call.index).flatMap((d) => translate(d));
      expect(events.filter((e) => e.type === 'QueueEntered' && (e.data as { queueId: string }).queueId === stay!.queueId)).toHaveLength(stay!.waitRequests);
      expect(events.filter((e) => e.type === 'QueueLeft').map((e) => e.data)).toEqual([{ queueId: stay!.queueId, queueTimeSec: stay!.queueTimeSec, result: stay!.result }]);
    }
  });
});

describe('backfill imports', () => {
  const importedAtMs = Date.UTC(2026, 5, 1, 9, 30);
  const past = { ...base, baseTimeMs: Date.UTC(2018, 2, 10), calls: 200 };
  const plain = simulate(past);
  const backfill = simulate({ ...past, importedAtMs });

  it('receive every line at the import time, in arrival order, and keep the bodies and their clocks', () => {
    expect(backfill.deliveries.map((d) => d.receivedAtMs)).toEqual(backfill.deliveries.map((_, i) => importedAtMs + i));
    expect(backfill.deliveries.map((d) => d.body)).toEqual(plain.deliveries.map((d) => d.body));
    expect(backfill.expected.importedAt).toBe('2026-06-01T09:30:00.000Z');
    expect(plain.expected).not.toHaveProperty('importedAt');
  });

  it('expect provider-clocked legs in their own past and the others at the import time', () => {
    const legs = backfill.expected.calls.flatMap((c) => c.legs);
    const at = (l: (typeof legs)[number]) => (l.startedAt ? Date.parse(l.startedAt) : null);
    // Restcomm: CallTimestamp and Timestamp; FreeClimb and jambonz: only the signature, which an import lacks.
    const restcomm = legs.filter((l) => l.provider === 'restcomm' && l.direction !== null);
    expect(restcomm.length).toBeGreaterThan(20);
    for (const l of restcomm) expect(at(l)!).toBeLessThan(Date.UTC(2018, 2, 11));
    // ...except a jambonz leg in a conference, whose hooks carry the conference's `time`.
    for (const l of legs.filter((x) => (x.provider === 'freeclimb' || x.provider === 'jambonz') && x.startedAt && x.conferenceIds.length === 0)) {
      expect(at(l)!).toBeGreaterThanOrEqual(importedAtMs);
    }
    // A Twilio inbound leg's voice request carries no Timestamp, but its status callbacks do: an imported start
    // moves back to the earliest of them (project-call-leg.ts), so the call stays in its own past.
    expect(legs.filter((l) => l.provider === 'twilio' && l.direction === 'inbound' && at(l)! < importedAtMs).length).toBeGreaterThan(0);
    expect(legs.filter((l) => l.provider === 'twilio' && l.direction === 'outbound-dial').every((l) => at(l)! < importedAtMs)).toBe(true);
  });

  it('is ignored outside imports', () => {
    const live = simulate({ ...base, mode: 'live', calls: 20, importedAtMs });
    expect(live.deliveries.every((d) => d.receivedAtMs < importedAtMs)).toBe(true);
  });
});

describe('simulate at scale', () => {
  // What is checked is the stack, not the speed: on a loaded shared machine the run takes 8-10 s, past the default 5 s.
  it('generates 30,000 calls without overflowing the stack', { timeout: 120_000 }, () => {
    const run = simulate({ seed: 'big', calls: 30_000, provider: 'freeclimb', baseTimeMs: Date.UTC(2026, 0, 1), mode: 'import', days: 1, rate: 1, maxTalkSec: 60 });
    expect(run.expected.calls).toHaveLength(30_000);
  });
});
