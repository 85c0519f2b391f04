import { createHash } from 'node:crypto';
import { signDelivery, simulate, type Delivery } from '@lib/simulator';
import { SECRETS } from '../../support/test-app.js';
import { PUBLIC_URL } from './ledger-process.js';

export const SIGNING = {
  freeclimb: SECRETS.FREECLIMB_SIGNING_SECRET,
  jambonz: SECRETS.JAMBONZ_WEBHOOK_SECRET,
  twilio: SECRETS.TWILIO_AUTH_TOKEN,
  restcomm: SECRETS.RESTCOMM_WEBHOOK_TOKEN,
};

export interface Receipt {
  receiptId: string;
  position: string | null;
  duplicate: boolean;
  events: string[];
}

/** What became of one request: the answer, or none (connection refused or reset, or no answer in time). */
export interface Outcome {
  index: number;
  provider: Delivery['provider'];
  /** sha256 of the body: the store's dedupe key together with the provider. */
  sha256: string;
  body: Buffer;
  status: number | null;
  receipt: Receipt | null;
  retryAfter: string | null;
  /** Error code of a non-200 answer, or the network error of a request with no answer. */
  error: string | null;
  /** `performance.now()` at the send (monotonic: a wall-clock step cannot reorder requests). */
  startedAt: number;
  ms: number;
}

/**
 * Simulated traffic of every provider, signed now: the run is compressed to "as fast as the driver can", and the
 * signatures' `t` (the simulated send time) stays inside the ledger's ±5 minutes because talk times are short.
 */
export const liveTraffic = (seed: string, calls: number): Delivery[] =>
  simulate({ seed, calls, provider: 'mixed', baseTimeMs: Math.floor(Date.now() / 1000) * 1000, mode: 'live', days: 0, rate: 200, maxTalkSec: 20 }).deliveries;

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Posts one delivery and records what came back; never throws. */
export const post = async (target: string, d: Delivery, index: number, timeoutMs = 15_000): Promise<Outcome> => {
  const s = signDelivery(d, SIGNING, PUBLIC_URL);
  const startedAt = performance.now();
  const base = { index, provider: d.provider, sha256: sha256(s.body), body: s.body, startedAt };
  try {
    const res = await fetch(target + s.url, { method: 'POST', headers: s.headers, body: s.body, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    const ms = performance.now() - startedAt;
    const retryAfter = res.headers.get('retry-after');
    if (res.status === 200) return { ...base, status: 200, receipt: JSON.parse(text) as Receipt, retryAfter, error: null, ms };
    let code = `non-JSON answer: ${text.slice(0, 100)}`;
    try {
      code = (JSON.parse(text) as { error: { code: string } }).error.code;
    } catch {
      /* kept as the non-JSON marker */
    }
    return { ...base, status: res.status, receipt: null, retryAfter, error: code, ms };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { ...base, status: null, receipt: null, retryAfter: null, error: e.cause?.code ?? e.name ?? e.message, ms: performance.now() - startedAt };
  }
};

/**
 * How long this test process was stalled (its event loop late by more than a tick) since the call: a client-side
 * latency includes any such stall, so a hang guard allows for it. A runner starved by a loaded machine must not
 * fail a test about the service.
 */
export const trackRunnerStalls = (tickMs = 20): { stalledMs: () => number; stop: () => void } => {
  let last = performance.now();
  let total = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - tickMs;
    if (late > tickMs) total += late;
    last = now;
  }, tickMs);
  timer.unref();
  return { stalledMs: () => total, stop: () => clearInterval(timer) };
};

export interface DriveOptions {
  /** Target per request (spread load over several instances). */
  target: (index: number) => string;
  concurrency: number;
  /** Checked before each new request: false stops the run (requests in flight still finish). */
  keepGoing?: () => boolean;
  onOutcome?: (o: Outcome) => void;
  /**
   * Called synchronously once a request has been started (its bytes may not have been written yet), so that nothing
   * of its answer can have arrived: a kill from here leaves that request unanswered, whereas from onOutcome every
   * other request may have been answered already, in the same group commit.
   */
  onStarted?: (index: number) => void;
  timeoutMs?: number;
}

/** Sends deliveries with at most `concurrency` in flight and returns every outcome, in sending order. */
export const drive = async (deliveries: readonly Delivery[], opts: DriveOptions): Promise<Outcome[]> => {
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    for (;;) {
      if (opts.keepGoing && !opts.keepGoing()) return;
      const index = next++;
      if (index >= deliveries.length) return;
      const answer = post(opts.target(index), deliveries[index]!, index, opts.timeoutMs);
      opts.onStarted?.(index);
      const o = await answer;
      outcomes.push(o);
      opts.onOutcome?.(o);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return outcomes.sort((a, b) => a.index - b.index);
};

export const tally = (outcomes: readonly Outcome[]) => {
  const byStatus: Record<string, number> = {};
  for (const o of outcomes) byStatus[o.status === null ? `none:${o.error}` : String(o.status)] = (byStatus[String(o.status === null ? `none:${o.error}` : o.status)] ?? 0) + 1;
  return byStatus;
};
