/**
 * `npm run bench:tee`: the latency the ledger adds in tee mode. A local stub app answers PerCL at once; signed
 * FreeClimb deliveries are sent at a constant rate (open loop: one every 1/RATE s, whatever the answers do)
 * first straight to the app, then through `/v1/tee/freeclimb/voice` of the service (its own process, embedded
 * PostgreSQL, projector inside). Each phase prints p50/p99/max of the whole request; the difference is what the
 * ledger adds (verify, store with the group commit in parallel with the app, forward, answer).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { signTimestampedHmac } from '../libs/providers/src/shared/timestamped-hmac.js';
import { fmt, isMain, percentile, startService } from './bench-support.js';

const SECRET = 'bench-secret-0123456789';
const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const PERCL = JSON.stringify([{ Say: { text: 'Connecting you' } }, { OutDial: { destination: '+18475722071', callingNumber: '+17113334444', timeout: 30, callConnectUrl: 'https://app.example.com/connect', actionUrl: 'https://app.example.com/action' } }]);

const delivery = () => {
  const raw = JSON.stringify({
    accountId: 'AC' + 'b'.repeat(40), callId: `CA${randomUUID().replace(/-/g, '')}`, parentCallId: null, from: '+13125550147', to: '+13125550100',
    callStatus: 'ringing', direction: 'inbound', requestType: 'inboundCall', conferenceId: null, queueId: null,
  });
  return { raw, headers: { 'content-type': 'application/json', 'freeclimb-signature': signTimestampedHmac([SECRET], Math.floor(Date.now() / 1000), Buffer.from(raw)) } };
};

const figures = (xs: number[]) => ({ n: xs.length, p50: percentile(xs, 0.5), p99: percentile(xs, 0.99), max: Math.max(...xs) });

/** Sends at RATE per second for `seconds` (after a warm-up that is not counted); every answer must be the PerCL. */
const phase = async (url: string, seconds: number): Promise<number[]> => {
  const agent = new Agent({ connections: 64 });
  const latencies: number[] = [];
  const inFlight: Promise<void>[] = [];
  const start = performance.now();
  const total = Math.round((seconds + WARMUP) * RATE);
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const d = delivery();
    const sent = performance.now();
    inFlight.push(
      request(url, { dispatcher: agent, method: 'POST', headers: d.headers, body: d.raw }).then(async (res) => {
        const text = await res.body.text();
        if (res.statusCode !== 200 || (text !== PERCL && !url.includes('/v1/webhooks/'))) throw new Error(`${url} answered ${res.statusCode}: ${text.slice(0, 200)}`);
        if (i >= WARMUP * RATE) latencies.push(performance.now() - sent);
      }),
    );
  }
  await Promise.all(inFlight);
  await agent.close();
  return latencies;
};

export interface TeeFigures {
  rate: number;
  direct: ReturnType<typeof figures>;
  webhook: ReturnType<typeof figures>;
  tee: ReturnType<typeof figures>;
  addedP50: number;
  addedP99: number;
}

export const benchTee = async (): Promise<TeeFigures> => {
  const app = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(PERCL);
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appBase = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  const service = await startService({ FREECLIMB_SIGNING_SECRET: SECRET, LEDGER_TEE_FREECLIMB_URL: `${appBase}/fc` });
  try {
    const direct = figures(await phase(`${appBase}/fc/voice`, SECONDS));
    // The same deliveries as plain webhooks: what the group commit costs a provider today, without tee.
    const webhook = figures(await phase(`${service.url}/v1/webhooks/freeclimb/voice`, SECONDS));
    const tee = figures(await phase(`${service.url}/v1/tee/freeclimb/voice`, SECONDS));
    return { rate: RATE, direct, webhook, tee, addedP50: tee.p50 - direct.p50, addedP99: tee.p99 - direct.p99 };
  } finally {
    await service.stop();
    await new Promise((r) => app.close(r));
  }
};

if (isMain(import.meta.url)) {
  const f = await benchTee();
  const line = (name: string, x: ReturnType<typeof figures>) => `${name.padEnd(22)} n=${x.n}  p50 ${fmt(x.p50, 2)} ms  p99 ${fmt(x.p99, 2)} ms  max ${fmt(x.max, 2)} ms`;
  console.log(`tee mode at ${f.rate} calls/s against a local stub app (PerCL answer)`);
  console.log(line('direct to the app', f.direct));
  console.log(line('webhook (no tee)', f.webhook));
  console.log(line('through the ledger', f.tee));
  console.log(`added by the ledger     p50 ${fmt(f.addedP50, 2)} ms  p99 ${fmt(f.addedP99, 2)} ms`);
}
