/**
 * `node dist/bench/console.compare.js --old <dir> [--legs N] [--rounds R]`: the console of another built checkout
 * (`<dir>` after `npm run build` there, e.g. the commit before a change) against this one, side by side on one
 * store: both services run at once and the rounds alternate old, new, old, new…, so that the load of a shared
 * machine falls on both alike. Prints p50/p95 of each view for each, pooled over the rounds.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sql } from 'kysely';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '../libs/db/src/index.js';
import { callLegsProjection, Projector } from '../libs/projections/src/index.js';
import { fmt, isMain, startService } from './bench-support.js';
import { appendTwentyLegTrees, measureConsole, summarize } from './console.bench.js';
import { fillLegs, QUERY_API_KEY } from './queries.bench.js';

if (isMain(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const oldDir = arg('old');
  if (!oldDir) throw new Error('--old <dir of a built checkout> is required');
  const rounds = Number(arg('rounds') ?? 4);
  const dataDir = await mkdtemp(join(tmpdir(), 'ledger-console-compare-'));
  const pgServer = await startEmbeddedPostgres({ dataDir });
  const { db } = createDatabase(pgServer.url, 8);
  const services: Awaited<ReturnType<typeof startService>>[] = [];
  try {
    await migrateToLatest(db);
    await fillLegs(db, Number(arg('legs') ?? 20_000));
    const twenty = await appendTwentyLegTrees(db);
    const projector = new Projector(db, [callLegsProjection], { batchSize: 2000 });
    await projector.init();
    await projector.rebuild();
    await projector.stop();
    await sql`VACUUM ANALYZE`.execute(db);
    const env = { DATABASE_URL: pgServer.url, LEDGER_API_KEYS: QUERY_API_KEY, LOG_LEVEL: 'error', LEDGER_PROJECTOR: 'off' };
    const old = await startService(env, [], resolve(oldDir));
    services.push(old);
    const now = await startService(env);
    services.push(now);
    const pooled = { old: new Map<string, number[]>(), new: new Map<string, number[]>() };
    for (let r = 0; r < rounds; r += 1) {
      for (const [name, s] of [['old', old], ['new', now]] as const) {
        for (const v of await measureConsole(s.url, QUERY_API_KEY, twenty, 10, true)) {
          const into = pooled[name];
          into.set(v.view, [...(into.get(v.view) ?? []), ...(v.times ?? [])]);
        }
      }
      console.log(`round ${r + 1}/${rounds} done`);
    }
    for (const view of pooled.new.keys()) {
      const o = summarize(view, pooled.old.get(view)!, true);
      const n = summarize(view, pooled.new.get(view)!, true);
      console.log(`${view.padEnd(44)} old p50 ${fmt(o.p50, 1).padStart(7)} p95 ${fmt(o.p95, 1).padStart(7)} ms   new p50 ${fmt(n.p50, 1).padStart(7)} p95 ${fmt(n.p95, 1).padStart(7)} ms`);
    }
  } finally {
    for (const s of services) await s.stop();
    await db.destroy();
    await pgServer.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
