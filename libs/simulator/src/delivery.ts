import type { Provider } from '@lib/ledger';
import type { Prng } from './prng.js';

/**
 * What a delivery tells the ledger about a leg's life, per the mapping of docs/providers.md, "What is read from each webhook kind": `initiated`
 * (a CallInitiated), `answered` (CallAnswered), `ended` (the leg's own CallCompleted), `dial-ended` (a parent-side
 * DialCompleted naming the leg). The expected outcome reads its times from these.
 */
export interface Fact {
  callId: string;
  kind: 'initiated' | 'answered' | 'ended' | 'dial-ended' | 'amd';
  /** A provider time that dates this fact itself rather than the delivery (Restcomm CallTimestamp: the creation). */
  atMs?: number;
}

/**
 * The leg state an action hook reports on its own leg (docs/providers.md, "What is read from each webhook kind": jambonz `call_status`, FreeClimb `callStatus`,
 * Twilio/Restcomm `CallStatus` in action callbacks): in progress means answered, a final status means ended.
 */
export const hookStateFacts = (callId: string | undefined, status: string | undefined, answered: readonly string[], ended: readonly string[]): Fact[] =>
  !callId || !status ? [] : answered.includes(status) ? [{ callId, kind: 'answered' }] : ended.includes(status) ? [{ callId, kind: 'ended' }] : [];

/** One HTTP request a provider makes, fully rendered. */
export interface Delivery {
  provider: Provider;
  callIndex: number;
  /** Sub-path below /v1/webhooks/<provider>, with a leading slash ('' for none). */
  path: string;
  /** Query string without '?' (Restcomm's token is added at send time, it is a credential, not content). */
  query: string;
  contentType: string;
  body: string;
  /** When the provider sent it (epoch ms, whole seconds): the signature `t`. */
  sentAtMs: number;
  /** When it reaches the ledger in the simulated world; the import's receivedAt. */
  receivedAtMs: number;
  /** Event time carried in the body (Restcomm/Twilio Timestamp), which the ledger prefers to any other clock. */
  providerTimeMs: number | null;
  facts: Fact[];
  /** A byte-for-byte re-delivery of an earlier delivery (same body, same signature time). */
  retry: boolean;
}

/** Network + provider queueing delay, ms. */
export const latency = (r: Prng, max = 600): number => r.int(15, max);

/**
 * Byte-identical re-deliveries: jambonz signs once before its retry loop (docs/providers.md, "Signatures"), so a retry repeats body and `t`;
 * it backs off 500 ms, doubling.
 */
export const withRetries = (deliveries: Delivery[], r: Prng, probability: number): Delivery[] => {
  const out: Delivery[] = [];
  for (const d of deliveries) {
    out.push(d);
    if (probability > 0 && r.chance(probability)) {
      const attempts = r.int(1, 2);
      let backoff = 500;
      let at = d.receivedAtMs;
      for (let i = 0; i < attempts; i++) {
        at += backoff + r.int(0, 50);
        backoff *= 2;
        out.push({ ...d, receivedAtMs: at, facts: [], retry: true });
      }
    }
  }
  return out;
};

/** Arrival order: the order a live sender posts in, and the line order of an import. Stable on ties. */
export const byArrival = (a: Delivery, b: Delivery): number => a.receivedAtMs - b.receivedAtMs || a.callIndex - b.callIndex;
