import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { sealedDocuments, sealsOf } from './personal-seals.js';

/**
 * The rule an event was hashed with. 1: the event alone (stores written before issue 10). 2: the event and the
 * metadata of the receipt it came from, so that the owner cannot change a signature verdict, an address or a
 * stored signature header without breaking the chain. 3: as 2, but each personal field (numbers, SIP URIs, what
 * the caller said or keyed, the receipt's query) is hashed as a salted commitment (personal-seals.ts), so that an
 * erasure can drop the value and keep the commitment. Old events keep verifying under the rule they were hashed with.
 */
export const CHAIN_VERSION = 3;

/** The receipt's columns that rule 2 hashes, as they are stored (text normalised by `storableText`). */
export interface HashedReceiptMeta {
  provider: string;
  contentType: string | null;
  path: string;
  query: string;
  headers: Record<string, string>;
  remoteAddr: string | null;
  source: string;
  signatureStatus: string;
  signatureTimestamp: string | null;
}

/** What an event's hash covers besides its stream version and the previous event's hash. */
export interface ChainedEventContent {
  chainVersion: number;
  eventId: string;
  streamName: string;
  streamVersion: number;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: unknown;
  /** Hex sha256 of the raw body the event was translated from: tampering with the receipt breaks the chain. */
  bodySha256: string;
  receivedAt: string;
  occurredAt: string | null;
  /** Rule 2 only. */
  receipt: HashedReceiptMeta | null;
}

type ContentFields = Omit<ChainedEventContent, 'streamVersion' | 'data' | 'metadata' | 'receipt'>;

/**
 * The canonical text that is hashed; computed by the writer, recomputed from stored columns by the verifier. Under
 * rule 3 the documents are first sealed: personal values replaced by their commitments.
 */
export const chainContent = (
  c: Omit<ChainedEventContent, 'streamVersion'>,
  /** The canonical texts of the stored documents when the caller has them (the writer): reused where nothing is sealed. */
  known: { dataText?: string; metadataText?: string; receiptText?: string } = {},
): string => {
  const docs = c.chainVersion >= 3 ? sealedDocuments({ data: c.data, metadata: c.metadata, receipt: c.receipt }) : { data: c.data, metadata: c.metadata, receipt: c.receipt, touched: null };
  const kept = (root: 'data' | 'metadata' | 'receipt') => docs.touched === null || !docs.touched[root];
  // Fields named, not `{ ...c, dataText, ... }`: a spread clone given new keys is promoted by V8's young-generation
  // collections (event-store.repository.ts, eventRowTexts), and this runs once per event appended.
  return chainContentOfText({
    chainVersion: c.chainVersion,
    eventId: c.eventId,
    streamName: c.streamName,
    type: c.type,
    schemaVersion: c.schemaVersion,
    bodySha256: c.bodySha256,
    receivedAt: c.receivedAt,
    occurredAt: c.occurredAt,
    dataText: (kept('data') ? known.dataText : undefined) ?? canonicalJson(docs.data),
    metadataText: (kept('metadata') ? known.metadataText : undefined) ?? canonicalJson(docs.metadata),
    receiptText: docs.receipt ? ((kept('receipt') ? known.receiptText : undefined) ?? receiptMetaText(docs.receipt)) : null,
  });
};

export const receiptMetaText = (r: HashedReceiptMeta): string => canonicalJson(r);

/** Headers that carry a signature: hashed (and exported) as their sha256, never as the value. */
export const SIGNATURE_HEADERS = ['freeclimb-signature', 'jambonz-signature', 'x-twilio-signature'] as const;

/**
 * The receipt metadata as rule 2 hashes it, from the stored columns. A signature header enters as
 * `sha256:<hex of its value>`: an edited stored signature still breaks the chain, and the audit export, which
 * must carry what is hashed, never carries a full signature.
 */
export const hashedReceiptMeta = (
  r: Omit<HashedReceiptMeta, 'signatureTimestamp'> & { signatureTimestamp: Date | string | null },
): HashedReceiptMeta => {
  const headers: Record<string, string> = { ...r.headers };
  for (const name of SIGNATURE_HEADERS) {
    const v = headers[name];
    if (v !== undefined) headers[name] = `sha256:${createHash('sha256').update(v, 'utf8').digest('hex')}`;
  }
  const ts = r.signatureTimestamp;
  return {
    provider: r.provider,
    contentType: r.contentType,
    path: r.path,
    query: r.query,
    headers,
    remoteAddr: r.remoteAddr,
    source: r.source,
    signatureStatus: r.signatureStatus,
    signatureTimestamp: ts === null ? null : typeof ts === 'string' ? ts : ts.toISOString(),
  };
};

