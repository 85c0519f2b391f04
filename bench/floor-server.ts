/**
 * The floor of issue 14's ingest and import targets: the cheapest honest implementation of the same guarantees,
 * run as its own process by bench/floor.probe.ts so that its CPU is read from /proc like the service's.
 *
 * `FLOOR_MODE=plain`: `POST /hook/:provider` checks an HMAC-SHA256 signature over the raw body (timestamped, in
 * constant time), parses the body (JSON or form), and stores the raw bytes under a unique dedupe key (the body's
 * sha256) through group commit: batches of up to FLOOR_BATCH_MAX deliveries, FLOOR_CONCURRENCY transactions in
 * flight (the service's defaults, 500 and 2), each batch one `INSERT … ON CONFLICT DO NOTHING` in its own
 * transaction; a request is answered only after its batch has committed (fsync and synchronous_commit are the
 * server's, on). `FLOOR_MODE=chain`: the same, and each new delivery is also a link of its call leg's hash chain
 * (sha256 of the previous link's hash and the body, a version per stream, one head row per stream), in the same
 * statement (`floor_append`). `POST /noop`: the same framework path without I/O. `POST /import?chain=0|1`: NDJSON
 * lines (the service's import format) COPY'd into a staging table per chunk of 2,000 rows, then one set-wise
 * INSERT … SELECT with ON CONFLICT dedupe (or `floor_append` over the chunk, with chain=1), one transaction per chunk,
 * the next chunk parsed while one commits.
 *
 * What it leaves out on purpose (the service does it, the floor's guarantees do not need it): translation into
 * domain events, projections, headers and metadata beyond the content type, monthly partitions, per-provider
 * signature schemes (one HMAC stands for all), metrics and logging.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import split2 from 'split2';
import { isMain } from './bench-support.js';

export const FLOOR_SECRET = 'floor-secret-0123456789abcdef';
const TOLERANCE_SEC = 300;

/** The signature header the probe's load generator sends: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>`. */
export const floorSignature = (body: string | Buffer, nowSec: number): string =>
  `t=${nowSec},v1=${createHmac('sha256', FLOOR_SECRET).update(`${nowSec}.`).update(body).digest('hex')}`;

const verify = (header: string | undefined, body: Buffer): boolean => {
  const m = header ? /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header) : null;
  if (!m || Math.abs(Date.now() / 1000 - Number(m[1])) > TOLERANCE_SEC) return false;
  const mac = createHmac('sha256', FLOOR_SECRET).update(`${m[1]}.`).update(body).digest();
  return timingSafeEqual(mac, Buffer.from(m[2]!, 'hex'));
};

/**
 * The stream a delivery belongs to: its call leg (the call id field of each simulated provider, JSON or form body),
 * else its conference (Twilio's conference-end callback names no call).
 */
const CALL_ID_FIELDS = ['callId', 'call_sid', 'CallSid', 'ConferenceSid'];
export const streamOf = (provider: string, contentType: string, body: Buffer | string): string | null => {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  let fields: Record<string, unknown>;
  if (contentType.includes('json')) {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return null;
    fields = parsed as Record<string, unknown>;
  } else {
    fields = Object.fromEntries(new URLSearchParams(text));
  }
  for (const f of CALL_ID_FIELDS) if (typeof fields[f] === 'string' && fields[f]) return `${provider}:${fields[f] as string}`;
  return null;
};

