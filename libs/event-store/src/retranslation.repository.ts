import { sql } from 'kysely';
import type { Database } from '@lib/db';
import type { LegParty, Provider, TranslatedEvent } from '@lib/ledger';
import { storableText } from './canonical-json.js';
import { eventIdFor, eventRowTexts } from './event-store.repository.js';
import { CHAIN_VERSION, chainReceiptOf } from './hash-chain.js';
import { legStreamName, unrecognizedStreamName } from './stream-names.js';

/**
 * Readers see only the newest translation of each receipt: an event is current unless its receipt was translated
 * again after it (`receipt_translations.supersedes_through` is the receipt's last position before that). Every
 * read of events that feeds a read model or a leg's state takes this predicate; the chain, the audit export and
 * the events route read everything.
 */
export const isCurrentTranslation = (alias = 'events') =>
  sql`NOT EXISTS (SELECT 1 FROM receipt_translations rt WHERE rt.receipt_id = ${sql.ref(`${alias}.receipt_id`)}
    AND rt.supersedes_through >= ${sql.ref(`${alias}.global_position`)})`;

/** One stored event of a receipt's current translation, as much of it as a translator decides. */
export interface CurrentEvent {
  stream: string;
  type: string;
  data: unknown;
  occurredAt: string | null;
  legId: string | null;
  accountId: string | null;
  parentLegId: string | null;
  party: LegParty | null;
  providerSeq: number | null;
  /** The `translation` of its metadata: 0 for events written before translators were versioned. */
  translation: number;
}

/** A stored delivery with what re-translating it needs: the bytes and context its translator read, its current events. */
export interface StoredDelivery {
  receiptId: string;
  provider: Provider;
  body: Buffer;
  bodySha256: Buffer;
  contentType: string | null;
  path: string;
  query: string;
  headers: Record<string, string>;
  remoteAddr: string | null;
  receivedAt: Date;
  source: string;
  signatureStatus: string;
  signatureTimestamp: Date | null;
  /** Its personal data was erased (body dropped): nothing is left to translate, and it must never be re-read. */
  erased: boolean;
  /** In position order. */
  current: CurrentEvent[];
  /** The newest version any translation of it was made with (its events' marks, or a re-translation with no events). */
  newestVersion: number;
}

export interface TranslationProgress {
  version: number;
  throughReceipt: string;
  untilReceipt: string;
  done: boolean;
}

export interface Retranslated {
  delivery: StoredDelivery;
  events: TranslatedEvent[];
}

interface DeliveryRow {
  id: string;
  provider: Provider;
  body: Buffer;
  body_sha256: Buffer;
  content_type: string | null;
  path: string;
  query: string;
  headers: Record<string, string>;
  remote_addr: string | null;
  received_at: Date;
  source: string;
  signature_status: string;
  signature_timestamp: Date | null;
  erased: boolean;
  events: (Omit<CurrentEvent, 'translation'> & { translation: number | null })[] | null;
  retranslated: number | null;
}

/** SQL of re-translation: reading stored deliveries in receipt order, and appending their new translations. */
export class RetranslationRepository {
  constructor(private readonly db: Database) {}

  async progress(provider: Provider): Promise<TranslationProgress | null> {
    const r = await sql<{ version: number; through_receipt: string; until_receipt: string; done: boolean }>`
      SELECT version, through_receipt::text, until_receipt::text, done FROM translation_progress WHERE provider = ${provider}`.execute(this.db);
    const row = r.rows[0];
    return row ? { version: row.version, throughReceipt: row.through_receipt, untilReceipt: row.until_receipt, done: row.done } : null;
  }

  /** The newest receipt of a provider's deliveries (app answers are not translations). */
  async lastReceipt(provider: Provider): Promise<string> {
    const r = await sql<{ id: string | null }>`
      SELECT max(id)::text AS id FROM webhook_receipts WHERE provider = ${provider} AND source <> 'answer'`.execute(this.db);
    return r.rows[0]?.id ?? '0';
  }

