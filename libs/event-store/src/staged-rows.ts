import { canonicalJson, storableText } from './canonical-json.js';
import { dedupeKeyFor } from './dedupe-key.js';
import { deliveryEventId, eventRowTexts, hashedMetaOf } from './event-store.repository.js';
import { schemaVersionOf } from '@lib/ledger';
import { legStreamName, unrecognizedStreamName } from './stream-names.js';
import type { ReceiptInput, WebhookRecord } from './webhook-record.js';

/**
 * One delivery as the bulk import stages it: its receipt and its events as lines of COPY text (without the
 * chunk's batch id, which is prefixed when the chunk is sent). Built as soon as the line is parsed, so the
 * parsed record can be dropped at once and a chunk waiting for the database holds only this text.
 */
export interface StagedRow {
  /** `provider:dedupe key`: copies inside one chunk are answered as duplicates without being staged. */
  key: string;
  receipt: string;
  events: string[];
  /** Length of the text, to cap a chunk by size as well as by rows. */
  bytes: number;
}

/** COPY text format: backslash, tab, newline and carriage return are the characters that must be escaped. */
const SPECIAL = /[\\\t\n\r]/;
const escapeCopy = (v: string): string =>
  SPECIAL.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : v;
const text = (v: string | null): string => (v === null ? '\\N' : escapeCopy(v));
/** bytea in COPY text: the hex form, its backslash escaped for COPY. */
const bytea = (b: Buffer): string => `\\\\x${b.toString('hex')}`;

const isoOrNull = (value: string | null): string | null => {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
};
const storableOrNull = (s: string | null): string | null => (s === null ? null : storableText(s));

/**
 * The staged form of one record. `ord` is the receipt's ordinal in the chunk and `seq` the ordinal of its first
 * event; versions are handed out within a stream in `seq` order, as ledger_append hands them out in batch order.
 *
 * What is hashed and stored must be exactly what `EventStoreRepository.appendBatch` hashes and stores for the same
 * record (storable text, canonical JSON of data, metadata and headers, chain input of rule CHAIN_VERSION): the
 * bulk-import int-spec appends the same records both ways and compares every event, hash included.
 */
export const stagedRowOf = (record: WebhookRecord, ord: number, seq: number): StagedRow => {
  const input = record.receipt;
  const headersText = canonicalJson(input.headers);
  const r: ReceiptInput = {
    ...input,
    contentType: storableOrNull(input.contentType),
    path: storableText(input.path),
    query: storableText(input.query),
    remoteAddr: storableOrNull(input.remoteAddr),
    headers: JSON.parse(headersText) as Record<string, string>,
  };
  const dedupeKey = dedupeKeyFor(r.provider, r.body, r.bodySha256, r.query);
  const hashedMeta = hashedMetaOf(r);
  const bodySha256 = r.bodySha256.toString('hex');
  const receivedAt = r.receivedAt.toISOString();
  const sentAt = r.signatureTimestamp?.toISOString() ?? null;

  const receipt = [
    String(ord),
    r.provider,
    bytea(r.bodySha256),
    bytea(dedupeKey),
    bytea(r.body),
    text(r.contentType),
    text(r.path),
    text(r.query),
    text(headersText),
    text(r.remoteAddr),
    receivedAt,
    r.source,
    r.signatureStatus,
    sentAt ?? '\\N',
  ].join('\t');

  let bytes = receipt.length;
  const events = record.events.map((e, index) => {
    const streamName = storableText('streamName' in e ? e.streamName : e.legId ? legStreamName(r.provider, e.legId) : unrecognizedStreamName(r.provider));
    const eventId = deliveryEventId({ ...r, dedupeKey }, index);
    const occurredAt = isoOrNull(e.occurredAt);
    const { dataText, metadataText, content } = eventRowTexts(r, e, record.translation, { eventId, streamName, schemaVersion: schemaVersionOf(e.type), bodySha256, receivedAt, occurredAt }, hashedMeta);
    const line = [String(seq + index), String(ord), text(streamName), eventId, text(e.type), text(dataText), text(metadataText), occurredAt ?? '\\N', receivedAt, text(content)].join('\t');
    bytes += line.length;
    return line;
  });
  return { key: `${r.provider}:${dedupeKey.toString('hex')}`, receipt, events, bytes };
};

/**
 * The rows of one chunk (one transaction of the bulk import), with the caller's tag on each (the import keeps
 * the line number, to name a line the database refuses). A copy of a delivery already in the chunk is not
 * staged: `add` answers false and the caller counts it as a duplicate, as appendBatch answers copies in a batch.
 */
export class StagedChunk<T> {
  readonly rows: (StagedRow & { tag: T })[] = [];
  private readonly keys = new Set<string>();
  private nextSeq = 1;
  private size = 0;

  add(record: WebhookRecord, tag: T): boolean {
    const row = stagedRowOf(record, this.rows.length + 1, this.nextSeq);
    if (this.keys.has(row.key)) return false;
    this.keys.add(row.key);
    this.nextSeq += row.events.length;
    this.size += row.bytes;
    this.rows.push({ ...row, tag });
    return true;
  }

  get length(): number {
    return this.rows.length;
  }

  get bytes(): number {
    return this.size;
  }
}
