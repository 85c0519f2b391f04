import { createHash } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import { LoopSlicer, PREPARED, mapInSlices, type Database } from '@lib/db';
import { EventVersionError, parseEvent, schemaVersionOf, type ParsedEvent, type EventDataMap, type Provider, type StoredEventType } from '@lib/ledger';
import { canonicalJson, storableText } from './canonical-json.js';
import { accountKeyOf } from './account-key.js';
import { dedupeKeyFor } from './dedupe-key.js';
import { sealPersonalFields } from './personal-seals.js';
import { CHAIN_VERSION, chainContent, chainReceiptOf, hashedReceiptMeta, receiptMetaText, type HashedReceiptMeta, type StoredChainLink, type StoredReceiptColumns, type StreamHead } from './hash-chain.js';
import { legStreamName, streamNameLikeOf, unrecognizedStreamName } from './stream-names.js';
import type { AppendOutcome, ReceiptInput, WebhookRecord } from './webhook-record.js';

/** NOTIFY channel of `ledger_append` (the migration spells it out: migrations never import app code). */
export const EVENTS_CHANNEL = 'ledger_events';

/**
 * Deterministic event id: a re-delivery maps to the same ids, and the unique index would refuse a second copy. A
 * re-translation (`retranslation` = its translator version) gets ids of its own, as deterministic: two processes
 * re-translating the same receipt could not append it twice.
 */
