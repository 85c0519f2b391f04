/**
 * `node dist/bench/ingest-cpu.probe.js` (after `nest build ledger`): the service's own CPU per live delivery on the
 * write path, phase by phase, without HTTP, PostgreSQL or the projector, so that a change of a few µs shows through a
 * shared machine's noise (the load of other tenants shifts wall time, much less the CPU time of a tight loop).
 * Simulated signed deliveries (every provider, as `bench:ingest` sends them) go through, in batches of BATCH:
 *
 *   verify     the provider adapter's signature check over the raw bytes (what WebhookSignatureGuard runs)
 *   record     pickHeaders + buildWebhookRecord: receipt, translation, event checks (the command handler's work)
 *   append     EventStoreRepository.appendBatch up to the wire: dedupe keys, canonical texts, seals, chain content,
 *              the statement's parameters, each prepared as node-postgres prepares it (`prepareValue`) and encoded
 *              to UTF-8 bytes. The database is a stand-in driver that answers every receipt as new (no I/O).
 *   answer     the 200 body's JSON
 *
 * With OLD_DIR=<another built checkout> the same deliveries go through that build's modules too, rounds alternated
 * (old, new, new, old, ...), and both are printed side by side. ROUNDS (6), DELIVERIES (6,000 a round), BATCH (24:
 * about a group commit's size at 64 connections). The stand-in driver only replaces the database's answer; all the
 * service's code up to the socket runs as in the service.
 *
 * PG=1: appendBatch goes to a real embedded PostgreSQL instead (a fresh database per build, one connection, each
 * round new deliveries so that nothing is a duplicate), and a `postgres` row adds the CPU of that backend per
 * delivery (/proc), for the parameter shapes' cost on the server's side; `append` then includes the driver's reads.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CompiledQuery, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, type DatabaseConnection, type Driver, type QueryResult } from 'kysely';
import { signDelivery } from '../libs/simulator/src/index.js';
import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { SIM_SECRETS, startBenchServer } from './bench-support.js';
import { simulatedDeliveries } from './ingest.bench.js';

const rounds = Number(process.env.ROUNDS ?? 6);
const perRound = Number(process.env.DELIVERIES ?? 6000);
const batchSize = Number(process.env.BATCH ?? 24);
const publicUrl = 'http://127.0.0.1:3000';

interface Build {
  name: string;
  /** With PG=1: the backend's pid, read for its CPU. */
  backend?: number;
  providers: { get(p: string): { verify(i: { rawBody: Buffer; headers: Record<string, string>; url: string; nowSec: number }): { status: string; timestamp?: Date | null } } };
  buildWebhookRecord: (input: unknown, providers: unknown) => unknown;
  pickHeaders: (h: Record<string, string>) => Record<string, string>;
  store: { appendBatch(records: unknown[]): Promise<unknown[]> };
}

/** Answers `ledger_append` as if every receipt were new; prepares and encodes the parameters as node-postgres would. */
class WireDriver implements Driver {
  bytes = 0;
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return {
      executeQuery: async <R>(q: CompiledQuery): Promise<QueryResult<R>> => {
        for (const p of q.parameters) {
          const v = prepare(p);
          if (typeof v === 'string') this.bytes += Buffer.byteLength(v);
          else if (Buffer.isBuffer(v)) this.bytes += v.length;
        }
        const receipts = (q.parameters[0] as unknown[]).length;
        const rows = Array.from({ length: receipts }, (_, i) => ({ ord: i + 1, receipt_id: String(1000 + i), duplicate: false, last_position: String(5000 + i), types: ['CallRinging'] }));
        return { rows: rows as R[] };
      },
      streamQuery: () => {
        throw new Error('not used');
      },
    };
  }
  async beginTransaction(): Promise<void> {}
  async commitTransaction(): Promise<void> {}
  async rollbackTransaction(): Promise<void> {}
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

// node-postgres's own parameter preparation (arrays become array literals, Buffers `\x` hex inside them).
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (v: unknown) => unknown };
const prepare = (v: unknown) => prepareValue(v);

const driver = new WireDriver();
const db = new Kysely<unknown>({
  dialect: { createAdapter: () => new PostgresAdapter(), createDriver: () => driver, createIntrospector: (k) => new PostgresIntrospector(k), createQueryCompiler: () => new PostgresQueryCompiler() },
});

const server = process.env.PG ? await startBenchServer('ingest-cpu-probe-') : null;
const load = async (name: string, dir: string): Promise<Build> => {
  const mod = async (p: string) => import(pathToFileURL(resolve(dir, 'dist', p)).href);
  const providersLib = await mod('libs/providers/src/index.js');
  const factory = await mod('apps/ledger/src/webhooks/webhook-record.factory.js');
  const store = await mod('libs/event-store/src/index.js');
  const secrets = { freeclimb: [SIM_SECRETS.freeclimb], jambonz: [SIM_SECRETS.jambonz], twilio: [SIM_SECRETS.twilio], restcomm: [SIM_SECRETS.restcomm] };
  let target: Kysely<unknown> = db;
  let backend: number | undefined;
  if (server) {
    const dbLib = await mod('libs/db/src/index.js');
    const handle = dbLib.createDatabase(await server.freshDatabase(`ingest_cpu_${name}`), 1);
    await dbLib.migrateToLatest(handle.db);
    target = handle.db;
    backend = (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(target)).rows[0]!.pid;
  }
  return {
    name,
    backend,
    providers: new providersLib.ProviderRegistry(secrets, publicUrl),
    buildWebhookRecord: factory.buildWebhookRecord,
    pickHeaders: factory.pickHeaders,
    store: new store.EventStoreRepository(target),
  };
};
/** User + system CPU of a process, µs. */
const procCpu = (pid: number): number => {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1_000_000) / 100;
};

