/**
 * `node dist/bench/queries.order.probe.js --data-dir STORE [--rounds 3] [--rotate]`: the query bench's two ways of
 * measuring, side by side on one store (filled by `npm run bench:queries -- --data-dir STORE`; a PostgreSQL already
 * running on it is used as it is). Each round starts a fresh service for each way, as `npm run bench` does:
 * route after route (200 requests each, the bench before) and interleaved (`measureQueries`, BENCH_QUERY_REQUESTS
 * per route). With `--rotate`, round k of the route-after-route way starts at route k instead of the first page,
 * which tells a tail that belongs to a route from one that belongs to whichever route is measured first.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../libs/db/src/index.js';
import { fmt, startService } from './bench-support.js';
import { QUERY_API_KEY, measureQueries, measureRouteAfterRoute, queryRoutes, type LegFill, type RouteLatency } from './queries.bench.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const dataDir = arg('data-dir');
if (!dataDir) throw new Error('--data-dir STORE (filled by bench:queries)');
const ROUNDS = Number(arg('rounds') ?? 3);
const ROTATE = process.argv.includes('--rotate');

const fill = JSON.parse(await readFile(join(dataDir, 'fill.json'), 'utf8')) as LegFill;
const labels = queryRoutes(fill).map((r) => r.label);
const pgServer = await startEmbeddedPostgres({ dataDir, attach: true });
const results: { round: number; way: string; first: string; routes: RouteLatency[] }[] = [];
try {
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const way of ['route after route, 200', 'interleaved'] as const) {
      const service = await startService({ DATABASE_URL: pgServer.url, LEDGER_API_KEYS: QUERY_API_KEY });
      try {
        console.log(`\n-- round ${round + 1}, ${way}`);
        const order = labels.map((_, j) => (j + (ROTATE ? round : 0)) % labels.length);
        const routes = way === 'interleaved' ? await measureQueries(service.url, fill) : await measureRouteAfterRoute(service.url, fill, 200, order);
        results.push({ round, way, first: way === 'interleaved' ? '—' : labels[order[0]!]!, routes });
      } finally {
        await service.stop();
      }
    }
  }
} finally {
  await pgServer.stop();
}
console.log(`\np99 ms per route and round (the route measured first in a route-after-route round is marked *)`);
console.log(`| way | round | ${labels.map((l) => l.replace('GET /v1/', '')).join(' | ')} |`);
console.log(`| --- | --- | ${labels.map(() => '---').join(' | ')} |`);
for (const r of results) {
  const cell = (l: string) => {
    const x = r.routes.find((q) => q.route === l)!;
    return `${fmt(x.p99, 1)}${r.first === l ? ' *' : ''} (p50 ${fmt(x.p50, 1)})`;
  };
  console.log(`| ${r.way} | ${r.round + 1} | ${labels.map(cell).join(' | ')} |`);
}
