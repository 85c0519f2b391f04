import pLimit from 'p-limit';
import { signDelivery, type Delivery, type SigningSecrets } from '@lib/simulator';

export interface SendOptions {
  target: string;
  publicUrl: string;
  secrets: SigningSecrets;
  concurrency: number;
  /**
   * How far ahead of real time a delivery may be sent, ms. Simulated send times are real times (the run starts
   * now), and the ledger accepts signatures up to ±300 s from its clock: sending up to 240 s early compresses
   * the run without leaving the window.
   */
  leadMs: number;
  /** Injected so that tests and the CLI share one clock. */
  now: () => number;
  progress: (line: string) => void;
  /** `tee`: post to /v1/tee/…; the answer is then the app's, not a receipt (no position to read). */
  route?: 'webhooks' | 'tee';
}

export interface SendResult {
  sent: number;
  ok: number;
  duplicates: number;
  errors: number;
  firstErrors: string[];
  maxPosition: string | null;
  elapsedMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Posts deliveries in arrival order, each as its provider signs it, with at most `concurrency` in flight. */
export async function sendLive(deliveries: readonly Delivery[], opts: SendOptions): Promise<SendResult> {
  const started = opts.now();
  const result: SendResult = { sent: 0, ok: 0, duplicates: 0, errors: 0, firstErrors: [], maxPosition: null, elapsedMs: 0 };
  let max = -1n;
  const limit = pLimit(opts.concurrency);
  let lastReport = started;
  let lastSent = 0;
  const report = (force = false) => {
    const now = opts.now();
    if (!force && now - lastReport < 1000) return;
    const rate = ((result.sent - lastSent) * 1000) / Math.max(1, now - lastReport);
    opts.progress(
      `sent ${result.sent}/${deliveries.length} (${rate.toFixed(0)}/s) ok ${result.ok} duplicates ${result.duplicates} errors ${result.errors} in flight ${limit.activeCount}`,
    );
    lastReport = now;
    lastSent = result.sent;
  };
  const ticker = setInterval(() => report(), 1000);
  ticker.unref();

  const post = async (d: Delivery): Promise<void> => {
    const s = signDelivery(d, opts.secrets, opts.publicUrl, opts.route ?? 'webhooks');
    try {
      const res = await fetch(opts.target.replace(/\/+$/, '') + s.url, { method: 'POST', headers: s.headers, body: s.body });
      const text = await res.text();
      if (res.status !== 200) {
        result.errors += 1;
        if (result.firstErrors.length < 10) result.firstErrors.push(`${res.status} ${d.provider}${d.path}: ${text.slice(0, 200)}`);
        return;
      }
      result.ok += 1;
      if (opts.route === 'tee') return;
      const receipt = JSON.parse(text) as { position: string | null; duplicate: boolean };
      if (receipt.duplicate) result.duplicates += 1;
      if (receipt.position !== null && BigInt(receipt.position) > max) max = BigInt(receipt.position);
    } catch (err) {
      result.errors += 1;
      if (result.firstErrors.length < 10) result.firstErrors.push(`${d.provider}${d.path}: ${(err as Error).message}`);
    }
  };

  // p-limit runs the queued posts first in, first out, so deliveries still leave in arrival order.
  const posts: Promise<void>[] = [];
  for (const d of deliveries) {
    const wait = d.sentAtMs - opts.leadMs - opts.now();
    if (wait > 0) await sleep(wait);
    posts.push(
      limit(() => {
        result.sent += 1;
        return post(d);
      }),
    );
  }
  await Promise.all(posts);
  clearInterval(ticker);
  report(true);
  result.maxPosition = max >= 0n ? max.toString() : null;
  result.elapsedMs = opts.now() - started;
  return result;
}