const builds = [...(process.env.OLD_DIR ? [await load('old', process.env.OLD_DIR)] : []), await load('new', process.cwd())];
// With PG=1 every round (and the warm-up) gets deliveries of its own: a duplicate would cost the database less.
const allDeliveries = simulatedDeliveries('bench-cpu', perRound * (server ? rounds + 1 : 1), 'live').map((d) => {
  const s = signDelivery({ ...d, sentAtMs: Date.now() }, SIM_SECRETS, publicUrl);
  const [pathname, query = ''] = s.url.split(/\?(.*)/s, 2) as [string, string?];
  const provider = d.provider;
  return {
    provider,
    url: s.url,
    query,
    path: pathname.slice('/v1/webhooks/'.length + provider.length).replace(/^\/+/, ''),
    body: s.body,
    headers: { ...s.headers, host: '127.0.0.1:3000', 'content-length': String(s.body.length), 'user-agent': 'autocannon', connection: 'keep-alive' } as Record<string, string>,
  };
});

const roundDeliveries = (r: number) => (server ? allDeliveries.slice((r + 1) * perRound, (r + 2) * perRound) : allDeliveries);

const PHASES = ['verify', 'record', 'append', 'answer', 'postgres'] as const;
type Phase = (typeof PHASES)[number];
const cpuNow = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const runRound = async (b: Build, deliveries: typeof allDeliveries): Promise<Record<Phase, number>> => {
  const spent: Record<Phase, number> = { verify: 0, record: 0, append: 0, answer: 0, postgres: 0 };
  const pg0 = b.backend ? procCpu(b.backend) : 0;
  const nowSec = Math.floor(Date.now() / 1000);
  for (let i = 0; i < deliveries.length; i += batchSize) {
    const slice = deliveries.slice(i, i + batchSize);
    let t = cpuNow();
    const verdicts = slice.map((d) => b.providers.get(d.provider).verify({ rawBody: d.body, headers: d.headers, url: d.url, nowSec }));
    let t2 = cpuNow();
    spent.verify += t2 - t;
    t = t2;
    const receivedAt = new Date();
    const records = slice.map((d, k) => {
      const v = verdicts[k]!;
      return b.buildWebhookRecord(
        {
          provider: d.provider,
          rawBody: d.body,
          contentType: d.headers['content-type'] ?? null,
          path: d.path,
          query: d.query,
          headers: b.pickHeaders(d.headers),
          remoteAddr: '127.0.0.1',
          receivedAt,
          signature: v.status === 'verified' ? { status: 'verified', timestamp: v.timestamp } : { status: 'unverified', timestamp: null },
          source: 'live',
        },
        b.providers,
      );
    });
    t2 = cpuNow();
    spent.record += t2 - t;
    t = t2;
    const outcomes = await b.store.appendBatch(records);
    t2 = cpuNow();
    spent.append += t2 - t;
    t = t2;
    for (const o of outcomes) JSON.stringify(o);
    spent.answer += cpuNow() - t;
  }
  if (b.backend) spent.postgres = procCpu(b.backend) - pg0;
  return spent;
};

// One warm-up round each (JIT, module caches), not counted.
for (const b of builds) await runRound(b, roundDeliveries(-1));
const totals = new Map(builds.map((b) => [b.name, { verify: 0, record: 0, append: 0, answer: 0, postgres: 0 } as Record<Phase, number>]));
for (let r = 0; r < rounds; r += 1) {
  const order = r % 2 === 0 ? builds : [...builds].reverse();
  for (const b of order) {
    const s = await runRound(b, roundDeliveries(r));
    const t = totals.get(b.name)!;
    for (const p of PHASES) t[p] += s[p];
  }
}
const n = rounds * perRound;
console.log(`${n} deliveries per build in batches of ${batchSize}, ${rounds} rounds alternated; CPU µs per delivery (user + system, GC included)`);
console.log(['phase', ...builds.map((b) => b.name)].map((s) => s.padStart(8)).join(' '));
for (const p of [...PHASES.filter((q) => q !== 'postgres' || server), 'total node', ...(server ? ['total'] : [])]) {
  const cells = builds.map((b) => {
    const t = totals.get(b.name)!;
    const node = t.verify + t.record + t.append + t.answer;
    const v = p === 'total node' ? node : p === 'total' ? node + t.postgres : t[p as Phase];
    return (v / n).toFixed(1);
  });
  console.log([p, ...cells].map((s) => s.padStart(8)).join(' '));
}
await db.destroy();
if (server) await server.stop();
process.exit(0);
