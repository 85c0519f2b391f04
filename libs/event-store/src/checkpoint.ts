import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

/**
 * Checkpoints anchor the hash chains outside the database. Each one covers a window of transactions,
 * [fromXmin, toXmin), and commits to the head (last version and hash) of every stream that changed in it; it
 * also commits to the digest of the checkpoint before it, so the sequence as a whole commits to every head
 * ever written up to its position. Its message is signed with Ed25519 when a key is configured. Nothing here
 * touches the database: the service, the verify route and the offline verifier share these functions.
 */
export const CHECKPOINT_FORMAT = 'call-ledger-checkpoint/1';

export interface CheckpointHead {
  streamName: string;
  version: number;
  /** Hex sha256 of the stream's last event in the window. */
  hash: string;
}

/** The signed fields of a checkpoint. Positions and xids are decimal strings (int8 / xid8). */
export interface CheckpointBody {
  seq: number;
  createdAt: string;
  fromXmin: string;
  toXmin: string;
  /** Highest global position covered so far. */
  position: string;
  /** Streams that exist as of this checkpoint (those whose version 1 falls in this or an earlier window). */
  streamCount: number;
  headCount: number;
  headsSha256: string;
  prevDigest: string | null;
}

/** The heads in the digest's order: by stream name in UTF-16 code-unit order (not a database collation). */
export const sortedHeads = <H extends CheckpointHead>(heads: readonly H[]): H[] =>
  [...heads].sort((a, b) => (a.streamName < b.streamName ? -1 : a.streamName > b.streamName ? 1 : 0));

/** A head's line in the digest. */
export const headLine = (x: CheckpointHead): string => `${JSON.stringify(x.streamName)} ${x.version} ${x.hash}\n`;

/** Sorted (sortedHeads), one line per head (headLine). */
export const headsSha256 = (heads: readonly CheckpointHead[]): string => {
  const h = createHash('sha256');
  for (const x of sortedHeads(heads)) h.update(headLine(x), 'utf8');
  return h.digest('hex');
};

/** Exactly the signed fields (a record passed in carries its digest and signature too: they are not signed). */
export const checkpointMessage = (b: CheckpointBody): string =>
  canonicalJson({
    format: CHECKPOINT_FORMAT,
    seq: b.seq,
    createdAt: b.createdAt,
    fromXmin: b.fromXmin,
    toXmin: b.toXmin,
    position: b.position,
    streamCount: b.streamCount,
    headCount: b.headCount,
    headsSha256: b.headsSha256,
    prevDigest: b.prevDigest,
  });

export const checkpointDigest = (b: CheckpointBody): string => createHash('sha256').update(checkpointMessage(b), 'utf8').digest('hex');

export interface CheckpointSigner {
  sign(message: string): Buffer;
  publicKey: KeyObject;
  /** SPKI PEM of the public key, served and exported so that a third party can check signatures. */
  publicKeyPem: string;
  publicKeySha256: Buffer;
}

const keyText = (text: string): string => text.trim().replace(/\\n/g, '\n');

/**
 * An Ed25519 private key as PKCS#8 PEM, or as base64 of the PKCS#8 DER (one line, for environment variables).
 * Anything else is refused at start: a ledger that silently signs nothing would be worse than one that says so.
 */
export const loadSigningKey = (text: string): CheckpointSigner => {
  const t = keyText(text);
  const key = t.includes('-----BEGIN')
    ? createPrivateKey(t)
    : createPrivateKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'pkcs8' });
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`checkpoint signing key must be Ed25519, got ${key.asymmetricKeyType ?? 'a secret key'}`);
  const publicKey = createPublicKey(key);
  return {
    sign: (message) => sign(null, Buffer.from(message, 'utf8'), key),
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    publicKeySha256: publicKeyFingerprint(publicKey),
  };
};

/** An Ed25519 public key as SPKI PEM or base64 of the SPKI DER. */
export const loadPublicKey = (text: string): KeyObject => {
  const t = keyText(text);
  const key = t.includes('-----BEGIN') ? createPublicKey(t) : createPublicKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`checkpoint public key must be Ed25519, got ${key.asymmetricKeyType}`);
  return key;
};

export const publicKeyFingerprint = (key: KeyObject): Buffer => createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest();

