import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

/** What an event's hash covers besides its stream version and the previous event's hash. */
export interface ChainedEventContent {
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
}

/** The canonical text that is hashed; computed by the writer, recomputed from stored columns by the verifier. */
export const chainContent = (c: Omit<ChainedEventContent, 'streamVersion'>): string =>
  chainContentOfText({ ...c, dataText: canonicalJson(c.data), metadataText: canonicalJson(c.metadata) });

/** Same text from data and metadata already in canonical form (the writer's hot path; no re-serialising). */
export const chainContentOfText = (
  c: Omit<ChainedEventContent, 'streamVersion' | 'data' | 'metadata'> & { dataText: string; metadataText: string },
): string =>
  `[${JSON.stringify(c.eventId)},${JSON.stringify(c.streamName)},${JSON.stringify(c.type)},${c.schemaVersion},${c.dataText},${c.metadataText},${JSON.stringify(c.bodySha256)},${JSON.stringify(c.receivedAt)},${c.occurredAt === null ? 'null' : JSON.stringify(c.occurredAt)}]`;

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
  receiptId: string;
  prevHash: Buffer | null;
  hash: Buffer;
  /** sha256 recomputed from the receipt's stored body bytes, to catch an edited receipt. */
  actualBodySha256: string;
}

export interface BrokenLink {
  streamName: string;
  position: string;
  streamVersion: number;
  reason: string;
}

/**
 * Walks one stream in version order and reports the first link that does not hold. Anything after a broken
 * link is unverifiable, so one report per stream is the honest answer.
 */
export const verifyStreamChain = (links: readonly StoredChainLink[]): BrokenLink | null => {
  let prev: Buffer | null = null;
  let expectedVersion = 1;
  for (const link of links) {
    const at = (reason: string): BrokenLink => ({
      streamName: link.streamName,
      position: link.position,
      streamVersion: link.streamVersion,
      reason,
    });
    if (link.streamVersion !== expectedVersion) return at(`stream version ${link.streamVersion} where ${expectedVersion} was expected (an event is missing or was inserted)`);
    if (!sameBytes(link.prevHash, prev)) return at('previous-hash does not match the hash of the event before it');
    if (link.actualBodySha256 !== link.bodySha256) return at('raw webhook body no longer matches its recorded sha256');
    if (!computeEventHash(prev, link).equals(link.hash)) return at('event content does not match its hash');
    prev = link.hash;
    expectedVersion += 1;
  }
  return null;
};

const sameBytes = (a: Buffer | null, b: Buffer | null): boolean =>
  a === null || b === null ? a === b : a.equals(b);