export const FLOOR_SCHEMA = `
  CREATE TABLE IF NOT EXISTS floor_receipts (
    dedupe_key bytea PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    content_type text NOT NULL,
    body bytea NOT NULL
  );
  CREATE TABLE IF NOT EXISTS floor_heads (stream text PRIMARY KEY, version int NOT NULL, hash bytea NOT NULL);
  CREATE TABLE IF NOT EXISTS floor_chain (
    dedupe_key bytea PRIMARY KEY,
    stream text NOT NULL,
    version int NOT NULL,
    hash bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    content_type text NOT NULL,
    body bytea NOT NULL,
    UNIQUE (stream, version)
  );
  CREATE UNLOGGED TABLE IF NOT EXISTS floor_staging (batch bigint NOT NULL, ord int NOT NULL, dedupe_key bytea NOT NULL, stream text, content_type text NOT NULL, body bytea NOT NULL);
  -- One call per batch. The batch's streams are locked first (transaction-scoped advisory locks, in one sorted
  -- order, so two batches cannot deadlock; no row is written for a lock), so that a concurrent batch holding the
  -- same delivery (same body, so same stream) waits; only then are the dedupe keys looked up (a new statement, a new
  -- snapshot). The new deliveries are chained per stream in arrival order (sha256 of the previous link's hash and
  -- the body), stored, and each stream's head row is written once.
  -- Custom plans for every statement: cached generic plans (unknown array lengths) scanned the chain and the heads
  -- in full per batch, so a batch's cost grew with the table.
  CREATE OR REPLACE FUNCTION floor_append(p_keys bytea[], p_streams text[], p_types text[], p_bodies bytea[]) RETURNS SETOF bytea
  LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $fn$
  DECLARE
    r record;
    cur text := NULL;
    v int;
    h bytea;
    o_ords bigint[] := '{}'; o_versions int[] := '{}'; o_hashes bytea[] := '{}';
    h_streams text[] := '{}'; h_versions int[] := '{}'; h_hashes bytea[] := '{}';
  BEGIN
    PERFORM pg_advisory_xact_lock(x.lock) FROM (SELECT DISTINCT hashtext(s) AS lock FROM unnest(p_streams) s ORDER BY 1) x;
    FOR r IN
      SELECT u.ord, u.s, u.b, coalesce(hd.version, 0) AS v0, coalesce(hd.hash, '\\x'::bytea) AS h0
      FROM (SELECT DISTINCT ON (k) k, s, b, ord FROM unnest(p_keys, p_streams, p_bodies) WITH ORDINALITY x(k, s, b, ord) ORDER BY k, ord) u
      LEFT JOIN floor_heads hd ON hd.stream = u.s
      WHERE NOT EXISTS (SELECT 1 FROM floor_chain c WHERE c.dedupe_key = u.k)
      ORDER BY u.s, u.ord
    LOOP
      IF cur IS DISTINCT FROM r.s THEN
        IF cur IS NOT NULL THEN
          h_streams := h_streams || cur; h_versions := h_versions || v; h_hashes := h_hashes || h;
        END IF;
        cur := r.s; v := r.v0; h := r.h0;
      END IF;
      v := v + 1;
      h := sha256(h || r.b);
      o_ords := o_ords || r.ord; o_versions := o_versions || v; o_hashes := o_hashes || h;
    END LOOP;
    IF cur IS NULL THEN RETURN; END IF;
    h_streams := h_streams || cur; h_versions := h_versions || v; h_hashes := h_hashes || h;
    INSERT INTO floor_chain (dedupe_key, stream, version, hash, content_type, body)
      SELECT u.k, u.s, n.v, n.h, u.t, u.b
      FROM unnest(o_ords, o_versions, o_hashes) n(ord, v, h)
      JOIN unnest(p_keys, p_streams, p_types, p_bodies) WITH ORDINALITY u(k, s, t, b, ord) ON u.ord = n.ord;
    INSERT INTO floor_heads (stream, version, hash) SELECT * FROM unnest(h_streams, h_versions, h_hashes)
      ON CONFLICT (stream) DO UPDATE SET version = EXCLUDED.version, hash = EXCLUDED.hash;
    RETURN QUERY SELECT p_keys[o] FROM unnest(o_ords) o;
  END $fn$;
`;

interface Pending {
  key: Buffer;
  stream: string;
  contentType: string;
  body: Buffer;
  resolve: (duplicate: boolean) => void;
  reject: (e: unknown) => void;
}

const PLAIN_INSERT = `INSERT INTO floor_receipts (dedupe_key, content_type, body) SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[])
  ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key`;

/** Group commit: up to `batchMax` waiting deliveries per transaction, `concurrency` transactions in flight. */
class FloorWriter {
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  constructor(
    private readonly pool: pg.Pool,
    private readonly chain: boolean,
    private readonly batchMax: number,
    private readonly concurrency: number,
  ) {}

  submit(p: Omit<Pending, 'resolve' | 'reject'>): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...p, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length) {
      const batch = this.queue.splice(0, this.batchMax);
      this.inFlight += 1;
      void this.run(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async run(batch: Pending[]): Promise<void> {
    const keys = batch.map((p) => p.key);
    const types = batch.map((p) => p.contentType);
    const bodies = batch.map((p) => p.body);
    for (let attempt = 0; ; attempt += 1) {
      try {
        // One statement outside BEGIN … COMMIT is its own transaction: the reply below comes after its commit.
        const res = this.chain
          ? await this.pool.query<{ k: Buffer }>('SELECT k FROM floor_append($1::bytea[], $2::text[], $3::text[], $4::bytea[]) k', [keys, batch.map((p) => p.stream), types, bodies])
          : await this.pool.query<{ k: Buffer }>(PLAIN_INSERT.replace('RETURNING dedupe_key', 'RETURNING dedupe_key AS k'), [keys, types, bodies]);
        const stored = new Set(res.rows.map((r) => r.k.toString('hex')));
        // A key stored by this batch is new for its first request only (a retry inside the same batch is a duplicate).
        for (const p of batch) {
          const hex = p.key.toString('hex');
          p.resolve(!stored.delete(hex));
        }
        return;
      } catch (err) {
        // The locks are taken in one order, so this should not happen; if it does, the statement rolled back whole.
        if ((err as { code?: string }).code === '40P01' && attempt < 5) continue;
        for (const p of batch) p.reject(err);
        return;
      }
    }
  }
}

/** COPY text of a bytea value (hex form, its backslash escaped for COPY). */
const copyBytea = (b: Buffer) => `\\\\x${b.toString('hex')}`;
const copyText = (v: string): string => v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));

const IMPORT_CHUNK = 2000;