export const verifyCheckpointSignature = (b: CheckpointBody, signature: Buffer, key: KeyObject): boolean => {
  try {
    return verify(null, Buffer.from(checkpointMessage(b), 'utf8'), key, signature);
  } catch {
    return false;
  }
};

/** A stored or exported checkpoint: the signed body, its digest and signature. */
export interface CheckpointRecord extends CheckpointBody {
  digest: string;
  signature: string | null;
}

export interface CheckpointProblem {
  seq: number;
  reason: string;
}

/**
 * Checks a sequence of checkpoints against each other and their signatures (not yet against the events):
 * numbering without gaps, each digest recomputed, each linked to the previous one, signatures valid with the
 * given key, and no unsigned checkpoint after a signed one (stripping signatures is an attack, not a setting).
 */
export class CheckpointSequenceChecker {
  readonly problems: CheckpointProblem[] = [];
  checked = 0;
  signed = 0;
  unsigned = 0;
  private prev: CheckpointRecord | null = null;

  constructor(private readonly publicKey: KeyObject | null) {}

  add(c: CheckpointRecord, heads: readonly CheckpointHead[]): void {
    const problem = (reason: string) => this.problems.push({ seq: c.seq, reason });
    this.checked += 1;
    const expectedSeq = (this.prev?.seq ?? 0) + 1;
    if (c.seq !== expectedSeq) problem(`checkpoint ${expectedSeq}${c.seq > expectedSeq + 1 ? `..${c.seq - 1}` : ''} missing (deleted)`);
    if (this.prev && c.prevDigest !== this.prev.digest) problem('does not link to the digest of the checkpoint before it');
    if (this.prev && c.fromXmin !== this.prev.toXmin) problem('its window does not start where the previous one ended');
    if (!this.prev && c.seq === 1 && c.prevDigest !== null) problem('the first checkpoint names a previous one');
    if (checkpointDigest(c) !== c.digest) problem('its fields do not match its digest (edited)');
    if (heads.length !== c.headCount || headsSha256(heads) !== c.headsSha256) problem('its list of stream heads does not match the signed digest of that list (edited)');
    if (c.signature === null) {
      this.unsigned += 1;
      if (this.signed > 0) problem('unsigned, although earlier checkpoints are signed (signature stripped?)');
    } else {
      this.signed += 1;
      if (this.publicKey && !verifyCheckpointSignature(c, Buffer.from(c.signature, 'base64'), this.publicKey)) {
        problem('its signature does not verify with the public key');
      }
    }
    this.prev = c;
  }
}

/**
 * Compares the heads a checkpoint signed with the heads recomputed from the events of its window. Returns the
 * streams that differ, with the reason.
 */
export const compareWindowHeads = (
  signed: readonly CheckpointHead[],
  recomputed: readonly CheckpointHead[],
  /** Versions that retention archived and dropped: a signed head among them is the archive's to prove. */
  archived: (streamName: string, version: number) => boolean = () => false,
): { streamName: string; reason: string }[] => {
  const out: { streamName: string; reason: string }[] = [];
  const now = new Map(recomputed.map((h) => [h.streamName, h]));
  const listed = new Set<string>();
  for (const s of signed) {
    listed.add(s.streamName);
    if (archived(s.streamName, s.version)) continue;
    const r = now.get(s.streamName);
    if (!r) out.push({ streamName: s.streamName, reason: `a signed checkpoint lists version ${s.version} of this stream, which is no longer in the store (stream or events deleted)` });
    else if (r.version !== s.version) out.push({ streamName: s.streamName, reason: `a signed checkpoint lists version ${s.version} as this stream's head in its window; the store has ${r.version} (events deleted or inserted)` });
    else if (r.hash !== s.hash) out.push({ streamName: s.streamName, reason: `the hash of version ${s.version} differs from the one a signed checkpoint holds (the chain was rewritten)` });
  }
  for (const r of recomputed) {
    if (!listed.has(r.streamName)) out.push({ streamName: r.streamName, reason: `events in a checkpointed window that the checkpoint does not list (inserted afterwards)` });
  }
  return out;
};

/** Is xid8 `a` before `b`? (decimal strings, compared as integers) */
export const xidBefore = (a: string, b: string): boolean => BigInt(a) < BigInt(b);
