/**
 * `node dist/bench/rebuild.probe.js` (after `npm run build`): fills LEGS legs (default 100,000) with the query
 * bench's generator into PROBE_DIR (kept, so that later runs reuse it), then times a full rebuild and logs every
 * statement slower than SLOW_MS (default 500) with its plan (auto_explain). ANALYZE=1 analyzes the tables first.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '../libs/db/src/index.js';
import { callLegsProjection, Projector } from '../libs/projections/src/index.js';
import { fillLegs } from './queries.bench.js';

const slow = process.env.SLOW_MS ?? '500';
const dir = process.env.PROBE_DIR ?? (await mkdtemp(join(tmpdir(), 'rebuild-probe-')));
const pgs = await startEmbeddedPostgres({
  dataDir: dir,
  flags: ['-c', 'session_preload_libraries=auto_explain', '-c', `auto_explain.log_min_duration=${slow}`, '-c', 'auto_explain.log_nested_statements=on'],
  log: (l) => {
    if (l.includes('duration')) console.log(l);
  },
});
const { db } = createDatabase(pgs.url, 8);
await migrateToLatest(db);
const have = Number((await sql<{ n: string }>`SELECT count(*)::text AS n FROM events`.execute(db)).rows[0]!.n);
if (have === 0) await fillLegs(db, Number(process.env.LEGS ?? 100_000));
if (process.env.ANALYZE) await sql`ANALYZE`.execute(db);
const events = Number((await sql<{ n: string }>`SELECT count(*)::text AS n FROM events`.execute(db)).rows[0]!.n);
const projector = new Projector(db, [callLegsProjection]);
await projector.init();
const t0 = performance.now();
await projector.rebuild();
const s = (performance.now() - t0) / 1000;
console.log(`rebuild: ${events} events in ${s.toFixed(1)} s = ${(events / s).toFixed(0)} events/s (dir ${dir})`);
await db.destroy();
await pgs.stop();
