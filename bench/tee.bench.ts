/**
 * `npm run bench:tee`: the latency the ledger adds in tee mode. A local stub app answers PerCL at once; signed
 * FreeClimb deliveries are sent at a constant rate (open loop: one every 1/RATE s, whatever the answers do)
 * straight to the app, as plain webhooks (what the group commit costs a provider without tee), and through
 * `/v1/tee/freeclimb/voice` of the service (its own process, projector inside). It prints p50/p99/max of the whole
 * request for each; tee minus direct is what the ledger adds (verify, the delivery's commit in parallel with the
 * app, forward, answer), tee minus webhook what tee adds over a plain webhook.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { signTimestampedHmac } from '../libs/providers/src/shared/timestamped-hmac.js';
import { CpuMeter, fmt, isMain, percentile, postgresPids, startService, type PhaseProbe } from './bench-support.js';
import { CommitFloor } from './commit.probe.js';

export const SECRET = 'bench-secret-0123456789';
const API_KEY = 'bench-key-0123456789';
export const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
export const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
export const ROUND = Number(process.env.BENCH_ROUND_SECONDS ?? 2);
export const PERCL = JSON.stringify([{ Say: { text: 'Connecting you' } }, { OutDial: { destination: '+18475722071', callingNumber: '+17113334444', timeout: 30, callConnectUrl: 'https://app.example.com/connect', actionUrl: 'https://app.example.com/action' } }]);

const delivery = () => {
  const raw = JSON.stringify({
    accountId: 'AC' + 'b'.repeat(40), callId: `CA${randomUUID().replace(/-/g, '')}`, parentCallId: null, from: '+13125550147', to: '+13125550100',
    callStatus: 'ringing', direction: 'inbound', requestType: 'inboundCall', conferenceId: null, queueId: null,
  });
  return { raw, headers: { 'content-type': 'application/json', 'freeclimb-signature': signTimestampedHmac([SECRET], Math.floor(Date.now() / 1000), Buffer.from(raw)) } };
};

type F = ReturnType<typeof figures>;
export const figures = (xs: number[]) => ({ n: xs.length, p50: percentile(xs, 0.5), p99: percentile(xs, 0.99), max: Math.max(...xs) });

/**
 * Sends at RATE per second for `seconds` (after `warmup` s that are not counted); every answer must be the PerCL
 * (the plain webhook route answers its receipt instead).
 */
export const phase = async (url: string, seconds: number, warmup: number, into: number[], failures: string[]): Promise<void> => {
  const agent = new Agent({ connections: 64 });
  const inFlight: Promise<void>[] = [];
  const start = performance.now();
  const total = Math.round((seconds + warmup) * RATE);
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const d = delivery();
    const sent = performance.now();
    inFlight.push(
      request(url, { dispatcher: agent, method: 'POST', headers: d.headers, body: d.raw })
        .then(async (res) => {
          const text = await res.body.text();
          if (res.statusCode !== 200 || (text !== PERCL && !url.includes('/v1/webhooks/'))) throw new Error(`${url} answered ${res.statusCode}: ${text.slice(0, 200)}`);
          if (i >= warmup * RATE) into.push(performance.now() - sent);
        })
        // Counted, not thrown: an overloaded machine (503s) must end the run with the service stopped, not orphan it.
        .catch((err: unknown) => void failures.push((err as Error).message)),
    );
  }
  await Promise.all(inFlight);
  await agent.close();
};

/** CPU milliseconds per request, of the service process and of its PostgreSQL (what a quiet machine's latency is made of). */
export interface CpuPerRequest {
  serviceMs: number;
  postgresMs: number;
}

export interface TeeFigures {
  rate: number;
  rounds: number;
  direct: ReturnType<typeof figures>;
  webhook: ReturnType<typeof figures>;
  tee: ReturnType<typeof figures>;
  /** Requests that did not get the app's answer (or, as webhooks, a 200), with the first few reasons. */
  failures: { count: number; first: string[] };
  /** Per route (direct, webhook, tee): CPU per request; null when the service's PostgreSQL is not its own. */
  cpu: { direct: CpuPerRequest; webhook: CpuPerRequest; tee: CpuPerRequest } | null;
  addedP50: number;
  addedP99: number;
  /**
   * From the service's `ledger_tee_commit_wait_seconds` (warm-up included): how long the app's answer waited for
   * its delivery's commit, as the upper bound (ms) of the histogram bucket holding p50 and p99. Absent from older
   * results.
   */
  commitWait?: { p50: number; p99: number };
  /**
   * The floor (commit.probe.ts), in the same alternating rounds: one delivery per durable commit at the same rate,
   * on an embedded PostgreSQL of its own, no HTTP, no service. A tee answer waits for its delivery's commit, so the
   * added p99 cannot go much below this p99 on the machine of the run. Absent from older results.
   */
  commitFloor?: ReturnType<typeof figures>;
  /**
   * The same, against the stub app answering after `appMs` (a real app's time to think), in the same rounds:
   * direct to it and through the tee. Absent from older results.
   */
  thinking?: { appMs: number; direct: ReturnType<typeof figures>; tee: ReturnType<typeof figures>; addedP50: number; addedP99: number };
  /**
   * The service's audit checkpoints (LEDGER_CHECKPOINT_INTERVAL_SEC, every minute by default) that ended during a
   * measured phase: which route and round (1-based) each fell in, so that a tail it caused can be told from the
   * tee's own. Absent from older results.
   */
  checkpoints?: { route: string; round: number }[];
}

