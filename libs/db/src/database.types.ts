import type { ColumnType, Generated } from 'kysely';

/** int8 comes back from pg as a string: positions never lose precision, and DTOs send them as strings. */
type Int8 = ColumnType<string, string | number | bigint, string>;
type GeneratedInt8 = ColumnType<string, never, never>;
type Timestamp = ColumnType<Date, Date | string, never>;

export interface WebhookReceiptsTable {
  id: GeneratedInt8;
  provider: string;
  body_sha256: Buffer;
  dedupe_key: Buffer | null;
  body: Buffer;
  content_type: string | null;
  path: string;
  query: string;
  headers: ColumnType<Record<string, string>, string, never>;
  remote_addr: string | null;
  received_at: Timestamp;
  source: 'live' | 'import' | 'answer' | 'admin';
  signature_status: 'verified' | 'unverified' | 'not-checked';
  signature_timestamp: ColumnType<Date | null, Date | string | null, never>;
  recorded_at: Generated<Date>;
  /** Set by `ledger_erase` when the receipt's personal data was erased (body dropped, query replaced). */
  erased_at: ColumnType<Date | null, never, never>;
  /** `<provider>:<account id>` or `<provider>:` (migration 20261204000100, docs/scaling.md): the key a distributed store shards on; never hashed. */
  account_key: string;
}

export interface StreamsTable {
  stream_name: string;
  version: number;
  last_hash: Buffer | null;
  /** The key of the delivery that made the head; every event of the stream carries it. */
  account_key: string;
}

export interface EventsTable {
  global_position: GeneratedInt8;
  transaction_id: Generated<string>;
  event_id: string;
  stream_name: string;
  stream_version: number;
  type: string;
  schema_version: number;
  data: ColumnType<unknown, string, never>;
  metadata: ColumnType<Record<string, unknown>, string, never>;
  receipt_id: Int8;
  occurred_at: ColumnType<Date | null, Date | string | null, never>;
  received_at: Timestamp;
  prev_hash: Buffer | null;
  hash: Buffer;
  chain_version: Generated<number>;
  recorded_at: Generated<Date>;
  /** Its stream head's `account_key`. */
  account_key: string;
}

export interface LedgerCheckpointsTable {
  seq: Int8;
  created_at: Timestamp;
  from_xmin: string;
  to_xmin: string;
  position: Int8;
  stream_count: Int8;
  head_count: number;
  heads_sha256: Buffer;
  prev_digest: Buffer | null;
  digest: Buffer;
  signature: Buffer | null;
  public_key_sha256: Buffer | null;
}

export interface LedgerCheckpointHeadsTable {
  seq: Int8;
  stream_name: string;
  version: number;
  hash: Buffer;
}

/** Imports and admin actions by API key name (migration 20261201000500). */
export interface AuditActionsTable {
  id: GeneratedInt8;
  at: Generated<Date>;
  key_name: string;
  action: string;
  details: ColumnType<Record<string, unknown>, string, never>;
}

/** A receipt translated again by a newer translator (docs/providers.md, "Translator versions and re-translation"); append-only. */
export interface ReceiptTranslationsTable {
  receipt_id: Int8;
  version: number;
  /** The receipt's events at or below this position belong to older translations. */
  supersedes_through: Int8;
  event_count: number;
  translated_at: Generated<Date>;
  /** Its receipt's `account_key`. */
  account_key: string;
}

export interface TranslationProgressTable {
  provider: string;
  version: number;
  through_receipt: Int8;
  until_receipt: Int8;
  done: boolean;
  updated_at: Generated<Date>;
}

export interface DB {
  webhook_receipts: WebhookReceiptsTable;
  streams: StreamsTable;
  events: EventsTable;
  ledger_checkpoints: LedgerCheckpointsTable;
  ledger_checkpoint_heads: LedgerCheckpointHeadsTable;
  audit_actions: AuditActionsTable;
  receipt_translations: ReceiptTranslationsTable;
  translation_progress: TranslationProgressTable;
}