export const eventIdFor = (provider: string, bodySha256: Buffer, index: number, retranslation?: number): string => {
  const h = createHash('sha256')
    .update(`${provider}\u0000`)
    .update(bodySha256)
    .update(`\u0000${index}${retranslation === undefined ? '' : `\u0000t${retranslation}`}`)
    .digest('hex');
  // Shaped as a version-8 (custom) UUID so that the column can be uuid.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

const isoOrNull = (value: string | null): string | null => {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
};

const storableOrNull = (s: string | null): string | null => (s === null ? null : storableText(s));

/**
 * An event's metadata as stored and hashed, one spelling for every append path (live, bulk import, re-translation):
 * a path that spelled it otherwise would store the same delivery under other hashes. Under rule 3 it carries the
 * seals of the event's personal fields (personal-seals.ts), fresh random nonces for each append.
 */
export const eventMetadata = (
  r: { provider: string; signatureTimestamp: Date | null; path: string; source: string },
  e: WebhookRecord['events'][number],
  translation: number | undefined,
): Record<string, unknown> => ({
  provider: r.provider,
  legId: e.legId,
  accountId: e.accountId,
  parentLegId: e.parentLegId,
  party: e.party,
  providerSeq: e.providerSeq,
  sentAt: r.signatureTimestamp?.toISOString() ?? null,
  path: r.path,
  source: r.source,
  ...(translation === undefined ? {} : { translation }),
});

/**
 * What one event stores and hashes under rule CHAIN_VERSION: its data and metadata texts (with the seals of its
 * personal fields) and the chain content. `receipt` is the receipt metadata as hashed (hashedReceiptMeta of the
 * storable columns). Every append path calls this, so that the same delivery is stored and hashed alike.
 */
export const eventRowTexts = (
  r: { provider: string; signatureTimestamp: Date | null; path: string; source: string },
  e: WebhookRecord['events'][number],
  translation: number | undefined,
  link: { eventId: string; streamName: string; schemaVersion: number; bodySha256: string; receivedAt: string; occurredAt: string | null },
  receipt: HashedReceiptMeta,
): { dataText: string; metadataText: string; content: string } => {
  const metadata = eventMetadata(r, e, translation);
  const seals = sealPersonalFields({ data: e.data, metadata, receipt });
  // Set on the fresh object, not spread into a copy: on Node 20's V8 a spread clone given a new key (`{ ...plain,
  // seals }`) survives the young generation's collections and is promoted, so every event left garbage in the old
  // generation that only a full collection frees (import peak RSS; bench/profile-notes.md, "the import's RSS").
  if (Object.keys(seals).length > 0) metadata.seals = seals;
  const dataText = canonicalJson(e.data);
  const metadataText = canonicalJson(metadata);
  const receiptText = receiptTextOf(receipt);
  return {
    dataText,
    metadataText,
    content: chainContent({ chainVersion: CHAIN_VERSION, ...link, type: e.type, data: e.data, metadata, receipt }, { dataText, metadataText, receiptText }),
  };
};

/**
 * A text[] argument of JSON texts, sent as one text joined by U+001E and split by PostgreSQL (`string_to_array`):
 * node-postgres would send an array literal, every `"` and `\` of every text escaped in Node (two regex passes over
 * each text) and unescaped again by PostgreSQL's array_in. JSON text never holds a raw control character (they are
 * written as \u escapes), so the separator cannot occur in an element, and a JSON text is never empty (an empty
 * string would split to no element). Checked anyway: a text that breaks either rule goes as an array literal.
 */
const JSON_TEXT_SEPARATOR = '\u001e';
export const jsonTextArray = (texts: readonly string[]): RawBuilder<string[]> =>
  texts.every((t) => t.length > 0 && !t.includes(JSON_TEXT_SEPARATOR))
    ? sql<string[]>`string_to_array(${texts.join(JSON_TEXT_SEPARATOR)}::text, chr(30))`
    : sql<string[]>`${texts}::text[]`;

/**
 * A bytea[] argument sent as one binary parameter, the parts' bytes as they are, and cut back into its elements by
 * PostgreSQL: node-postgres would send an array literal with each element in hex (twice the bytes, written in Node,
 * read back by PostgreSQL's array_in and byteain), and the bodies are most of a batch's bytes.
 */
export const byteaArray = (parts: readonly Buffer[]): RawBuilder<Buffer[]> => {
  const offsets: number[] = [];
  const lengths: number[] = [];
  let at = 1;
  for (const p of parts) {
    offsets.push(at);
    lengths.push(p.length);
    at += p.length;
  }
  return sql<Buffer[]>`ARRAY(SELECT substring(${Buffer.concat(parts)}::bytea FROM t.o FOR t.l)
    FROM unnest(${offsets}::int[], ${lengths}::int[]) WITH ORDINALITY AS t(o, l, n) ORDER BY t.n)`;
};

/** Every event of a delivery hashes the same receipt metadata (unless its query is sealed): its text, once. */
const receiptTexts = new WeakMap<HashedReceiptMeta, string>();
const receiptTextOf = (r: HashedReceiptMeta): string => receiptTexts.get(r) ?? receiptTexts.set(r, receiptMetaText(r)).get(r)!;

/** A GET delivery has no body to tell it apart (every one hashes the same): its dedupe key (the query) does. */
export const deliveryEventId = (r: Pick<ReceiptInput, 'provider' | 'body' | 'bodySha256'> & { dedupeKey: Buffer }, index: number): string =>
  eventIdFor(r.provider, r.body.length === 0 ? r.dedupeKey : r.bodySha256, index);

/**
 * The schema version an event is stored and hashed with: its type's current one (libs/ledger event-schemas.ts).
 * `ledger_append` writes `schema_version` 1 (the literal is in its migration), so a type moved to version 2
 * needs a migration that passes the versions before it can be appended; until then its append fails loudly
 * rather than store data of version 2 labelled 1.
 */
const appendableSchemaVersion = (type: string): number => {
  const version = schemaVersionOf(type);
  if (version !== 1) throw new Error(`${type} is at schema version ${version}, and ledger_append stores version 1 only`);
  return version;
};

/**
 * A receipt as it is stored and hashed, each derived value computed once: the dedupe key (a form body is parsed
 * for it), the stored headers' canonical text (sent as the jsonb column) and the receipt metadata text that
 * every event of the delivery hashes.
 */
interface StorableReceipt extends ReceiptInput {
  dedupeKey: Buffer;
  headersText: string;
  hashedMeta: HashedReceiptMeta;
}

const storableReceipt = (r: ReceiptInput, dedupeKey: Buffer): StorableReceipt => {
  const headersText = canonicalJson(r.headers);
  const stored = {
    ...r,
    contentType: storableOrNull(r.contentType),
    path: storableText(r.path),
    query: storableText(r.query),
    remoteAddr: storableOrNull(r.remoteAddr),
    // As jsonb will hold them: the canonical text parsed back (NUL and lone surrogates replaced, undefined dropped).
    headers: storedHeaders(r.headers, headersText),
  };
  return { ...stored, dedupeKey, headersText, hashedMeta: hashedMetaOf(stored) };
};

/** Header names as pickHeaders keeps them: with these, the parsed canonical text is the values made storable. */
const PLAIN_HEADER_NAME = /^[a-z][a-z0-9-]*$/;
const storedHeaders = (headers: Record<string, string>, canonicalText: string): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const name of Object.keys(headers).sort()) {
    const value = headers[name];
    if (typeof value !== 'string' || !PLAIN_HEADER_NAME.test(name)) return JSON.parse(canonicalText) as Record<string, string>;
    out[name] = storableText(value);
  }
  return out;
};

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
    const keys = records.map((r) => dedupeKeyFor(r.receipt.provider, r.receipt.body, r.receipt.bodySha256, r.receipt.query));
    const firstByKey = new Map<string, number>();
    const copyOf = new Map<number, number>();
    const unique: number[] = [];
    records.forEach((r, i) => {
      const key = `${r.receipt.provider}:${keys[i]!.toString('hex')}`;
      const first = firstByKey.get(key);
      if (first === undefined) {
        firstByKey.set(key, i);
        unique.push(i);
      } else copyOf.set(i, first);
    });

    const u = unique.map((i) => records[i]!);
    // A large batch (the group commit under load: up to LEDGER_INGEST_BATCH_MAX deliveries) is built in slices, so
    // that the tee forwards and requests on the same event loop are not held for all of it (loop-slices.ts).
    const slicer = new LoopSlicer();
    // Every text that is hashed is first made storable, so the hash covers exactly what PostgreSQL keeps.
    const rc = await mapInSlices(unique, (i) => storableReceipt(records[i]!.receipt, keys[i]!), slicer);
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
    for (const [k, rec] of u.entries()) {
      if (slicer.due) await slicer.yield();
      const r = rc[k]!;
      const bodySha256 = r.bodySha256.toString('hex');
      const receivedAt = r.receivedAt.toISOString();
      rec.events.forEach((e, index) => {
        const streamName = storableText('streamName' in e ? e.streamName : e.legId ? legStreamName(r.provider, e.legId) : unrecognizedStreamName(r.provider));
        const eventId = deliveryEventId(r, index);
        const schemaVersion = appendableSchemaVersion(e.type);
        const occurredAt = isoOrNull(e.occurredAt);
        // Canonical text is what is stored and hashed, so the verifier can recompute it from the jsonb.
        const texts = eventRowTexts(r, e, rec.translation, { eventId, streamName, schemaVersion, bodySha256, receivedAt, occurredAt }, r.hashedMeta);
        ev.owner.push(k + 1);
        ev.stream.push(streamName);
        ev.eventId.push(eventId);
        ev.type.push(e.type);
        ev.data.push(texts.dataText);
        ev.metadata.push(texts.metadataText);
        ev.occurred.push(occurredAt);
        ev.content.push(texts.content);
      });
    }

    // Prepared once per session (PREPARED): parsing and planning this call was a fifth of a small batch's PostgreSQL CPU.
    const result = await sql<{ ord: number; receipt_id: string; duplicate: boolean; last_position: string | null; types: string[] }>`${sql.raw(PREPARED)}
      SELECT * FROM ledger_append(
        ${rc.map((r) => r.provider)}::text[], ${byteaArray(rc.map((r) => r.bodySha256))}, ${byteaArray(rc.map((r) => r.dedupeKey))},
        ${byteaArray(rc.map((r) => r.body))}, ${rc.map((r) => r.contentType)}::text[], ${rc.map((r) => r.path)}::text[], ${rc.map((r) => r.query)}::text[],
        ${jsonTextArray(rc.map((r) => r.headersText))}, ${rc.map((r) => r.remoteAddr)}::text[],
        ${rc.map((r) => r.receivedAt.toISOString())}::timestamptz[], ${rc.map((r) => r.source)}::text[],
        ${rc.map((r) => r.signatureStatus)}::text[], ${rc.map((r) => r.signatureTimestamp?.toISOString() ?? null)}::timestamptz[],
        ${ev.owner}::int[], ${ev.stream}::text[], ${ev.eventId}::uuid[], ${ev.type}::text[], ${jsonTextArray(ev.data)},
        ${jsonTextArray(ev.metadata)}, ${ev.occurred}::timestamptz[], ${jsonTextArray(ev.content)}, ${CHAIN_VERSION}::smallint,
        ${u.map((rec) => accountKeyOf(rec.receipt.provider, rec.events))}::text[])
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
    const rows = await this.chainQuery(filter).orderBy('e.stream_name').orderBy('e.stream_version').execute();
    return rows.map(toChainLink);
  }

  /**
   * The links of the given streams in position order, each with its receipt as stored (the body too): what the
   * events route serves beside each event, read by the same query as the chain check.
   */
  async readChainLinksWithReceipts(streamNames: string[]): Promise<{ link: StoredChainLink; receipt: StoredReceipt; supersededBy: SupersededBy | null }[]> {
    const rows = await this.chainQuery({ streamNames })
      .select('r.body')
      // The first newer translation of the event's receipt (re-translation, retranslation.repository.ts), if any.
      .select(
        sql<{ version: number; translatedAt: string } | null>`(SELECT json_build_object('version', rt.version, 'translatedAt', rt.translated_at)
          FROM receipt_translations rt WHERE rt.receipt_id = e.receipt_id AND rt.supersedes_through >= e.global_position
          ORDER BY rt.version LIMIT 1)`.as('superseded_by'),
      )
      .orderBy('e.global_position')
      .execute();
    return rows.map((r) => ({
      supersededBy: r.superseded_by ? { version: r.superseded_by.version, translatedAt: new Date(r.superseded_by.translatedAt).toISOString() } : null,
      link: toChainLink(r),
      receipt: {
        id: String(r.receipt_id),
        provider: r.provider,
        path: r.path,
        contentType: r.content_type,
        body: r.body,
        headers: r.headers,
        source: r.source,
        signatureStatus: r.signature_status,
        signatureTimestamp: r.signature_timestamp,
      },
    }));
  }

  private chainQuery(filter: { streamNames?: string[]; since?: Date; until?: Date }) {
    let q = this.db
      .selectFrom('events as e')
      // Same month as its event (partitioned store): the join is pruned to one partition per event.
      .innerJoin('webhook_receipts as r', (j) => j.onRef('r.id', '=', 'e.receipt_id').onRef('r.received_at', '=', 'e.received_at'))
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
        // An erased receipt's body is gone (its recorded sha256 stays): nothing to recompute.
        sql<string | null>`CASE WHEN r.erased_at IS NULL THEN encode(sha256(r.body), 'hex') END`.as('actual_body_sha256'),
      ]);
    if (filter.streamNames) q = q.where('e.stream_name', 'in', filter.streamNames.length ? filter.streamNames : ['']);
    if (filter.since || filter.until) {
      // Whole streams that have any event in the window: a chain can only be checked from its start.
      let inner = this.db.selectFrom('events').select('stream_name').distinct();
      if (filter.since) inner = inner.where('received_at', '>=', filter.since);
      if (filter.until) inner = inner.where('received_at', '<', filter.until);
      q = q.where('e.stream_name', 'in', inner);
    }
    return q;
  }

  /**
   * The events of the selected streams in position order, each read through `parseEvent`; a selection with
   * `types` keeps only those types of its streams. Types and versions this code does not know are left out.
   */
  async readStreamEvents(selections: { streamNames: string[]; types?: string[] }[]): Promise<StoredStreamEvent[]> {
    const wanted = selections.filter((s) => s.streamNames.length > 0);
    if (wanted.length === 0) return [];
    const rows = await this.db
      .selectFrom('events')
      .select(['stream_name', 'global_position', 'type', 'schema_version', 'data', 'received_at'])
      .where((eb) =>
        eb.or(wanted.map((s) => (s.types ? eb.and([eb('stream_name', 'in', s.streamNames), eb('type', 'in', s.types)]) : eb('stream_name', 'in', s.streamNames)))),
      )
      .orderBy('global_position')
      .execute();
    // A type or version this code does not know (a newer release's, rolled back since) is left out, not guessed at.
    return rows.flatMap((r) => {
      let p: ParsedEvent;
      try {
        p = parseEvent(r.type, r.schema_version, r.data);
      } catch (err) {
        if (err instanceof EventVersionError) return [];
        throw err;
      }
      const at = { streamName: r.stream_name, position: String(r.global_position), receivedAt: r.received_at };
      return p.known ? [{ ...at, type: p.type, data: p.data } as StoredStreamEvent] : [];
    });
  }

  /**
   * Names of the streams in scope, in name order, after `after`, at most `limit`: the given names, a provider's
   * streams (its legs, its apps' answers, its unrecognized deliveries), and/or those that received an event in
   * [since, until) (each then checked from its first event: a chain has no middle).
   */
  async readStreamNames(scope: { names?: string[]; provider?: Provider; since?: string; until?: string }, after: string | null, limit: number): Promise<string[]> {
    const w: RawBuilder<unknown>[] = [];
    if (after !== null) w.push(sql`s.stream_name > ${after}`);
    if (scope.names) {
      w.push(sql`s.stream_name = ANY (${scope.names}::text[])`);
    } else if (scope.provider) {
      w.push(sql`(s.stream_name LIKE ${streamNameLikeOf('callLeg', scope.provider)} OR s.stream_name LIKE ${streamNameLikeOf('appAnswers', scope.provider)}
        OR s.stream_name = ${unrecognizedStreamName(scope.provider)})`);
    }
    if (scope.since || scope.until) {
      const t: RawBuilder<unknown>[] = [sql`e.stream_name = s.stream_name`];
      if (scope.since) t.push(sql`e.received_at >= ${scope.since}::timestamptz`);
      if (scope.until) t.push(sql`e.received_at < ${scope.until}::timestamptz`);
      w.push(sql`EXISTS (SELECT 1 FROM events e WHERE ${sql.join(t, sql` AND `)})`);
    }
    const rows = await sql<{ stream_name: string }>`
      SELECT s.stream_name FROM streams s WHERE ${w.length ? sql.join(w, sql` AND `) : sql`true`}
      ORDER BY s.stream_name LIMIT ${limit}`.execute(this.db);
    return rows.rows.map((r) => r.stream_name);
  }

  /**
   * Streams that have events but no head row: deleting the row would otherwise hide the stream from a walk
   * over `streams`. A full scan, like the verification of every chain it goes with.
   */
  async readStreamsWithoutHead(): Promise<{ streamName: string; position: string }[]> {
    const rows = await sql<{ stream_name: string; position: string }>`
      SELECT e.stream_name, min(e.global_position)::text AS position FROM events e
      WHERE NOT EXISTS (SELECT 1 FROM streams s WHERE s.stream_name = e.stream_name)
      GROUP BY e.stream_name ORDER BY e.stream_name`.execute(this.db);
    return rows.rows.map((r) => ({ streamName: r.stream_name, position: r.position }));
  }
}

/** A receipt as stored, beside an event read with it. */
/** A newer translation that supersedes an event (re-translation of its receipt). */
export interface SupersededBy {
  version: number;
  translatedAt: string;
}

export interface StoredReceipt {
  id: string;
  provider: string;
  path: string;
  contentType: string | null;
  body: Buffer;
  headers: Record<string, string>;
  source: string;
  signatureStatus: 'verified' | 'unverified' | 'not-checked';
  signatureTimestamp: Date | null;
}

/** One event of a stream read through `parseEvent`, with where it sits. */
export type StoredStreamEvent = { streamName: string; position: string; receivedAt: Date } & {
  [K in StoredEventType]: { type: K; data: EventDataMap[K] };
}[StoredEventType];

export type ChainRow = StoredReceiptColumns & {
  global_position: string | number | bigint;
  event_id: string;
  stream_name: string;
  stream_version: number;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: unknown;
  receipt_id: string | number | bigint;
  received_at: Date;
  occurred_at: Date | null;
  prev_hash: Buffer | null;
  hash: Buffer;
  transaction_id: string | number | bigint;
  body_sha256: string;
  actual_body_sha256: string | null;
};

export const toChainLink = (r: ChainRow): StoredChainLink => ({
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
});
