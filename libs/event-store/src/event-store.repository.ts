import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Database } from '@lib/db';
import { canonicalJson, storableText } from './canonical-json.js';
import { dedupeKeyFor } from './dedupe-key.js';
import { CHAIN_VERSION, chainContentOfText, chainReceiptOf, hashedReceiptMeta, receiptMetaText, type HashedReceiptMeta, type StoredChainLink, type StreamHead } from './hash-chain.js';
import {
  legStreamName,
  unrecognizedStreamName,
  type AppendOutcome,
  type ReceiptInput,
  type WebhookRecord,
} from './webhook-record.js';

/** NOTIFY channel of `ledger_append` (the migration spells it out: migrations never import app code). */
export const EVENTS_CHANNEL = 'ledger_events';

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

const storableOrNull = (s: string | null): string | null => (s === null ? null : storableText(s));

type StorableReceipt = ReceiptInput & { dedupeKey: Buffer };

const storableReceipt = (r: ReceiptInput): StorableReceipt => ({
  ...r,
  dedupeKey: dedupeKeyFor(r.provider, r.body, r.bodySha256, r.query),
  contentType: storableOrNull(r.contentType),
  path: storableText(r.path),
  query: storableText(r.query),
  remoteAddr: storableOrNull(r.remoteAddr),
  // Round-tripped through the canonical form, as jsonb will hold it.
  headers: JSON.parse(canonicalJson(r.headers)) as Record<string, string>,
});

export const hashedMetaOf = (r: ReceiptInput): HashedReceiptMeta => hashedReceiptMeta(r);

/**
 * SQL of the append-only store. `appendBatch` keeps many deliveries in one statement (group commit and bulk
 * import share it): the `ledger_append` function stores receipts under the dedupe constraint, then the events
 * of the new ones with stream versions and chained hashes handed out under the stream-head row locks.
 */
export class EventStoreRepository {
  constructor(private readonly db: Database) {}

  async appendBatch(records: readonly WebhookRecord[]): Promise<AppendOutcome[]> {
    if (records.length === 0) return [];
    // Copies inside one batch: the first is the delivery, the others are answered as its duplicates.
    const keys = records.map((r) => dedupeKeyFor(r.receipt.provider, r.receipt.body, r.receipt.bodySha256, r.receipt.query).toString('hex'));
    const firstByKey = new Map<string, number>();
    const copyOf = new Map<number, number>();
    const unique: number[] = [];
    records.forEach((r, i) => {
      const key = `${r.receipt.provider}:${keys[i]}`;
      const first = firstByKey.get(key);
      if (first === undefined) {
        firstByKey.set(key, i);
        unique.push(i);
      } else copyOf.set(i, first);
    });

    const u = unique.map((i) => records[i]!);
    // Every text that is hashed is first made storable, so the hash covers exactly what PostgreSQL keeps.
    const rc = u.map((x) => storableReceipt(x.receipt));
    const ev = {
      owner: [] as number[],
      stream: [] as string[],
      eventId: [] as string[],
      type: [] as string[],
      data: [] as string[],
      metadata: [] as string[],
      occurred: [] as (string | null)[],
      content: [] as string[],
    };
    u.forEach((rec, k) => {
      const r = rc[k]!;
      const receiptText = receiptMetaText(hashedMetaOf(r));
      const bodySha256 = r.bodySha256.toString('hex');
      const receivedAt = r.receivedAt.toISOString();
      rec.events.forEach((e, index) => {
        const streamName = storableText('streamName' in e ? e.streamName : e.legId ? legStreamName(r.provider, e.legId) : unrecognizedStreamName(r.provider));
        // A GET delivery has no body to tell it apart (every one hashes the same): its dedupe key (the query) does.
        const eventId = eventIdFor(r.provider, r.body.length === 0 ? r.dedupeKey : r.bodySha256, index);
        const occurredAt = isoOrNull(e.occurredAt);
        // Canonical text is what is stored and hashed, so the verifier can recompute it from the jsonb.
        const dataText = canonicalJson(e.data);
        const metadataText = canonicalJson({
            provider: r.provider,
            legId: e.legId,
            accountId: e.accountId,
            parentLegId: e.parentLegId,
            party: e.party,
            providerSeq: e.providerSeq,
            sentAt: r.signatureTimestamp?.toISOString() ?? null,
            path: r.path,
            source: r.source,
          });
        ev.owner.push(k + 1);
        ev.stream.push(streamName);
        ev.eventId.push(eventId);
        ev.type.push(e.type);
        ev.data.push(dataText);
        ev.metadata.push(metadataText);
        ev.occurred.push(occurredAt);
        ev.content.push(
          chainContentOfText({ chainVersion: CHAIN_VERSION, eventId, streamName, type: e.type, schemaVersion: 1, dataText, metadataText, bodySha256, receivedAt, occurredAt, receiptText }),
        );
      });
    });

    const result = await sql<{ ord: number; receipt_id: string; duplicate: boolean; last_position: string | null; types: string[] }>`
      SELECT * FROM ledger_append(
        ${rc.map((r) => r.provider)}::text[], ${rc.map((r) => r.bodySha256)}::bytea[], ${rc.map((r) => r.dedupeKey)}::bytea[],
        ${rc.map((r) => r.body)}::bytea[], ${rc.map((r) => r.contentType)}::text[], ${rc.map((r) => r.path)}::text[], ${rc.map((r) => r.query)}::text[],
        ${rc.map((r) => canonicalJson(r.headers))}::text[], ${rc.map((r) => r.remoteAddr)}::text[],
        ${rc.map((r) => r.receivedAt.toISOString())}::timestamptz[], ${rc.map((r) => r.source)}::text[],
        ${rc.map((r) => r.signatureStatus)}::text[], ${rc.map((r) => r.signatureTimestamp?.toISOString() ?? null)}::timestamptz[],
        ${ev.owner}::int[], ${ev.stream}::text[], ${ev.eventId}::uuid[], ${ev.type}::text[], ${ev.data}::text[],
        ${ev.metadata}::text[], ${ev.occurred}::timestamptz[], ${ev.content}::text[], ${CHAIN_VERSION}::smallint)
    `.execute(this.db);

    const outcomes: AppendOutcome[] = new Array(records.length);
    for (const row of result.rows) {
      outcomes[unique[row.ord - 1]!] = {
        receiptId: String(row.receipt_id),
        position: row.last_position === null ? null : String(row.last_position),
        duplicate: row.duplicate,
        events: row.types,
      };
    }
    unique.forEach((i) => {
      if (!outcomes[i]) throw new Error('a receipt vanished between insert and read');
    });
    for (const [copy, first] of copyOf) outcomes[copy] = { ...outcomes[first]!, duplicate: true };
    return outcomes;
  }

  /** The `streams` rows of the given names (a name without a row is absent from the map). */
  async readStreamHeads(streamNames: string[]): Promise<Map<string, StreamHead>> {
    if (streamNames.length === 0) return new Map();
    const rows = await this.db.selectFrom('streams').select(['stream_name', 'version', 'last_hash']).where('stream_name', 'in', streamNames).execute();
    return new Map(rows.map((r) => [r.stream_name, { version: r.version, lastHash: r.last_hash }]));
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
        'e.chain_version',
        'e.transaction_id',
        'r.provider',
        'r.content_type',
        'r.path',
        'r.query',
        'r.headers',
        'r.remote_addr',
        'r.source',
        'r.signature_status',
        'r.signature_timestamp',
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
      chainVersion: r.chain_version,
      transactionId: String(r.transaction_id),
      receipt: chainReceiptOf(r),
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
