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
    // Only providers known to retry do: Restcomm makes one attempt (§3.1).
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
    // Unanswered legs skip 2 and end with a bare `completed` and CallDuration=0 (§3.11).
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
    expect(new Set(legs.map((l) => l.status))).toEqual(new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled']));
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

describe('simulate at scale', () => {
  // What is checked is the stack, not the speed: on a loaded shared machine the run takes 8-10 s, past the default 5 s.
  it('generates 30,000 calls without overflowing the stack', { timeout: 120_000 }, () => {
    const run = simulate({ seed: 'big', calls: 30_000, provider: 'freeclimb', baseTimeMs: Date.UTC(2026, 0, 1), mode: 'import', days: 1, rate: 1, maxTalkSec: 60 });
    expect(run.expected.calls).toHaveLength(30_000);
  });
});
