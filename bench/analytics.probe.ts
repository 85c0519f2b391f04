/**
 * `node dist/bench/analytics.probe.js` (after `nest build ledger`): on the store in PROBE_DIR (filled by
 * rebuild.probe.js, or filled here with LEGS legs of the query bench's generator), times the query bench's 30-day
 * summary by day through the analytics repository, answered with the daily rollup and without it (hourly rollups
 * only), alternating so that both see the same machine. Prints p50 / p99 of each over ROUNDS (default 200) requests.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { AnalyticsRepository } from '../apps/ledger/src/analytics/analytics.repository.js';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '../libs/db/src/index.js';
import { callLegsProjection, Projector } from '../libs/projections/src/index.js';
import { fmt, percentile } from './bench-support.js';
import { fillLegs } from './queries.bench.js';

const ROUNDS = Number(process.env.ROUNDS ?? 200);
const END_MS = Date.parse('2026-11-01T00:00:00Z');
const dir = process.env.PROBE_DIR ?? (await mkdtemp(join(tmpdir(), 'analytics-probe-')));
const pgs = await startEmbeddedPostgres({ dataDir: dir });
const { db } = createDatabase(pgs.url, 4);
try {
  await migrateToLatest(db);
  const have = Number((await sql<{ n: string }>`SELECT count(*)::text AS n FROM events`.execute(db)).rows[0]!.n);
  if (have === 0) await fillLegs(db, Number(process.env.LEGS ?? 100_000));
  const projector = new Projector(db, [callLegsProjection]);
  await projector.init();
  await projector.rebuild();
  await projector.runUntilCaughtUp();
  await sql`VACUUM ANALYZE`.execute(db);
  const legs = Number((await sql<{ n: string }>`SELECT count(*)::text AS n FROM call_legs`.execute(db)).rows[0]!.n);
  const repo = new AnalyticsRepository(db);
  // The query bench's windows: 30 days ending on whole days inside the fill.
  const window = (i: number) => ({
    since: new Date(END_MS - (i % 5) * 86_400_000 - 30 * 86_400_000).toISOString(),
    until: new Date(END_MS - (i % 5) * 86_400_000).toISOString(),
  });
  const times = { daily: [] as number[], hourly: [] as number[] };
  for (let i = 0; i < 20; i += 1) {
    await repo.totalsByGroup(window(i), 'day');
    await repo.totalsByGroup(window(i), 'day', { daily: false });
  }
  for (let i = 0; i < ROUNDS; i += 1) {
    for (const source of ['daily', 'hourly'] as const) {
      const t0 = performance.now();
      await repo.totalsByGroup(window(i), 'day', { daily: source === 'daily' });
      times[source].push(performance.now() - t0);
    }
  }
  for (const source of ['hourly', 'daily'] as const) {
    const t = times[source].sort((a, b) => a - b);
    console.log(`30-day summary by day, ${source === 'daily' ? 'daily rollup' : 'hourly rollups only'}, ${fmt(legs)} legs: p50 ${fmt(percentile(t, 0.5), 2)} ms, p99 ${fmt(percentile(t, 0.99), 2)} ms (${t.length} requests)`);
  }
} finally {
  await db.destroy();
  await pgs.stop();
}
