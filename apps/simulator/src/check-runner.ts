import pLimit from 'p-limit';
import { diffCallTree, diffIntent, diffKpis, diffQueueEvents, type Difference, type ExpectedOutcome } from '@lib/simulator';

export interface CheckOptions {
  target: string;
  apiKey: string;
  concurrency: number;
  /** How long to wait for the projections to catch up when the expectation carries no position (imports). */
  timeoutMs: number;
  progress: (line: string) => void;
}

export interface CheckResult {
  differences: Difference[];
  /** Problems reaching the API at all (missing routes, auth), as opposed to wrong answers. */
  errors: string[];
  callsChecked: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Reads the ledger's query API and compares every call and the KPIs with the expectation. */
export async function runCheck(expected: ExpectedOutcome, opts: CheckOptions): Promise<CheckResult> {
  const base = opts.target.replace(/\/+$/, '');
  const headers = { authorization: `Bearer ${opts.apiKey}`, accept: 'application/json' };
  const get = async (path: string): Promise<{ status: number; body: unknown; text: string }> => {
    const res = await fetch(base + path, { headers });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    return { status: res.status, body, text };
  };
  const out: CheckResult = { differences: [], errors: [], callsChecked: 0 };

  let minPosition = expected.maxPosition ? `&minPosition=${encodeURIComponent(expected.maxPosition)}` : '';
  if (!expected.maxPosition) {
    // An import answers without positions: wait until every projection has applied the store's head.
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const res = await get('/v1/admin/projections');
      if (res.status !== 200) {
        out.errors.push(`GET /v1/admin/projections answered ${res.status}: ${res.text.slice(0, 200)}`);
        break;
      }
      const data = (res.body as { data?: Array<{ lagEvents?: number; state?: string }> }).data ?? [];
      if (data.length > 0 && data.every((p) => p.lagEvents === 0 && p.state === 'running')) break;
      if (Date.now() > deadline) {
        out.errors.push(`projections did not catch up within ${opts.timeoutMs} ms: ${res.text.slice(0, 300)}`);
        break;
      }
      await sleep(200);
    }
    minPosition = '';
  }

  let notFound = 0;
  let firstNotFound = '';
  const checkCall = async (call: ExpectedOutcome['calls'][number]) => {
    const path = `/v1/calls/${encodeURIComponent(call.rootCallId)}/tree?provider=${call.provider}${minPosition}`;
    const res = await get(path);
    out.callsChecked += 1;
    if (res.status === 404) {
      notFound += 1;
      firstNotFound ||= `GET ${path} answered 404: ${res.text.slice(0, 200)}`;
      out.differences.push({ path: `call ${call.index} (${call.kind}, ${call.provider} ${call.rootCallId})`, expected: 'found', actual: '404' });
    } else if (res.status !== 200) {
      out.errors.push(`GET ${path} answered ${res.status}: ${res.text.slice(0, 200)}`);
    } else {
      out.differences.push(...diffCallTree(call, res.body));
      if (call.intent) {
        // The app's answers are written after the provider has its reply, by a writer of their own: on a busy
        // ledger the last ones may land after the projections have caught up, so a difference is read again.
        const where = `call ${call.index} (${call.kind}, ${call.provider} ${call.rootCallId})`;
        let diff = diffIntent(where, call.intent, res.body);
        for (const deadline = Date.now() + opts.timeoutMs; diff.length > 0 && Date.now() < deadline; ) {
          await sleep(250);
          const again = await get(path);
          if (again.status === 200) diff = diffIntent(where, call.intent, again.body);
        }
        out.differences.push(...diff);
      }
      if (call.queues) {
        // Queues leave no column on the leg: their events are checked in the call's audit trail.
        const events = await get(`/v1/calls/${encodeURIComponent(call.rootCallId)}/events?provider=${call.provider}&tree=true`);
        if (events.status !== 200) out.errors.push(`GET /v1/calls/${call.rootCallId}/events answered ${events.status}: ${events.text.slice(0, 200)}`);
        else out.differences.push(...diffQueueEvents(call, events.body));
      }
    }
    if (out.callsChecked % 100 === 0) opts.progress(`checked ${out.callsChecked}/${expected.calls.length} calls, ${out.differences.length} differences`);
  };
  const limit = pLimit(Math.max(1, opts.concurrency));
  await Promise.all(expected.calls.map((call) => limit(() => checkCall(call))));
  if (notFound > 0 && notFound === expected.calls.length) {
    out.errors.push(`every call answered 404 — is the query API (GET /v1/calls/{callId}/tree) deployed on this ledger? First: ${firstNotFound}`);
  }

  // KPIs: the whole run, then each provider, over the run's time window.
  const window = `since=${encodeURIComponent(expected.window.from)}&until=${encodeURIComponent(expected.window.to)}`;
  const summaries: Array<[string, string, ExpectedOutcome['totals']]> = [
    ['totals', `/v1/analytics/summary?${window}`, expected.totals],
    ...Object.entries(expected.byProvider).map(([p, k]) => [`totals[${p}]`, `/v1/analytics/summary?provider=${p}&${window}`, k] as [string, string, ExpectedOutcome['totals']]),
  ];
  for (const [where, path, kpis] of summaries) {
    const res = await get(path + (expected.maxPosition ? minPosition : ''));
    if (res.status === 404) {
      out.errors.push(`GET ${path} answered 404 — is the analytics API deployed on this ledger? ${res.text.slice(0, 200)}`);
      break;
    }
    if (res.status !== 200) {
      out.errors.push(`GET ${path} answered ${res.status}: ${res.text.slice(0, 200)}`);
      continue;
    }
    out.differences.push(...diffKpis(kpis, (res.body as { totals?: unknown }).totals, where));
  }
  return out;
}
