/**
 * `node dist/bench/ingest.profile.js` (after `npm run build`): the service under 64 connections of simulated
 * signed webhooks for PROFILE_SEC seconds (default 10) with V8's CPU profiler on, then its self time grouped by
 * where the code lives (framework, driver, ledger libraries, projector, GC...). LEDGER_PROJECTOR=off to compare.
 * The profile is kept in bench/tmp/ for Chrome DevTools.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BENCH_SECRETS, SIM_SECRETS, runAutocannon, startService } from './bench-support.js';
import { signDelivery } from '../libs/simulator/src/index.js';
import { simulatedDeliveries } from './ingest.bench.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
  children?: number[];
}

const dir = resolve('bench/tmp/profile-' + Date.now());
await mkdir(dir, { recursive: true });
const deliveries = simulatedDeliveries('bench-profile', 60_000, 'live');
const service = await startService({
  ...BENCH_SECRETS,
  ...(process.env.LEDGER_PROJECTOR ? { LEDGER_PROJECTOR: process.env.LEDGER_PROJECTOR } : {}),
}, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
let i = 0;
const res = await runAutocannon({
  url: service.url,
  connections: 64,
  duration: Number(process.env.PROFILE_SEC ?? 10),
  requests: [
    {
      setupRequest: (req) => {
        const s = signDelivery({ ...deliveries[i++ % deliveries.length]!, sentAtMs: Date.now() }, SIM_SECRETS, service.url);
        return { ...req, method: 'POST', path: s.url, headers: s.headers, body: s.body };
      },
    },
  ],
});
console.log(`${res.requests.average.toFixed(0)} req/s, p50 ${res.latency.p50} ms, p99 ${res.latency.p99} ms, non-2xx ${res.non2xx}`);
await service.stop();

const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error(`no profile in ${dir}`);
const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number };
const bucket = (n: ProfileNode): string => {
  const { url, functionName } = n.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : `native ${functionName || '(anonymous)'}`;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  const lib = /dist\/(libs\/[^/]+|apps\/[^/]+\/src\/[^/]+)/.exec(url);
  if (lib) return lib[1]!;
  if (url.startsWith('node:')) return url;
  return url;
};
const self = new Map<string, number>();
let total = 0;
for (const n of profile.nodes) {
  const hits = n.hitCount ?? 0;
  total += hits;
  self.set(bucket(n), (self.get(bucket(n)) ?? 0) + hits);
}
const busy = total - (self.get('(idle)') ?? 0);
console.log(`\nself time by location (share of non-idle samples; ${busy} of ${total} samples busy), profile in ${dir}`);
for (const [k, v] of [...self].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${((v / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
