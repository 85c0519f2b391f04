import { mkdtemp } from 'node:fs/promises';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '../../dist/libs/db/src/index.js';
import { sql } from 'kysely';
const dataDir = '/tmp/exp/pgx';
const fresh = !(await import('node:fs')).existsSync(dataDir);
const s = await startEmbeddedPostgres({ dataDir });
console.log(s.url);
const { db } = createDatabase(s.url, 4);
if (fresh) {
  process.env.BENCH_EVENTS='100000';
}
const q = async (t) => { const r = await sql.raw('EXPLAIN (ANALYZE, BUFFERS) ' + t).execute(db); console.log(r.rows.map(x=>x['QUERY PLAN']).join('\n')); };
await q(`SELECT global_position, transaction_id::text AS transaction_id, event_id, type, data, metadata, occurred_at, received_at FROM events
    WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      AND (transaction_id, global_position) > ('0'::xid8, '0'::bigint)
    ORDER BY transaction_id, global_position LIMIT 10000`);
await db.destroy(); await s.stop();