export const TEE_ROUTE_NAMES = ['direct', 'webhook', 'tee', 'direct, app thinking', 'tee, app thinking'] as const;

/** The service's count of audit checkpoints written, from /metrics. */
const checkpointCount = async (serviceUrl: string): Promise<number> => {
  const text = await (await fetch(`${serviceUrl}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })).text();
  const line = text.split('\n').find((l) => l.startsWith('ledger_audit_checkpoints_total '));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
};

/** The upper bound (ms) of the bucket holding quantile `q` of a Prometheus histogram, from /metrics text. */
export const histogramQuantileMs = (metricsText: string, name: string, q: number): number => {
  const buckets = metricsText
    .split('\n')
    .filter((l) => l.startsWith(`${name}_bucket{`))
    .map((l) => ({ le: l.match(/le="([^"]+)"/)![1]!, n: Number(l.split(' ').at(-1)) }));
  const total = buckets.find((b) => b.le === '+Inf')?.n ?? 0;
  const hit = buckets.find((b) => b.n >= q * total);
  return hit === undefined || hit.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(hit.le) * 1000;
};

/**
 * How long the thinking stub app takes to answer: a real app reads its own database or calls a service before it
 * answers with commands, so the delivery's commit, run while the app works, is mostly hidden behind it.
 */
export const APP_THINK_MS = Number(process.env.BENCH_APP_THINK_MS ?? 20);

/**
 * The local stub app: answers every request with PerCL, at once (the worst case for the tee: nothing hides the
 * delivery's commit), or after APP_THINK_MS on paths under `/think/`.
 */
export const startStubApp = async (): Promise<{ app: Server; appBase: string }> => {
  const app = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(PERCL);
      };
      if (req.url?.includes('/think/')) setTimeout(answer, APP_THINK_MS);
      else answer();
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  return { app, appBase: `http://127.0.0.1:${(app.address() as AddressInfo).port}` };
};

/** The issue's target: what the tee adds over calling the app directly, p99, at 200 calls/s. */
export const TEE_ADDED_P99_TARGET_MS = 5;

/**
 * The three routes in alternating rounds of ROUND seconds (direct, webhook, tee, direct, ...), so that a load peak
 * of a shared machine falls on all three alike instead of on whichever phase it happened to hit. `env` may point
 * the service at an existing database (DATABASE_URL); by default it runs its own embedded PostgreSQL.
 */
export const benchTee = async (opts: { seconds?: number; env?: Record<string, string>; probe?: PhaseProbe } = {}): Promise<TeeFigures> => {
  const seconds = opts.seconds ?? SECONDS;
  const { app, appBase } = await startStubApp();
  const service = await startService({ FREECLIMB_SIGNING_SECRET: SECRET, LEDGER_TEE_FREECLIMB_URL: `${appBase}/fc`, LEDGER_API_KEYS: API_KEY, ...opts.env });
  const floor = await CommitFloor.start();
  const floorSamples: number[] = [];
  try {
    const end = opts.probe?.begin('tee', service.child.pid!);
    const routes = [
      `${appBase}/fc/voice`,
      `${service.url}/v1/webhooks/freeclimb/voice`,
      `${service.url}/v1/tee/freeclimb/voice`,
      `${appBase}/fc/think/voice`,
      `${service.url}/v1/tee/freeclimb/think/voice`,
    ];
    const samples: number[][] = routes.map(() => []);
    const failures: string[] = [];
    const ownPostgres = opts.env?.DATABASE_URL === undefined;
    const cpuSec = routes.map(() => ({ service: 0, postgres: 0, requests: 0 }));
    const rounds = Math.max(1, Math.round(seconds / ROUND));
    const checkpoints: { route: string; round: number }[] = [];
    let checkpointsSoFar = await checkpointCount(service.url);
    for (let r = 0; r < rounds; r++) {
      for (const [k, url] of routes.entries()) {
        const warmup = r === 0 ? WARMUP : 0;
        if (k === 1) await floor.phase(RATE, ROUND, warmup, floorSamples);
        const meter = new CpuMeter({ service: () => [service.child.pid!], ...(ownPostgres ? { postgres: () => postgresPids(service.dataDir) } : {}) });
        await phase(url, ROUND, warmup, samples[k]!, failures);
        const share = meter.stop();
        cpuSec[k]!.service += share.cores.service! * share.wallSec;
        cpuSec[k]!.postgres += (share.cores.postgres ?? 0) * share.wallSec;
        cpuSec[k]!.requests += Math.round((ROUND + warmup) * RATE);
        const count = await checkpointCount(service.url);
        for (let c = checkpointsSoFar; c < count; c++) checkpoints.push({ route: TEE_ROUTE_NAMES[k]!, round: r + 1 });
        checkpointsSoFar = count;
      }
    }
    end?.();
    const [direct, webhook, tee, thinkDirect, thinkTee] = samples.map(figures) as [F, F, F, F, F];
    const perRequest = (k: number): CpuPerRequest => ({ serviceMs: (cpuSec[k]!.service / cpuSec[k]!.requests) * 1000, postgresMs: (cpuSec[k]!.postgres / cpuSec[k]!.requests) * 1000 });
    const cpu = ownPostgres ? { direct: perRequest(0), webhook: perRequest(1), tee: perRequest(2) } : null;
    const metricsText = await (await fetch(`${service.url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })).text();
    const commitWait = {
      p50: histogramQuantileMs(metricsText, 'ledger_tee_commit_wait_seconds', 0.5),
      p99: histogramQuantileMs(metricsText, 'ledger_tee_commit_wait_seconds', 0.99),
    };
    return {
      checkpoints, commitFloor: figures(floorSamples), commitWait, rate: RATE, rounds, direct, webhook, tee, cpu, failures: { count: failures.length, first: failures.slice(0, 3) }, addedP50: tee.p50 - direct.p50, addedP99: tee.p99 - direct.p99,
      thinking: { appMs: APP_THINK_MS, direct: thinkDirect, tee: thinkTee, addedP50: thinkTee.p50 - thinkDirect.p50, addedP99: thinkTee.p99 - thinkDirect.p99 },
    };
  } finally {
    await floor.stop();
    await service.stop();
    await new Promise((r) => app.close(r));
  }
};

if (isMain(import.meta.url)) {
  const f = await benchTee();
  const line = (name: string, x: ReturnType<typeof figures>) => `${name.padEnd(22)} n=${x.n}  p50 ${fmt(x.p50, 2)} ms  p99 ${fmt(x.p99, 2)} ms  max ${fmt(x.max, 2)} ms`;
  console.log(`tee mode at ${f.rate} calls/s against a local stub app (PerCL answer), ${f.rounds} alternating rounds of ${ROUND} s`);
  console.log(line('direct to the app', f.direct));
  console.log(line('webhook (no tee)', f.webhook));
  console.log(line('through the ledger', f.tee));
  if (f.failures.count > 0) console.log(`FAILED requests: ${f.failures.count} (${f.failures.first.join('; ')})`);
  if (f.cpu) {
    for (const [name, c] of Object.entries(f.cpu)) console.log(`CPU per request, ${name.padEnd(8)} service ${fmt(c.serviceMs, 3)} ms  postgres ${fmt(c.postgresMs, 3)} ms`);
  }
  if (f.commitFloor) console.log(`${line('commit floor', f.commitFloor)}  (ledger_append + durable commit, one delivery each, own PostgreSQL, no HTTP)`);
  if (f.commitWait) console.log(`commit wait after the app answered (service histogram, bucket bounds)  p50 <= ${fmt(f.commitWait.p50, 1)} ms  p99 <= ${fmt(f.commitWait.p99, 1)} ms`);
  console.log(`added by the ledger     p50 ${fmt(f.addedP50, 2)} ms  p99 ${fmt(f.addedP99, 2)} ms  (target p99 <= ${TEE_ADDED_P99_TARGET_MS} ms: ${f.addedP99 <= TEE_ADDED_P99_TARGET_MS ? 'met' : 'MISSED'})`);
  console.log(`audit checkpoints during the measured rounds: ${f.checkpoints?.length ? f.checkpoints.map((c) => `${c.route}, round ${c.round}`).join('; ') : 'none'}`);
  if (f.thinking) {
    const t = f.thinking;
    console.log(line(`app thinking ${t.appMs} ms`, t.direct));
    console.log(line('  through the ledger', t.tee));
    console.log(`added, app thinking    p50 ${fmt(t.addedP50, 2)} ms  p99 ${fmt(t.addedP99, 2)} ms  (target p99 <= ${TEE_ADDED_P99_TARGET_MS} ms: ${t.addedP99 <= TEE_ADDED_P99_TARGET_MS ? 'met' : 'MISSED'})`);
  }
}
