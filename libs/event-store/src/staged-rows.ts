import { randomUUID } from 'node:crypto';
import { canonicalJson, storableText } from './canonical-json.js';
import { accountKeyOf } from './account-key.js';
import { dedupeKeyFor } from './dedupe-key.js';
import { deliveryEventId, eventRowTexts, hashedMetaOf } from './event-store.repository.js';
import { schemaVersionOf } from '@lib/ledger';
import { legStreamName, unrecognizedStreamName } from './stream-names.js';
import type { ReceiptInput, WebhookRecord } from './webhook-record.js';

/**
 * One delivery as the bulk import stages it: its receipt and its events as lines of COPY text (without the
 * chunk's batch id and the line ends, which StagedChunk adds as it writes them into its buffers).
 */
export interface StagedRow {
  /** `provider:dedupe key`: copies inside one chunk are answered as duplicates without being staged. */
  key: string;
  receipt: string;
  events: string[];
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
  // The delivery's key (appendBatch computes it alike); its events' rows carry it too, the first one's keys a new head.
  const accountKey = escapeCopy(accountKeyOf(r.provider, record.events));

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
    accountKey,
  ].join('\t');

  const idOf = { provider: r.provider, body: r.body, bodySha256: r.bodySha256, dedupeKey };
  const events = record.events.map((e, index) => {
    const streamName = storableText('streamName' in e ? e.streamName : e.legId ? legStreamName(r.provider, e.legId) : unrecognizedStreamName(r.provider));
    const eventId = deliveryEventId(idOf, index);
    const occurredAt = isoOrNull(e.occurredAt);
    const { dataText, metadataText, content } = eventRowTexts(r, e, record.translation, { eventId, streamName, schemaVersion: schemaVersionOf(e.type), bodySha256, receivedAt, occurredAt }, hashedMeta);
    const line = [String(seq + index), String(ord), text(streamName), eventId, text(e.type), text(dataText), text(metadataText), occurredAt ?? '\\N', receivedAt, text(content), accountKey].join('\t');
    return line;
  });
  return { key: `${r.provider}:${dedupeKey.toString('hex')}`, receipt, events };
};

/**
 * A byte buffer that grows by a quarter and is kept (not reallocated) from one chunk to the next. Not by doubling:
 * a chunk's events text is about 5 MB (2,000 rows), which doubling rounds up to 8 MB, and the importer keeps two
 * chunks' pairs of buffers for the whole upload (24 of the service's 32 MB of array buffers during an import).
 */
class CopyBuffer {
  private buf = Buffer.allocUnsafeSlow(256 * 1024);
  length = 0;

  /**
   * Appends the COPY line `prefix` + `text` + newline as UTF-8 and answers where it starts. Written piece by piece:
   * a line concatenated first would be copied once more into a flat string (a few kB a row) before being encoded.
   */
  appendLine(prefix: string, text: string): number {
    const start = this.length;
    const need = start + Buffer.byteLength(prefix, 'utf8') + Buffer.byteLength(text, 'utf8') + 1;
    if (need > this.buf.length) {
      let size = this.buf.length;
      while (size < need) size = Math.ceil(size * 1.25);
      const bigger = Buffer.allocUnsafeSlow(size);
      this.buf.copy(bigger, 0, 0, start);
      this.buf = bigger;
    }
    let at = start + this.buf.write(prefix, start, 'utf8');
    at += this.buf.write(text, at, 'utf8');
    this.buf[at] = 0x0a;
    this.length = at + 1;
    return start;
  }

  /** A view of [start, end): valid until the next `append` or `clear`. */
  view(start: number, end: number): Buffer {
    return this.buf.subarray(start, end);
  }

  clear(): void {
    this.length = 0;
  }
}

/** Where one staged delivery's COPY lines sit in its chunk's buffers (byte offsets, end excluded). */
export interface StagedSpan<T> {
  /** `provider:dedupe key` (copies inside one chunk are answered as duplicates without being staged). */
  key: string;
  tag: T;
  receiptStart: number;
  receiptEnd: number;
  eventsStart: number;
  eventsEnd: number;
}

/**
 * The rows of one chunk (one transaction of the bulk import), with the caller's tag on each (the import keeps
 * the line number, to name a line the database refuses). A copy of a delivery already in the chunk is not
 * staged: `add` answers false and the caller counts it as a duplicate, as appendBatch answers copies in a batch.
 *
 * Each row's COPY lines (the chunk's batch id first) are written as UTF-8 into two buffers as soon as the record
 * is staged, so no string of a row outlives its `add`: a chunk waiting for the database holds a few megabytes
 * outside the JavaScript heap instead of thousands of strings that the young generation promotes, and that
 * piled up in the old generation until a full collection (peak RSS of an import grew with its size). `clear`
 * keeps the buffers for the next chunk: the importer alternates two chunks, one being filled while the other
 * is written, so their memory is allocated once per upload.
 */
export class StagedChunk<T> {
  readonly rows: StagedSpan<T>[] = [];
  private readonly keys = new Set<string>();
  private readonly receipts = new CopyBuffer();
  private readonly events = new CopyBuffer();
  private nextSeq = 1;
  /** Keys the chunk's rows in the staging tables (`ledger_append_staged` reads one batch). */
  batch = randomUUID();

  add(record: WebhookRecord, tag: T): boolean {
    const row = stagedRowOf(record, this.rows.length + 1, this.nextSeq);
    if (this.keys.has(row.key)) return false;
    this.keys.add(row.key);
    this.nextSeq += row.events.length;
    const prefix = `${this.batch}\t`;
    const receiptStart = this.receipts.appendLine(prefix, row.receipt);
    const eventsStart = this.events.length;
    for (const line of row.events) this.events.appendLine(prefix, line);
    this.rows.push({ key: row.key, tag, receiptStart, receiptEnd: this.receipts.length, eventsStart, eventsEnd: this.events.length });
    return true;
  }

  /**
   * The COPY data of `rows` (rows of this chunk, in chunk order): receipts or events, in pieces of at most
   * `piece` bytes that are views of the chunk's buffer (nothing is copied). Rows next to each other in the buffer
   * are sent as one range.
   */
  *copyData(which: 'receipts' | 'events', rows: readonly StagedSpan<T>[] = this.rows, piece = 64 * 1024): Generator<Buffer> {
    const buf = which === 'receipts' ? this.receipts : this.events;
    let start = -1;
    let end = -1;
    const flush = function* () {
      for (let o = start; o < end; o += piece) yield buf.view(o, Math.min(end, o + piece));
    };
    for (const r of rows) {
      const [s, e] = which === 'receipts' ? [r.receiptStart, r.receiptEnd] : [r.eventsStart, r.eventsEnd];
      if (s === end) {
        end = e;
        continue;
      }
      if (start >= 0) yield* flush();
      start = s;
      end = e;
    }
    if (start >= 0) yield* flush();
  }

  /** Empties the chunk for the next one, keeping its buffers (nothing of it may be in use any more). */
  clear(): void {
    this.rows.length = 0;
    this.keys.clear();
    this.receipts.clear();
    this.events.clear();
    this.nextSeq = 1;
    this.batch = randomUUID();
  }

  get length(): number {
    return this.rows.length;
  }

  /** Bytes of COPY data staged. */
  get bytes(): number {
    return this.receipts.length + this.events.length;
  }
}
