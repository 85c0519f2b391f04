import { sql, type Kysely } from 'kysely';
import type { Database, DB } from '@lib/db';
import {
  checkpointDigest,
  checkpointMessage,
  headsSha256,
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
   */
  async create(signer: CheckpointSigner | null, onlyIfChanged: boolean, waitMs = 5000): Promise<CheckpointRecord | null> {
    return this.db.transaction().execute(async (trx) => {
      await sql`SELECT ${LOCK}`.execute(trx);
      const last = await trx.selectFrom('ledger_checkpoints').selectAll().orderBy('seq', 'desc').limit(1).executeTakeFirst();
      // Every transaction below the snapshot's xmin has ended: the window is final, nothing can still land in it.
      // On demand, wait (a little) until every transaction that had started by now has ended, so that the
      // checkpoint covers everything committed before it was asked for.
      const snapshot = () => sql<{ xmin: string; xmax: string; now: Date }>`
        SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, pg_snapshot_xmax(pg_current_snapshot())::text AS xmax, clock_timestamp() AS now`.execute(trx);
      let snap = await snapshot();
      if (!onlyIfChanged) {
        const target = snap.rows[0]!.xmax;
        const deadline = Date.now() + waitMs;
        while (xidBefore(snap.rows[0]!.xmin, target) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 10));
          snap = await snapshot();
        }
      }
      const fromXmin = last?.to_xmin ?? '0';
      const toXmin = xidBefore(fromXmin, snap.rows[0]!.xmin) ? snap.rows[0]!.xmin : fromXmin;
      const heads = await windowHeads(trx, fromXmin, toXmin);
      if (onlyIfChanged && heads.length === 0) return null;
      let position = BigInt(last?.position ?? '0');
      for (const h of heads) if (BigInt(h.position) > position) position = BigInt(h.position);
      const body: CheckpointBody = {
        seq: Number(last?.seq ?? 0) + 1,
        createdAt: snap.rows[0]!.now.toISOString(),
        fromXmin,
        toXmin,
        position: position.toString(),
        streamCount: Number(last?.stream_count ?? 0) + heads.filter((h) => h.firstVersion === 1).length,
        headCount: heads.length,
        headsSha256: headsSha256(heads),
        prevDigest: last ? last.digest.toString('hex') : null,
      };
      const digest = checkpointDigest(body);
      const signature = signer ? signer.sign(checkpointMessage(body)) : null;
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
      for (let i = 0; i < heads.length; i += 5000) {
        await trx
          .insertInto('ledger_checkpoint_heads')
          .values(heads.slice(i, i + 5000).map((h) => ({ seq: body.seq, stream_name: h.streamName, version: h.version, hash: Buffer.from(h.hash, 'hex') })))
          .execute();
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
