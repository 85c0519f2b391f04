import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database, DB } from '@lib/db';
import { canonicalJson } from './canonical-json.js';
import { computeEventHash, type StoredChainLink } from './hash-chain.js';
import {
  legStreamName,
  unrecognizedStreamName,
  type AppendOutcome,
  type WebhookRecord,
} from './webhook-record.js';

export const EVENTS_CHANNEL = 'ledger_events';

interface EventRow {
  eventId: string;
  streamName: string;
  streamVersion: number;
  type: string;
  data: string;
  metadata: string;
  receiptId: string;
  occurredAt: string | null;
  receivedAt: string;
  prevHash: Buffer | null;
  hash: Buffer;
  owner: number;
}

/** Deterministic event id: a re-delivery maps to the same ids, and the unique index would refuse a second copy. */
const eventIdFor = (provider: string, bodySha256: Buffer, index: number): string => {
  const h = createHash('sha256').update(`${provider}\u0000`).update(bodySha256).update(`\u0000${index}`).digest('hex');
  // Shaped as a version-8 (custom) UUID so that the column can be uuid.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

const isoOrNull = (value: string | null): string | null => {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
};

/**
 * SQL of the append-only store. `appendBatch` keeps many deliveries in one transaction (group commit and
 * bulk import share it): receipts first under the dedupe constraint, then events on their streams with
 * versions and chained hashes handed out under the stream-head row locks.
 */
export class EventStoreRepository {
  constructor(private readonly db: Database) {}

  async appendBatch(records: readonly WebhookRecord[]): Promise<AppendOutcome[]> {
    return this.db.transaction().execute((trx) => this.appendInTransaction(trx, records));
  }

  async appendInTransaction(trx: Transaction<DB>, records: readonly WebhookRecord[]): Promise<AppendOutcome[]> {
    const outcomes: (AppendOutcome | undefined)[] = new Array(records.length);
    // Copies inside one batch: the first is the delivery, the others are answered as its duplicates.
    const firstByKey = new Map<string, number>();
    const copyOf = new Map<number, number>();
    const unique: number[] = [];
    records.forEach((r, i) => {
      const key = `${r.receipt.provider}:${r.receipt.bodySha256.toString('hex')}`;
      const first = firstByKey.get(key);
      if (first === undefined) {
        firstByKey.set(key, i);
        unique.push(i);
      } else copyOf.set(i, first);
    });

    const u = unique.map((i) => records[i]!.receipt);
    const inserted = await sql<{ id: string; provider: string; body_sha256: Buffer }>`
      INSERT INTO webhook_receipts (provider, body_sha256, body, content_type, path, query, headers, remote_addr,
        received_at, source, signature_status, signature_timestamp)
      SELECT provider, body_sha256, body, content_type, path, query, headers::jsonb, remote_addr,
        received_at, source, signature_status, signature_timestamp
      FROM unnest(${u.map((r) => r.provider)}::text[], ${u.map((r) => r.bodySha256)}::bytea[], ${u.map((r) => r.body)}::bytea[],
        ${u.map((r) => r.contentType)}::text[], ${u.map((r) => r.path)}::text[], ${u.map((r) => r.query)}::text[],
        ${u.map((r) => JSON.stringify(r.headers))}::text[], ${u.map((r) => r.remoteAddr)}::text[],
        ${u.map((r) => r.receivedAt.toISOString())}::timestamptz[], ${u.map((r) => r.source)}::text[],
        ${u.map((r) => r.signatureStatus)}::text[], ${u.map((r) => r.signatureTimestamp?.toISOString() ?? null)}::timestamptz[])
        WITH ORDINALITY AS t(provider, body_sha256, body, content_type, path, query, headers, remote_addr,
          received_at, source, signature_status, signature_timestamp, ord)
      ORDER BY ord
      ON CONFLICT ON CONSTRAINT webhook_receipts_dedupe DO NOTHING
      RETURNING id, provider, body_sha256
    `.execute(trx);

    const receiptIdOf = new Map<number, string>();
    for (const row of inserted.rows) {
      receiptIdOf.set(firstByKey.get(`${row.provider}:${row.body_sha256.toString('hex')}`)!, String(row.id));
    }

    // Deliveries already committed earlier (or by a concurrent transaction that won the unique index).
    const earlier = unique.filter((i) => !receiptIdOf.has(i));
    if (earlier.length > 0) {
      const found = await sql<{ provider: string; body_sha256: Buffer; id: string; position: string | null; types: string[] | null }>`
        SELECT r.provider, r.body_sha256, r.id,
          (SELECT max(e.global_position) FROM events e WHERE e.receipt_id = r.id)::text AS position,
          (SELECT array_agg(e.type ORDER BY e.global_position) FROM events e WHERE e.receipt_id = r.id) AS types
        FROM webhook_receipts r
        JOIN unnest(${earlier.map((i) => records[i]!.receipt.provider)}::text[], ${earlier.map((i) => records[i]!.receipt.bodySha256)}::bytea[])
          AS k(provider, sha) ON r.provider = k.provider AND r.body_sha256 = k.sha
      `.execute(trx);
      const byKey = new Map(found.rows.map((r) => [`${r.provider}:${r.body_sha256.toString('hex')}`, r]));
      for (const i of earlier) {
        const rec = records[i]!.receipt;
        const row = byKey.get(`${rec.provider}:${rec.bodySha256.toString('hex')}`);
        if (!row) throw new Error('duplicate receipt vanished between insert and read');
        outcomes[i] = { receiptId: String(row.id), position: row.position, duplicate: true, events: row.types ?? [] };
      }
    }

    // Events of the deliveries kept now, grouped by stream so that versions and hashes are handed out in order.
    const pending: { owner: number; streamName: string; index: number }[] = [];
    for (const i of unique) {
      if (!receiptIdOf.has(i)) continue;
      const rec = records[i]!;
      rec.events.forEach((e, index) =>
        pending.push({
          owner: i,
          index,
          streamName: e.legId ? legStreamName(rec.receipt.provider, e.legId) : unrecognizedStreamName(rec.receipt.provider),
        }),
      );
    }

    const eventRows: EventRow[] = [];
    if (pending.length > 0) {
      const counts = new Map<string, number>();
      for (const p of pending) counts.set(p.streamName, (counts.get(p.streamName) ?? 0) + 1);
      const names = [...counts.keys()].sort();
      // Sorted upsert: row locks are taken in one global order, so concurrent writers cannot deadlock.
      const heads = await sql<{ stream_name: string; version: number; last_hash: Buffer | null }>`
        INSERT INTO streams AS s (stream_name, version)
        SELECT n, c FROM unnest(${names}::text[], ${names.map((n) => counts.get(n)!)}::int[]) AS t(n, c) ORDER BY n
        ON CONFLICT (stream_name) DO UPDATE SET version = s.version + EXCLUDED.version
        RETURNING stream_name, version, last_hash
      `.execute(trx);
      const cursor = new Map<string, { version: number; hash: Buffer | null }>();
      for (const h of heads.rows) cursor.set(h.stream_name, { version: h.version - counts.get(h.stream_name)!, hash: h.last_hash });

      for (const p of pending) {
        const rec = records[p.owner]!;
        const e = rec.events[p.index]!;
        const head = cursor.get(p.streamName)!;
        const receiptId = receiptIdOf.get(p.owner)!;
        const eventId = eventIdFor(rec.receipt.provider, rec.receipt.bodySha256, p.index);
        const streamVersion = head.version + 1;
        const receivedAt = rec.receipt.receivedAt.toISOString();
        const occurredAt = isoOrNull(e.occurredAt);
        const metadata = {
          provider: rec.receipt.provider,
          legId: e.legId,
          accountId: e.accountId,
          parentLegId: e.parentLegId,
          party: e.party,
          providerSeq: e.providerSeq,
          sentAt: rec.receipt.signatureTimestamp?.toISOString() ?? null,
          path: rec.receipt.path,
          source: rec.receipt.source,
        };
        const data = canonicalJson(e.data);
        const meta = canonicalJson(metadata);
        const hash = computeEventHash(head.hash, {
          eventId,
          streamName: p.streamName,
          streamVersion,
          type: e.type,
          schemaVersion: 1,
          data: JSON.parse(data),
          metadata: JSON.parse(meta),
          receiptId,
          bodySha256: rec.receipt.bodySha256.toString('hex'),
          receivedAt,
          occurredAt,
        });
        eventRows.push({
          eventId,
          streamName: p.streamName,
          streamVersion,
          type: e.type,
          data,
          metadata: meta,
          receiptId,
          occurredAt,
          receivedAt,
          prevHash: head.hash,
          hash,
          owner: p.owner,
        });
        cursor.set(p.streamName, { version: streamVersion, hash });
      }

      const positions = await sql<{ global_position: string; event_id: string }>`
        INSERT INTO events (event_id, stream_name, stream_version, type, schema_version, data, metadata, receipt_id,
          occurred_at, received_at, prev_hash, hash)
        SELECT event_id, stream_name, stream_version, type, 1, data::jsonb, metadata::jsonb, receipt_id,
          occurred_at, received_at, prev_hash, hash
        FROM unnest(${eventRows.map((r) => r.eventId)}::uuid[], ${eventRows.map((r) => r.streamName)}::text[],
          ${eventRows.map((r) => r.streamVersion)}::int[], ${eventRows.map((r) => r.type)}::text[],
          ${eventRows.map((r) => r.data)}::text[], ${eventRows.map((r) => r.metadata)}::text[],
          ${eventRows.map((r) => r.receiptId)}::bigint[], ${eventRows.map((r) => r.occurredAt)}::timestamptz[],
          ${eventRows.map((r) => r.receivedAt)}::timestamptz[], ${eventRows.map((r) => r.prevHash)}::bytea[],
          ${eventRows.map((r) => r.hash)}::bytea[])
          WITH ORDINALITY AS t(event_id, stream_name, stream_version, type, data, metadata, receipt_id, occurred_at,
            received_at, prev_hash, hash, ord)
        ORDER BY ord
        RETURNING global_position, event_id
      `.execute(trx);
      const positionOf = new Map(positions.rows.map((r) => [r.event_id, BigInt(r.global_position)]));
      let head = 0n;
      for (const row of eventRows) {
        const position = positionOf.get(row.eventId)!;
        if (position > head) head = position;
        const o = outcomes[row.owner];
        const last = o?.position && BigInt(o.position) > position ? o.position : String(position);
        outcomes[row.owner] = {
          receiptId: receiptIdOf.get(row.owner)!,
          position: last,
          duplicate: false,
          events: [...(o?.events ?? []), row.type],
        };
      }

      const finalHeads = [...cursor.entries()];
      await sql`
        UPDATE streams AS s SET last_hash = v.h
        FROM unnest(${finalHeads.map(([n]) => n)}::text[], ${finalHeads.map(([, c]) => c.hash)}::bytea[]) AS v(n, h)
        WHERE s.stream_name = v.n
      `.execute(trx);
      await sql`SELECT pg_notify(${EVENTS_CHANNEL}, ${String(head)})`.execute(trx);
    }

    // A kept delivery that translated to no event still has a receipt.
    for (const i of unique) {
      if (outcomes[i] === undefined && receiptIdOf.has(i)) {
        outcomes[i] = { receiptId: receiptIdOf.get(i)!, position: null, duplicate: false, events: [] };
      }
    }
    for (const [copy, first] of copyOf) outcomes[copy] = { ...outcomes[first]!, duplicate: true };
    return outcomes as AppendOutcome[];
  }

  /** Every link of the given streams (or all streams), in stream order, with the receipt body rehashed. */
  async readChainLinks(filter: { streamNames?: string[]; since?: Date; until?: Date }): Promise<StoredChainLink[]> {
    let q = this.db
      .selectFrom('events as e')
      .innerJoin('webhook_receipts as r', 'r.id', 'e.receipt_id')
      .select([
        'e.global_position',
        'e.event_id',
        'e.stream_name',
        'e.stream_version',
        'e.type',
        'e.schema_version',
        'e.data',
        'e.metadata',
        'e.receipt_id',
        'e.received_at',
        'e.occurred_at',
        'e.prev_hash',
        'e.hash',
        sql<string>`encode(r.body_sha256, 'hex')`.as('body_sha256'),
        sql<string>`encode(sha256(r.body), 'hex')`.as('actual_body_sha256'),
      ]);
    if (filter.streamNames) q = q.where('e.stream_name', 'in', filter.streamNames.length ? filter.streamNames : ['']);
    if (filter.since || filter.until) {
      // Whole streams that have any event in the window: a chain can only be checked from its start.
      let inner = this.db.selectFrom('events').select('stream_name').distinct();
      if (filter.since) inner = inner.where('received_at', '>=', filter.since);
      if (filter.until) inner = inner.where('received_at', '<', filter.until);
      q = q.where('e.stream_name', 'in', inner);
    }
    const rows = await q.orderBy('e.stream_name').orderBy('e.stream_version').execute();
    return rows.map((r) => ({
      position: String(r.global_position),
      eventId: r.event_id,
      streamName: r.stream_name,
      streamVersion: r.stream_version,
      type: r.type,
      schemaVersion: r.schema_version,
      data: r.data,
      metadata: r.metadata,
      receiptId: String(r.receipt_id),
      receivedAt: r.received_at.toISOString(),
      occurredAt: r.occurred_at ? r.occurred_at.toISOString() : null,
      prevHash: r.prev_hash,
      hash: r.hash,
      bodySha256: r.body_sha256,
      actualBodySha256: r.actual_body_sha256,
    }));
  }
}
