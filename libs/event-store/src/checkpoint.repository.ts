import { sql, type Kysely, type RawBuilder } from 'kysely';
import { createHash } from 'node:crypto';
import { LoopSlicer, type Database, type DB } from '@lib/db';
import { unavailable } from '@lib/ledger';
import {
  checkpointDigest,
  checkpointMessage,
  headLine,
  sortedHeads,
  xidBefore,
  type CheckpointBody,
  type CheckpointHead,
  type CheckpointRecord,
  type CheckpointSigner,
} from './checkpoint.js';

/** Serialises checkpoint creation across processes (two-key advisory lock: ledger, checkpoints). */
const LOCK = sql`pg_advisory_xact_lock(20261201, 200)`;

interface WindowHead extends CheckpointHead {
  firstVersion: number;
  position: string;
}

/** SQL of the checkpoint tables. The pure rules live in checkpoint.ts. */
export class CheckpointRepository {
  constructor(private readonly db: Database) {}

  /**
   * Takes a checkpoint of the transactions that ended since the last one. `onlyIfChanged`: none is written when
   * no event was appended (the periodic timer); on demand one is always written, so that its time is signed.
   *
   * The window's heads are read before the checkpoint's transaction, a page of events at a time with a pause
   * after each: a minute of traffic is tens of thousands of events, and reading and writing them in one go held a
   * core and the service's event loop for 100–250 ms at once, which every webhook and tee answer then waited
   * behind (bench/profile-notes.md). The window is final before it is read (every transaction below the snapshot's
   * xmin has ended), so reading it outside the transaction reads the same rows; the transaction that writes keeps
   * the advisory lock and takes the checkpoint only if no other process took one meanwhile, else the window is
   * read again from the new last checkpoint.
   */
  async create(signer: CheckpointSigner | null, onlyIfChanged: boolean, waitMs = 5000): Promise<CheckpointRecord | null> {
    for (let attempt = 1; ; attempt++) {
      const last = await this.db.selectFrom('ledger_checkpoints').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirst();
      // Every transaction below the snapshot's xmin has ended: the window is final, nothing can still land in it.
      // On demand, wait (a little) until every transaction that had started by now has ended, so that the
      // checkpoint covers everything committed before it was asked for.
      let snap = await snapshotNow(this.db);
      if (!onlyIfChanged) {
        const target = snap.xmax;
        const deadline = Date.now() + waitMs;
        while (xidBefore(snap.xmin, target) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 10));
          snap = await snapshotNow(this.db);
        }
      }
      const fromXmin = last?.to_xmin ?? '0';
      const toXmin = xidBefore(fromXmin, snap.xmin) ? snap.xmin : fromXmin;
      const heads = await pagedWindowHeads(this.db, fromXmin, toXmin, this.pageRows);
      if (onlyIfChanged && heads.length === 0) return null;
      const written = await this.write(signer, last, { fromXmin, toXmin, createdAt: snap.now }, heads);
      // Another process took a checkpoint while this one read: its window is now the start of ours, and the next
      // try reads only what that one left. A periodic checkpoint just leaves the minute to the other process.
      if (written !== null) return written;
      if (onlyIfChanged) return null;
      if (attempt >= 20) throw unavailable('other processes kept taking checkpoints while this one was written; retry');
    }
  }

  /** Rows per page of the window's events (tests make it small, to cross pages). */
  pageRows = WINDOW_PAGE_ROWS;

  private async write(
    signer: CheckpointSigner | null,
    last: { seq: string; position: string; stream_count: string; digest: Buffer } | undefined,
    window: { fromXmin: string; toXmin: string; createdAt: Date },
    heads: WindowHead[],
  ): Promise<CheckpointRecord | null> {
    // The digest's lines and the rows to insert, made in slices of the event loop (LoopSlicer): tens of thousands
    // of heads took the loop for 17–33 ms in one go.
    const slicer = new LoopSlicer();
    const sorted = sortedHeads(heads);
    const digestOfHeads = createHash('sha256');
    let position = BigInt(last?.position ?? '0');
    let newStreams = 0;
    const names: string[] = [];
    const versions: number[] = [];
    const hashes: string[] = [];
    for (const h of sorted) {
      if (slicer.due) await slicer.yield();
      digestOfHeads.update(headLine(h), 'utf8');
      if (BigInt(h.position) > position) position = BigInt(h.position);
      if (h.firstVersion === 1) newStreams += 1;
      names.push(h.streamName);
      versions.push(h.version);
      hashes.push(h.hash);
    }
    const body: CheckpointBody = {
      seq: Number(last?.seq ?? 0) + 1,
      createdAt: window.createdAt.toISOString(),
      fromXmin: window.fromXmin,
      toXmin: window.toXmin,
      position: position.toString(),
      streamCount: Number(last?.stream_count ?? 0) + newStreams,
      headCount: heads.length,
      headsSha256: digestOfHeads.digest('hex'),
      prevDigest: last ? last.digest.toString('hex') : null,
    };
    const digest = checkpointDigest(body);
    const signature = signer ? signer.sign(checkpointMessage(body)) : null;
    return this.db.transaction().execute(async (trx) => {
      await sql`SELECT ${LOCK}`.execute(trx);
      const now = await trx.selectFrom('ledger_checkpoints').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
      if ((now?.seq ?? null) !== (last?.seq ?? null)) return null;
      await trx
        .insertInto('ledger_checkpoints')
        .values({
          seq: body.seq,
          created_at: body.createdAt,
          from_xmin: body.fromXmin,
          to_xmin: body.toXmin,
          position: body.position,
          stream_count: body.streamCount,
          head_count: body.headCount,
          heads_sha256: Buffer.from(body.headsSha256, 'hex'),
          prev_digest: body.prevDigest ? Buffer.from(body.prevDigest, 'hex') : null,
          digest: Buffer.from(digest, 'hex'),
          signature,
          public_key_sha256: signer?.publicKeySha256 ?? null,
        })
        .execute();
      // Three arrays a statement instead of a VALUES row per head (four parameters each), in statements of
      // HEADS_PER_STATEMENT so that neither the driver's serialisation nor one statement holds a core for long.
      for (let i = 0; i < names.length; i += HEADS_PER_STATEMENT) {
        const j = i + HEADS_PER_STATEMENT;
        await sql`
          INSERT INTO ledger_checkpoint_heads (seq, stream_name, version, hash)
          SELECT ${body.seq}::bigint, h.name, h.version, decode(h.hash, 'hex')
          FROM unnest(${names.slice(i, j)}::text[], ${versions.slice(i, j)}::int[], ${hashes.slice(i, j)}::text[]) AS h(name, version, hash)`.execute(trx);
      }
      return { ...body, digest, signature: signature ? signature.toString('base64') : null };
    });
  }

  /** Checkpoints in sequence order, after `afterSeq`, at most `limit`. */
  async list(afterSeq: number, limit: number): Promise<CheckpointRecord[]> {
    const rows = await this.db.selectFrom('ledger_checkpoints').selectAll().where('seq', '>', String(afterSeq)).orderBy('seq').limit(limit).execute();
    return rows.map((r) => ({
      seq: Number(r.seq),
      createdAt: r.created_at.toISOString(),
      fromXmin: String(r.from_xmin),
      toXmin: String(r.to_xmin),
      position: String(r.position),
      streamCount: Number(r.stream_count),
      headCount: r.head_count,
      headsSha256: r.heads_sha256.toString('hex'),
      prevDigest: r.prev_digest ? r.prev_digest.toString('hex') : null,
      digest: r.digest.toString('hex'),
      signature: r.signature ? r.signature.toString('base64') : null,
    }));
  }

  async latest(): Promise<CheckpointRecord | null> {
    const r = await this.db.selectFrom('ledger_checkpoints').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
    return r ? ((await this.list(Number(r.seq) - 1, 1))[0] ?? null) : null;
  }

  /** The heads a checkpoint signed, as stored. */
  async heads(seq: number, streamNames?: readonly string[]): Promise<CheckpointHead[]> {
    let q = this.db.selectFrom('ledger_checkpoint_heads').select(['stream_name', 'version', 'hash']).where('seq', '=', String(seq));
    if (streamNames) q = q.where('stream_name', 'in', streamNames.length ? [...streamNames] : ['']);
    const rows = await q.execute();
    return rows.map((r) => ({ streamName: r.stream_name, version: r.version, hash: r.hash.toString('hex') }));
  }

  /** The heads of a checkpoint's window recomputed from the events as they are now. */
  async recomputeHeads(c: CheckpointBody, streamNames?: readonly string[]): Promise<CheckpointHead[]> {
    return (await windowHeads(this.db, c.fromXmin, c.toXmin, streamNames)).map(({ streamName, version, hash }) => ({ streamName, version, hash }));
  }
}

