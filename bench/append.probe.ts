/**
 * `node dist/bench/append.probe.js` (after `npm run build`): times EventStoreRepository.appendBatch alone, per
 * batch size (SIZES=1,10,64,200,1000), on a fresh embedded PostgreSQL; the probe behind the ingest profile.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '../libs/db/src/index.js';
import { EventStoreRepository } from '../libs/event-store/src/index.js';
import { translateJambonzWebhook } from '../libs/providers/src/jambonz/jambonz.translate.js';

// PGLOG=1 logs every statement's plan and duration (auto_explain, nested statements of ledger_append included).
const explain = ['-c', 'session_preload_libraries=auto_explain', '-c', 'auto_explain.log_min_duration=0', '-c', 'auto_explain.log_nested_statements=on'];
const pgs = await startEmbeddedPostgres({
  dataDir: await mkdtemp(join(tmpdir(), 'probe-')),
  flags: process.env.PGLOG ? explain : [],
  log: (l) => {
    if (process.env.PGLOG && l.includes('duration')) console.log(l.slice(0, 160).replace(/\s+/g, ' '));
  },
});
const { db } = createDatabase(pgs.url, 4);
await migrateToLatest(db);
const store = new EventStoreRepository(db);
const mk = () => {
  const body = Buffer.from(JSON.stringify({ call_sid: randomUUID(), call_status: 'ringing', direction: 'outbound', from: '1', to: '2', account_sid: 'a', sip_status: 180 }));
  return {
    receipt: { provider: 'jambonz' as const, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: 'status', query: '', headers: { a: 'b' }, remoteAddr: null, receivedAt: new Date(), source: 'live' as const, signatureStatus: 'verified' as const, signatureTimestamp: null },
    events: translateJambonzWebhook(body, { provider: 'jambonz', path: 'status', query: new URLSearchParams(), contentType: null }),
  };
};
for (const size of (process.env.SIZES ?? "1,10,64,200,1000").split(",").map(Number)) {
  const rounds = 20;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) await store.appendBatch(Array.from({ length: size }, mk));
  const ms = (performance.now() - t0) / rounds;
  console.log(`batch ${size}: ${ms.toFixed(1)} ms/batch, ${((size * 1000) / ms).toFixed(0)} rec/s`);
}
await db.destroy();
await pgs.stop();