/** A receipt row as the store keeps it (snake_case columns), as read for a chain link. */
export interface StoredReceiptColumns {
  chain_version: number;
  provider: string;
  content_type: string | null;
  path: string;
  query: string;
  headers: Record<string, string>;
  remote_addr: string | null;
  source: string;
  signature_status: string;
  signature_timestamp: Date | string | null;
}

/** The receipt metadata a link's hash covers: chain version 2 on; version 1 links hashed none. */
export const chainReceiptOf = (r: StoredReceiptColumns): HashedReceiptMeta | null =>
  r.chain_version >= 2
    ? hashedReceiptMeta({
        provider: r.provider,
        contentType: r.content_type,
        path: r.path,
        query: r.query,
        headers: r.headers,
        remoteAddr: r.remote_addr,
        source: r.source,
        signatureStatus: r.signature_status,
        signatureTimestamp: r.signature_timestamp,
      })
    : null;

/**
 * Same text from data, metadata and receipt already in canonical form (the writer's hot path). For rule 3 the
 * texts must be of the sealed documents (`chainContent` seals them).
 */
export const chainContentOfText = (c: ContentFields & { dataText: string; metadataText: string; receiptText: string | null }): string => {
  const common = `${JSON.stringify(c.eventId)},${JSON.stringify(c.streamName)},${JSON.stringify(c.type)},${c.schemaVersion},${c.dataText},${c.metadataText},${JSON.stringify(c.bodySha256)},${JSON.stringify(c.receivedAt)},${c.occurredAt === null ? 'null' : JSON.stringify(c.occurredAt)}`;
  if (c.chainVersion === 1) return `[${common}]`;
  if (c.chainVersion === 2) {
    if (c.receiptText === null) throw new Error('chain version 2 hashes the receipt metadata');
    // The rule is spelled inside the hashed text: an event cannot be re-labelled as another rule's.
    return `["chain/2",${common},${c.receiptText}]`;
  }
  if (c.chainVersion === 3) {
    if (c.receiptText === null) throw new Error('chain version 3 hashes the receipt metadata');
    return `["chain/3",${common},${c.receiptText}]`;
  }
  throw new Error(`unknown chain version ${c.chainVersion}`);
};

/**
 * hash = sha256(previous hash || "<version>:" || content). The database computes the same expression when it
 * hands out the version (ledger_append), so that versions are never guessed by the client.
 */
export const computeEventHash = (prevHash: Buffer | null, content: ChainedEventContent): Buffer =>
  createHash('sha256')
    .update(prevHash ?? Buffer.alloc(0))
    .update(`${content.streamVersion}:${chainContent(content)}`, 'utf8')
    .digest();

export interface StoredChainLink extends ChainedEventContent {
  position: string;
  /** xid8 of the writing transaction, as text: which checkpoint window the event belongs to. */
  transactionId?: string;
  receiptId: string;
  prevHash: Buffer | null;
  hash: Buffer;
  /**
   * sha256 recomputed from the receipt's stored body bytes, to catch an edited receipt; null when the body was
   * dropped by an erasure (the recorded sha256 is then all the chain has, and all it needs).
   */
  actualBodySha256: string | null;
}

/** The row of `streams`: what the writer recorded as the stream's last version and hash. */
export interface StreamHead {
  version: number;
  lastHash: Buffer | null;
}

export interface BrokenLink {
  streamName: string;
  position: string;
  streamVersion: number;
  reason: string;
}

/**
 * A run of consecutive versions of a stream that retention archived and dropped from the live store: the chain goes
 * through it from `prevHash` (the hash before its first version) to `lastHash`. Its events are in the archive.
 */
export interface ArchivedRun {
  firstVersion: number;
  prevHash: Buffer | null;
  lastVersion: number;
  lastHash: Buffer;
  /** The archived month, YYYY-MM-DD. */
  month: string;
}

