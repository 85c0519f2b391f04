/**
 * `npm run bench:visibility`: how long after its 200 a webhook can be read back, under a steady background load.
 * The service runs as its own process (projector inside, as `npm start` runs it); autocannon keeps a constant
 * rate of signed jambonz webhooks going while probes post one more webhook each and measure:
 *  - read-your-writes: GET /v1/calls/{id}?minPosition=<receipt position>, the whole request, waiting included;
 *  - first sight: plain GET /v1/calls/{id} repeated every millisecond until it answers 200.
 */
import autocannon from 'autocannon';
import { randomUUID } from 'node:crypto';
import { signTimestampedHmac } from '../libs/providers/src/shared/timestamped-hmac.js';
import { fmt, percentile, startService } from './bench-support.js';

const SECRET = 'bench-secret-0123456789';
const API_KEY = 'bench-key-0123456789';
const RATE = Number(process.env.BENCH_RATE ?? 200);
const PROBES = Number(process.env.BENCH_PROBES ?? 200);

const body = (callSid: string, status: string) =>
  JSON.stringify({
    call_sid: callSid, direction: 'outbound', from: '+14155550123', to: '+16175550000', call_id: randomUUID(), sip_status: 180,
    call_status: status, account_sid: 'a749fdf4-139c-426a-83af-461f6bdd3f5c', application_sid: '6dc3f73c-423a-4983-ad05-6d36abdcdde0',
  });
const headers = (raw: string) => ({
  'content-type': 'application/json',
  'jambonz-signature': signTimestampedHmac([SECRET], Math.floor(Date.now() / 1000), Buffer.from(raw)),
});


export interface VisibilityFigures {
  rate: number;
  readYourWrites: { p50: number; p99: number; max: number };
  firstSight: { p50: number; p99: number; max: number };
}

export const benchVisibility = async (): Promise<VisibilityFigures> => {
  const service = await startService({ JAMBONZ_WEBHOOK_SECRET: SECRET, LEDGER_API_KEYS: API_KEY });
  const auth = { authorization: `Bearer ${API_KEY}` };
  // Without a callback autocannon returns its running instance (typed as a promise of the result).
  const background = autocannon({
    url: service.url, connections: 8, overallRate: RATE, duration: 3600,
    requests: [{ setupRequest: () => { const raw = body(randomUUID(), 'ringing'); return { method: 'POST', path: '/v1/webhooks/jambonz/status', headers: headers(raw), body: raw }; } }],
  }) as unknown as { stop(): void };
  try {
    const ryw: number[] = [];
    const sight: number[] = [];
    for (let i = 0; i < PROBES; i++) {
      for (const mode of ['ryw', 'sight'] as const) {
        const callSid = randomUUID();
        const raw = body(callSid, 'ringing');
        const res = await fetch(`${service.url}/v1/webhooks/jambonz/status`, { method: 'POST', headers: headers(raw), body: raw });
        if (res.status !== 200) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
        const { position } = (await res.json()) as { position: string };
        const acked = performance.now();
        if (mode === 'ryw') {
          const r = await fetch(`${service.url}/v1/calls/${callSid}?provider=jambonz&minPosition=${position}`, { headers: auth });
          if (r.status !== 200) throw new Error(`read-your-writes answered ${r.status}`);
          ryw.push(performance.now() - acked);
        } else {
          for (;;) {
            const r = await fetch(`${service.url}/v1/calls/${callSid}?provider=jambonz`, { headers: auth });
            await r.arrayBuffer();
            if (r.status === 200) break;
            await new Promise((resolve) => setTimeout(resolve, 1));
          }
          sight.push(performance.now() - acked);
        }
      }
    }
    const fig = (xs: number[]) => ({ p50: percentile(xs, 0.5), p99: percentile(xs, 0.99), max: Math.max(...xs) });
    return { rate: RATE, readYourWrites: fig(ryw), firstSight: fig(sight) };
  } finally {
    background.stop();
    await service.stop();
  }
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const f = await benchVisibility();
  const line = (name: string, x: { p50: number; p99: number; max: number }) =>
    console.log(`${name.padEnd(18)} p50 ${fmt(x.p50, 1)} ms   p99 ${fmt(x.p99, 1)} ms   max ${fmt(x.max, 1)} ms`);
  console.log(`\nwebhook 200 -> visible to queries, ${PROBES} probes each, under ${fmt(f.rate)} webhooks/s of background load`);
  line('read-your-writes', f.readYourWrites);
  line('first sight', f.firstSight);
}