/** Heads per insert statement of a checkpoint. */
export const HEADS_PER_STATEMENT = 2000;

/** Events per page when a checkpoint reads its window: a few milliseconds of one core each. */
export const WINDOW_PAGE_ROWS = 2000;

const snapshotNow = async (db: Kysely<DB>): Promise<{ xmin: string; xmax: string; now: Date }> =>
  (
    await sql<{ xmin: string; xmax: string; now: Date }>`
      SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, pg_snapshot_xmax(pg_current_snapshot())::text AS xmax, clock_timestamp() AS now`.execute(db)
  ).rows[0]!;

/**
 * windowHeads, read a page of events at a time in commit order (the events_commit_order index) and folded here,
 * with a pause after each page as long as the page took, so that a checkpoint uses at most about half of a core
 * while the webhooks it shares the machine with keep theirs. The same heads as windowHeads (an int-spec holds them
 * equal): per stream the highest version, its hash, the lowest version and the highest position.
 */
export const pagedWindowHeads = async (db: Kysely<DB>, from: string, to: string, pageRows = WINDOW_PAGE_ROWS): Promise<WindowHead[]> => {
  const heads = new Map<string, WindowHead>();
  if (!xidBefore(from, to)) return [];
  const slicer = new LoopSlicer();
  let after: { tx: string; position: string } | null = null;
  for (;;) {
    const started = performance.now();
    const keyset: RawBuilder<unknown> = after ? sql`(transaction_id, global_position) > (${after.tx}::xid8, ${after.position}::bigint)` : sql`transaction_id >= ${from}::xid8`;
    type Row = { tx: string; position: string; stream_name: string; stream_version: number; hash: Buffer };
    const rows: Row[] = (
      await sql<Row>`
        SELECT transaction_id::text AS tx, global_position::text AS position, stream_name, stream_version, hash
        FROM events WHERE ${keyset} AND transaction_id < ${to}::xid8
        ORDER BY transaction_id, global_position LIMIT ${sql.lit(pageRows)}`.execute(db)
    ).rows;
    for (const r of rows) {
      if (slicer.due) await slicer.yield();
      const h = heads.get(r.stream_name);
      if (h === undefined) {
        heads.set(r.stream_name, { streamName: r.stream_name, version: r.stream_version, firstVersion: r.stream_version, position: r.position, hash: r.hash.toString('hex') });
        continue;
      }
      if (r.stream_version > h.version) {
        h.version = r.stream_version;
        h.hash = r.hash.toString('hex');
      }
      if (r.stream_version < h.firstVersion) h.firstVersion = r.stream_version;
      if (BigInt(r.position) > BigInt(h.position)) h.position = r.position;
    }
    if (rows.length < pageRows) break;
    const tail: Row = rows[rows.length - 1]!;
    after = { tx: tail.tx, position: tail.position };
    await new Promise((r) => setTimeout(r, Math.min(50, performance.now() - started)));
  }
  return [...heads.values()];
};

/** For every stream with events in [from, to): its highest version there, that event's hash, its lowest version. */
const windowHeads = async (db: Kysely<DB>, from: string, to: string, streamNames?: readonly string[]): Promise<WindowHead[]> => {
  const names = streamNames ? sql`AND stream_name = ANY (${[...streamNames]}::text[])` : sql``;
  const rows = await sql<{ stream_name: string; version: number; first_version: number; position: string; hash: Buffer }>`
    WITH w AS (
      SELECT stream_name, max(stream_version) AS version, min(stream_version) AS first_version, max(global_position) AS position
      FROM events WHERE transaction_id >= ${from}::xid8 AND transaction_id < ${to}::xid8 ${names}
      GROUP BY stream_name
    )
    SELECT w.stream_name, w.version, w.first_version, w.position::text AS position, e.hash
    FROM w JOIN events e ON e.stream_name = w.stream_name AND e.stream_version = w.version`.execute(db);
  return rows.rows.map((r) => ({ streamName: r.stream_name, version: r.version, firstVersion: r.first_version, position: r.position, hash: r.hash.toString('hex') }));
};