/**
 * Walks one stream in version order and reports the first link that does not hold. Anything after a broken
 * link is unverifiable, so one report per stream is the honest answer. With the stream's head row, a chain
 * that ends before the head (its last events deleted) or on another hash is reported too. Versions that retention
 * archived (`archived`) are stepped over: the chain must reach each run's previous hash and resume at its last hash.
 */
export const verifyStreamChain = (links: readonly StoredChainLink[], head?: StreamHead | null, archived: readonly ArchivedRun[] = []): BrokenLink | null => {
  let prev: Buffer | null = null;
  let expectedVersion = 1;
  let sawRule2 = false;
  let last: StoredChainLink | undefined;
  const runs = new Map(archived.map((r) => [r.firstVersion, r]));
  const stepOverArchived = (): string | null => {
    for (let run = runs.get(expectedVersion); run; run = runs.get(expectedVersion)) {
      if (!sameBytes(run.prevHash, prev)) return `the archived versions ${run.firstVersion}-${run.lastVersion} (month ${run.month}) do not chain from the hash before them`;
      prev = run.lastHash;
      expectedVersion = run.lastVersion + 1;
    }
    return null;
  };
  // Links an erasure changed (body dropped, a value replaced by its commitment) and the positions the stream's
  // PersonalDataErased events name: an erasure that left no record is reported (README "Erasure and its proof").
  const erased: StoredChainLink[] = [];
  const recorded = new Set<string>();
  for (const link of links) {
    const at = (reason: string): BrokenLink => ({
      streamName: link.streamName,
      position: link.position,
      streamVersion: link.streamVersion,
      reason,
    });
    if (link.streamVersion !== expectedVersion) {
      const gap = stepOverArchived();
      if (gap) return at(gap);
    }
    if (link.streamVersion !== expectedVersion) return at(`stream version ${link.streamVersion} where ${expectedVersion} was expected (an event is missing or was inserted)`);
    if (!sameBytes(link.prevHash, prev)) return at('previous-hash does not match the hash of the event before it');
    if (link.actualBodySha256 !== null && link.actualBodySha256 !== link.bodySha256) return at('raw webhook body no longer matches its recorded sha256');
    // Rule 1 spells no rule in its text; 2 and 3 do, and an instance of the previous release may still write 2
    // after 3 during a rolling upgrade.
    if (link.chainVersion < 2 && sawRule2) return at(`chain version ${link.chainVersion} after a version-2 event (relabelled to escape the receipt check)`);
    if (!computeEventHash(prev, link).equals(link.hash)) {
      return at(link.chainVersion >= 2 ? 'event content or its receipt metadata does not match its hash' : 'event content does not match its hash');
    }
    sawRule2 ||= link.chainVersion >= 2;
    if (link.actualBodySha256 === null || Object.values(sealsOf(link.metadata)).some((seal) => seal.startsWith('c:'))) erased.push(link);
    if (link.type === 'PersonalDataErased') for (const p of positionsNamed(link.data)) recorded.add(p);
    prev = link.hash;
    expectedVersion += 1;
    last = link;
  }
  const tail = stepOverArchived();
  const lastVersion = expectedVersion - 1;
  const where = { streamName: last?.streamName ?? '', position: last?.position ?? '0', streamVersion: lastVersion };
  if (tail) return { ...where, reason: tail };
  if (head) {
    if (head.version !== lastVersion) {
      return { ...where, reason: `the stream head records version ${head.version} but the chain ends at ${lastVersion} (events deleted from its end, or the head edited)` };
    }
    if (!sameBytes(head.lastHash, prev)) return { ...where, reason: 'the stream head records another last hash (the chain was rewritten)' };
  }
  const unrecorded = erased.find((l) => !recorded.has(l.position));
  if (unrecorded) {
    return {
      streamName: unrecorded.streamName,
      position: unrecorded.position,
      streamVersion: unrecorded.streamVersion,
      reason: 'erased (body dropped or a value replaced by its commitment) with no PersonalDataErased event after it that names it',
    };
  }
  return null;
};

const positionsNamed = (data: unknown): string[] => {
  const p = data !== null && typeof data === 'object' ? (data as { positions?: unknown }).positions : undefined;
  return Array.isArray(p) ? p.map(String) : [];
};

const sameBytes = (a: Buffer | null, b: Buffer | null): boolean =>
  a === null || b === null ? a === b : a.equals(b);