  /** Deliveries of `provider` with ids in (after, until], oldest first, each with its current events. */
  async deliveries(provider: Provider, after: string, until: string, limit: number): Promise<StoredDelivery[]> {
    const rows = await sql<DeliveryRow>`
      SELECT w.id::text AS id, w.provider, w.body, w.body_sha256, w.content_type, w.path, w.query, w.headers, w.remote_addr, w.received_at,
        w.source, w.signature_status, w.signature_timestamp, w.erased_at IS NOT NULL AS erased,
        (SELECT json_agg(json_build_object(
            'stream', e.stream_name, 'type', e.type, 'data', e.data,
            'occurredAt', to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
            'legId', e.metadata->'legId', 'accountId', e.metadata->'accountId', 'parentLegId', e.metadata->'parentLegId',
            'party', e.metadata->'party', 'providerSeq', e.metadata->'providerSeq', 'translation', e.metadata->'translation')
          ORDER BY e.global_position)
          FROM events e WHERE e.receipt_id = w.id AND e.received_at = w.received_at AND ${isCurrentTranslation('e')}) AS events,
        (SELECT max(rt.version) FROM receipt_translations rt WHERE rt.receipt_id = w.id) AS retranslated
      FROM webhook_receipts w
      WHERE w.provider = ${provider} AND w.source <> 'answer' AND w.id > ${after}::bigint AND w.id <= ${until}::bigint
      ORDER BY w.id
      LIMIT ${limit}`.execute(this.db);
    return rows.rows.map((r) => {
      const current = (r.events ?? []).map((e) => ({ ...e, translation: typeof e.translation === 'number' ? e.translation : 0 }));
      return {
        receiptId: r.id,
        provider: r.provider,
        body: r.body,
        bodySha256: r.body_sha256,
        contentType: r.content_type,
        path: r.path,
        query: r.query,
        headers: r.headers,
        remoteAddr: r.remote_addr,
        receivedAt: r.received_at,
        source: r.source,
        signatureStatus: r.signature_status,
        signatureTimestamp: r.signature_timestamp,
        erased: r.erased,
        current,
        newestVersion: Math.max(r.retranslated ?? 0, ...current.map((e) => e.translation)),
      };
    });
  }

  /**
   * Appends the new translations (version `version`) of these deliveries and moves the provider's progress to
   * `through`, in one statement: the overload of `ledger_append` chains the events under the stream-head locks as
   * every append does, and skips a receipt already re-translated at that version. Returns the receipts appended.
   */
  async append(provider: Provider, version: number, items: readonly Retranslated[], progress: { through: string; until: string; done: boolean }): Promise<string[]> {
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
    items.forEach(({ delivery: d, events }, k) => {
      // What the chain hashes of the receipt, from its stored columns, exactly as the verifier recomputes it.
      const receiptMeta = chainReceiptOf({
          chain_version: CHAIN_VERSION,
          provider: d.provider,
          content_type: d.contentType,
          path: d.path,
          query: d.query,
          headers: d.headers,
          remote_addr: d.remoteAddr,
          source: d.source,
          signature_status: d.signatureStatus,
          signature_timestamp: d.signatureTimestamp,
        })!;
      const bodySha256 = d.bodySha256.toString('hex');
      const receivedAt = d.receivedAt.toISOString();
      events.forEach((e, index) => {
        const streamName = storedStream(d.provider, e);
        const eventId = eventIdFor(d.provider, d.bodySha256, index, version);
        const occurredAt = isoOrNull(e.occurredAt);
        const { dataText, metadataText, content } = eventRowTexts(d, e, version, { eventId, streamName, schemaVersion: 1, bodySha256, receivedAt, occurredAt }, receiptMeta);
        ev.owner.push(k + 1);
        ev.stream.push(streamName);
        ev.eventId.push(eventId);
        ev.type.push(e.type);
        ev.data.push(dataText);
        ev.metadata.push(metadataText);
        ev.occurred.push(occurredAt);
        ev.content.push(content);
      });
    });
    const r = await sql<{ receipt_id: string }>`
      SELECT receipt_id::text AS receipt_id FROM ledger_append(
        ${provider}::text, ${version}::smallint, ${progress.through}::bigint, ${progress.until}::bigint, ${progress.done}::boolean,
        ${items.map((i) => i.delivery.receiptId)}::bigint[],
        ${ev.owner}::int[], ${ev.stream}::text[], ${ev.eventId}::uuid[], ${ev.type}::text[], ${ev.data}::text[], ${ev.metadata}::text[],
        ${ev.occurred}::timestamptz[], ${ev.content}::text[], ${CHAIN_VERSION}::smallint)`.execute(this.db);
    return r.rows.map((x) => x.receipt_id);
  }
}

/** The stream an event of a delivery goes to, as the append path names it (text made storable as it is stored). */
export const storedStream = (provider: Provider, e: Pick<TranslatedEvent, 'legId'>): string =>
  storableText(e.legId ? legStreamName(provider, e.legId) : unrecognizedStreamName(provider));

const isoOrNull = (value: string | null): string | null => {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
};