/** One chunk: COPY into staging, then one set-wise statement into the store, in one transaction. Returns the rows stored. */
const importChunk = async (client: pg.PoolClient, batch: number, copy: string, chain: boolean): Promise<number> => {
  await client.query('BEGIN');
  try {
    await pipeline(Readable.from([copy]), client.query(copyFrom('COPY floor_staging (batch, ord, dedupe_key, stream, content_type, body) FROM STDIN')));
    const res = chain
      ? await client.query(
          `SELECT count(*)::int AS n FROM floor_append(
             (SELECT array_agg(dedupe_key ORDER BY ord) FROM floor_staging WHERE batch = $1), (SELECT array_agg(stream ORDER BY ord) FROM floor_staging WHERE batch = $1),
             (SELECT array_agg(content_type ORDER BY ord) FROM floor_staging WHERE batch = $1), (SELECT array_agg(body ORDER BY ord) FROM floor_staging WHERE batch = $1))`,
          [batch],
        )
      : await client.query(
          `WITH ins AS (INSERT INTO floor_receipts (dedupe_key, content_type, body)
             SELECT dedupe_key, content_type, body FROM floor_staging WHERE batch = $1 ORDER BY ord ON CONFLICT (dedupe_key) DO NOTHING RETURNING 1)
           SELECT count(*)::int AS n FROM ins`,
          [batch],
        );
    await client.query('DELETE FROM floor_staging WHERE batch = $1', [batch]);
    await client.query('COMMIT');
    return (res.rows[0] as { n: number }).n;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
};

export const startFloorServer = async (opts: { databaseUrl: string; port: number; chain: boolean; batchMax: number; concurrency: number; poolSize: number }) => {
  const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: opts.poolSize });
  await pool.query(FLOOR_SCHEMA);
  const writer = new FloorWriter(pool, opts.chain, opts.batchMax, opts.concurrency);
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  // The raw bytes are what is stored and signed: no parser of the framework's runs before the signature check.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // The import streams its upload line by line instead.
  app.addContentTypeParser('application/x-ndjson', { bodyLimit: 1024 ** 3 }, (_req, payload, done) => done(null, payload));

  app.post('/noop', async (req) => ({ ok: true, bytes: Buffer.isBuffer(req.body) ? req.body.length : 0 }));

  app.post<{ Params: { provider: string } }>('/hook/:provider', async (req, reply) => {
    const body = req.body as Buffer;
    if (!Buffer.isBuffer(body) || !verify(req.headers['x-floor-signature'] as string | undefined, body)) return reply.code(401).send({ error: 'signature' });
    const contentType = req.headers['content-type'] ?? '';
    let stream: string | null;
    try {
      stream = streamOf(req.params.provider, contentType, body);
    } catch {
      return reply.code(400).send({ error: 'unparseable body' });
    }
    if (!stream) return reply.code(400).send({ error: 'no call id' });
    const duplicate = await writer.submit({ key: createHash('sha256').update(body).digest(), stream, contentType, body });
    return { ok: true, duplicate };
  });

  app.post<{ Querystring: { chain?: string } }>('/import', async (req) => {
    const chain = req.query.chain === '1';
    const client = await pool.connect();
    let stored = 0;
    let rows = 0;
    let batch = 0;
    let lines: string[] = [];
    let pending: Promise<number> | null = null;
    const flush = async () => {
      batch += 1;
      const copy = lines.join('');
      lines = [];
      // One chunk in flight while the next is parsed.
      if (pending) stored += await pending;
      pending = importChunk(client, batch, copy, chain);
    };
    try {
      for await (const line of (req.body as Readable).pipe(split2())) {
        if (!line) continue;
        const d = JSON.parse(line as string) as { provider: string; contentType: string; body: string };
        const body = Buffer.from(d.body, 'utf8');
        const stream = chain ? streamOf(d.provider, d.contentType, d.body) : null;
        if (chain && !stream) throw new Error(`line ${rows + 1}: no call id`);
        lines.push(`${batch + 1}\t${rows}\t${copyBytea(createHash('sha256').update(body).digest())}\t${stream === null ? '\\N' : copyText(stream)}\t${copyText(d.contentType)}\t${copyBytea(body)}\n`);
        rows += 1;
        if (lines.length >= IMPORT_CHUNK) await flush();
      }
      if (lines.length) await flush();
      if (pending) stored += await pending;
    } finally {
      client.release();
    }
    return { rows, stored, duplicates: rows - stored };
  });
  await app.listen({ port: opts.port, host: '127.0.0.1' });
  return {
    close: async () => {
      await app.close();
      await pool.end();
    },
  };
};

if (isMain(import.meta.url)) {
  const e = process.env;
  const server = await startFloorServer({
    databaseUrl: e.DATABASE_URL!,
    port: Number(e.PORT),
    chain: e.FLOOR_MODE === 'chain',
    batchMax: Number(e.FLOOR_BATCH_MAX ?? 500),
    concurrency: Number(e.FLOOR_CONCURRENCY ?? 2),
    poolSize: Number(e.FLOOR_POOL_SIZE ?? 10),
  });
  process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
  console.log('floor server listening');
}
