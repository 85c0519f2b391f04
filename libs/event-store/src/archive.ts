import { createHash, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { loadPublicKey, publicKeyFingerprint, type CheckpointSigner } from './checkpoint.js';
import { computeEventHash, type ArchivedRun, type StoredChainLink } from './hash-chain.js';
import { ErasedLinks, positionsListed, type ArchiveErasureEntry } from './archive-erasure.js';
import type { ArchivedReceiptRow } from './retention.repository.js';

/**
 * 2: the manifest lists the erasures applied to the month (`erasures`), and every erased row must be named by one of
 * them or by a `PersonalDataErased` in the archive. 1 (written before archive erasure): verified as before, erased
 * rows are not checked against a record.
 */
export const ARCHIVE_FORMAT = 'call-ledger-archive/2';
export const ARCHIVE_FORMATS = ['call-ledger-archive/1', ARCHIVE_FORMAT] as const;

/** The files of an archived month, beside `manifest.json` in its folder. */
export const ARCHIVE_FILES = ['receipts.ndjson', 'events.ndjson', 'runs.ndjson'] as const;
export type ArchiveFile = (typeof ARCHIVE_FILES)[number];

export interface FileDigest {
  sha256: string;
  bytes: number;
  lines: number;
}

/**
 * What an archived month holds and what it proves. Signed (Ed25519, the checkpoint key) over the canonical JSON of
 * every field but `signature`. `runs.ndjson` lists each stream's runs of archived versions (the chain heads the
 * archive covers, `lastVersion`/`lastHash`, and the anchors the chain comes from, `prevHash`): the live chain, or the
 * next archive, resumes at a run's last hash.
 */
export interface ArchiveManifest {
  format: (typeof ARCHIVE_FORMATS)[number];
  /** YYYY-MM-DD, first day of the month (UTC). */
  month: string;
  range: { from: string; to: string };
  createdAt: string;
  counts: { receipts: number; events: number; streams: number; runs: number };
  files: Record<ArchiveFile, FileDigest>;
  /** The retention decision: each (provider, account) present, its rule, and until when the archive must keep it. */
  retention: { rule: string; dropAt: string | null; pairs: { provider: string; accountId: string | null; days: number | 'keep'; keepUntil: string | null }[] };
  /**
   * Format 2: each erasure applied to the month's rows, in order: those that reached it in the archive (its files
   * rewritten, this manifest signed again) and those applied while it was live whose record is outside the month.
   */
  erasures?: ArchiveErasureEntry[];
  /** When the files were last rewritten by an erasure (absent: never). */
  updatedAt?: string;
  publicKeySha256: string | null;
  signature: string | null;
}

export const manifestMessage = (m: Omit<ArchiveManifest, 'signature'> & { signature?: unknown }): string => {
  const { signature: _s, ...body } = m;
  return canonicalJson(body);
};

export const signManifest = (m: Omit<ArchiveManifest, 'signature' | 'publicKeySha256'>, signer: CheckpointSigner | null): ArchiveManifest => {
  const body = { ...m, publicKeySha256: signer ? signer.publicKeySha256.toString('hex') : null };
  return { ...body, signature: signer ? signer.sign(manifestMessage(body)).toString('base64') : null };
};

/**
 * A chain link back from its NDJSON line (an archive's or the audit export's `event` line, written by
 * chainLinkLine). `actualBodySha256` is the sha256 of the body as the reader found it (null: erased).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untrusted JSON; the hashes vouch for it
export const chainLinkOfLine = (o: Record<string, any>, actualBodySha256: string | null): StoredChainLink => ({
  chainVersion: o.chainVersion,
  eventId: o.eventId,
  streamName: o.streamName,
  streamVersion: o.streamVersion,
  type: o.type,
  schemaVersion: o.schemaVersion,
  data: o.data,
  metadata: o.metadata,
  bodySha256: o.bodySha256,
  receivedAt: o.receivedAt,
  occurredAt: o.occurredAt,
  receipt: o.receipt ?? null,
  position: String(o.position),
  ...(o.transactionId !== undefined ? { transactionId: String(o.transactionId) } : {}),
  receiptId: String(o.receiptId),
  prevHash: o.prevHash ? Buffer.from(String(o.prevHash), 'hex') : null,
  hash: Buffer.from(String(o.hash), 'hex'),
  actualBodySha256,
});

/** One chain link as an NDJSON object: the audit export's `event` line (offline-verify.ts reads the same fields). */
export const chainLinkLine = (l: StoredChainLink) => ({
  kind: 'event' as const,
  position: l.position,
  transactionId: l.transactionId,
  streamName: l.streamName,
  streamVersion: l.streamVersion,
  chainVersion: l.chainVersion,
  eventId: l.eventId,
  type: l.type,
  schemaVersion: l.schemaVersion,
  data: l.data,
  metadata: l.metadata,
  receiptId: l.receiptId,
  receipt: l.receipt,
  bodySha256: l.bodySha256,
  actualBodySha256: l.actualBodySha256,
  receivedAt: l.receivedAt,
  occurredAt: l.occurredAt,
  prevHash: l.prevHash?.toString('hex') ?? null,
  hash: l.hash.toString('hex'),
});

export const receiptLine = (r: ArchivedReceiptRow) => ({
  id: r.id,
  provider: r.provider,
  bodySha256: r.body_sha256.toString('hex'),
  dedupeKey: r.dedupe_key?.toString('hex') ?? null,
  body: r.body.toString('base64'),
  contentType: r.content_type,
  path: r.path,
  query: r.query,
  headers: r.headers,
  remoteAddr: r.remote_addr,
  receivedAt: r.received_at.toISOString(),
  source: r.source,
  signatureStatus: r.signature_status,
  signatureTimestamp: r.signature_timestamp?.toISOString() ?? null,
  recordedAt: r.recorded_at.toISOString(),
  erasedAt: r.erased_at?.toISOString() ?? null,
});

/** `[stream, firstVersion, prevHash hex | null, lastVersion, lastHash hex]` */
export type RunLine = [string, number, string | null, number, string];

/** Folds a stream-ordered sequence of links into runs of consecutive versions (what ledger_detach_month records). */
export class RunCollector {
  private cur: { stream: string; run: ArchivedRun } | null = null;
  readonly done: RunLine[] = [];
  streams = 0;

  constructor(private readonly month: string) {}

  add(l: StoredChainLink): RunLine[] {
    const out: RunLine[] = [];
    const c = this.cur;
    if (c && c.stream === l.streamName && c.run.lastVersion + 1 === l.streamVersion) {
      c.run.lastVersion = l.streamVersion;
      c.run.lastHash = l.hash;
      return out;
    }
    if (c) out.push(this.flush());
    if (!c || c.stream !== l.streamName) this.streams += 1;
    this.cur = { stream: l.streamName, run: { firstVersion: l.streamVersion, prevHash: l.prevHash, lastVersion: l.streamVersion, lastHash: l.hash, month: this.month } };
    return out;
  }

  end(): RunLine[] {
    return this.cur ? [this.flush()] : [];
  }

  private flush(): RunLine {
    const { stream, run } = this.cur!;
    this.cur = null;
    return [stream, run.firstVersion, run.prevHash?.toString('hex') ?? null, run.lastVersion, run.lastHash.toString('hex')];
  }
}

export interface ArchiveReport {
  valid: boolean;
  month: string | null;
  receipts: number;
  events: number;
  streams: number;
  runs: number;
  /** Erasures the manifest lists as applied to the month. */
  erasures: number;
  signatureChecked: boolean;
  problems: string[];
  notes: string[];
}

/**
 * Verifies an archived month with no database (`npm run verify -- <archive dir>`): the manifest's signature, each
 * file's sha256, every receipt body against its recorded sha256, every event's hash recomputed, each run of a
 * stream from its anchor (`prevHash`) to its head (`lastHash`), and the counts. `digests` are the files' sha256 as
 * read from disk. Receipts are held as id → body sha256 while the events are read.
 */
export const verifyArchive = async (
  manifestText: string,
  digests: Record<ArchiveFile, FileDigest>,
  /** Each file's lines, opened when it is read (one after the other). */
  files: Record<ArchiveFile, () => AsyncIterable<string> | Iterable<string>>,
  options: { publicKey?: string } = {},
): Promise<ArchiveReport> => {
  const report: ArchiveReport = { valid: false, month: null, receipts: 0, events: 0, streams: 0, runs: 0, erasures: 0, signatureChecked: false, problems: [], notes: [] };
  const problem = (p: string) => report.problems.push(p);
  let m: ArchiveManifest;
  try {
    m = JSON.parse(manifestText) as ArchiveManifest;
  } catch {
    problem('manifest.json is not JSON');
    return report;
  }
  if (!(ARCHIVE_FORMATS as readonly string[]).includes(m.format)) problem(`manifest format ${String(m.format)} is not one of ${ARCHIVE_FORMATS.join(', ')}`);
  const listsErasures = m.format === ARCHIVE_FORMAT;
  if (listsErasures && !Array.isArray(m.erasures)) problem('the manifest lists no erasures (format 2 must)');
  report.month = m.month ?? null;

  const key: KeyObject | null = options.publicKey ? loadPublicKey(options.publicKey) : null;
  if (key) {
    report.signatureChecked = true;
    if (!m.signature) problem('the manifest is not signed');
    else if (!verify(null, Buffer.from(manifestMessage(m), 'utf8'), key, Buffer.from(m.signature, 'base64'))) problem('the manifest signature does not verify with the given public key');
    else if (m.publicKeySha256 !== publicKeyFingerprint(key).toString('hex')) problem('the manifest names another public key');
  } else {
    report.notes.push(m.signature ? 'no public key given: the manifest signature was not checked (pass --public-key)' : 'the manifest is not signed');
  }
  for (const f of ARCHIVE_FILES) {
    const want = m.files?.[f];
    const got = digests[f];
    if (!want) problem(`the manifest lists no ${f}`);
    else if (want.sha256 !== got.sha256 || want.bytes !== got.bytes) problem(`${f} does not match the sha256 and size in the manifest (changed after archiving)`);
  }

  // Receipt id → sha256 of its body, or null for a body an erasure dropped (its recorded sha256 is what is hashed).
  const bodies = new Map<string, string | null>();
  for await (const raw of files['receipts.ndjson']()) {
    if (raw.trim() === '') continue;
    const r = JSON.parse(raw) as { id: string; bodySha256: string; body: string; erasedAt?: string | null };
    report.receipts += 1;
    if (r.erasedAt) {
      bodies.set(r.id, null);
      continue;
    }
    const actual = createHash('sha256').update(Buffer.from(r.body, 'base64')).digest('hex');
    if (actual !== r.bodySha256) problem(`receipt ${r.id}: body does not match its recorded sha256`);
    bodies.set(r.id, actual);
  }

  const runs = new Map<string, Map<number, { prev: string | null; last: number; lastHash: string; seen: boolean }>>();
  for await (const raw of files['runs.ndjson']()) {
    if (raw.trim() === '') continue;
    const [stream, first, prev, last, lastHash] = JSON.parse(raw) as RunLine;
    report.runs += 1;
    (runs.get(stream) ?? runs.set(stream, new Map()).get(stream)!).set(first, { prev, last, lastHash, seen: false });
  }
  report.streams = runs.size;

  const erasedLinks = new ErasedLinks();
  let cur: { stream: string; run: { prev: string | null; last: number; lastHash: string; seen: boolean }; version: number; hash: Buffer | null } | null = null;
  const closeRun = () => {
    if (cur && (cur.version !== cur.run.last || cur.hash?.toString('hex') !== cur.run.lastHash)) {
      problem(`${cur.stream}: the archived run ends at version ${cur.version}, the runs list says ${cur.run.last} with another hash`);
    }
    cur = null;
  };
  for await (const raw of files['events.ndjson']()) {
    if (raw.trim() === '') continue;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- untrusted JSON; the hashes vouch for it
    const o = JSON.parse(raw) as Record<string, any>;
    report.events += 1;
    const link = chainLinkOfLine(o, bodies.has(String(o.receiptId)) ? (bodies.get(String(o.receiptId)) as string | null) : '');
    erasedLinks.add({ ...link, bodyErased: link.actualBodySha256 === null });
    const at = `${link.streamName} version ${link.streamVersion}`;
    const c = cur as typeof cur;
    const continues = c !== null && c.stream === link.streamName && c.version + 1 === link.streamVersion;
    if (!continues) {
      closeRun();
      const run = runs.get(link.streamName)?.get(link.streamVersion);
      if (!run) {
        problem(`${at}: not the start of a run the archive lists`);
        continue;
      }
      run.seen = true;
      cur = { stream: link.streamName, run, version: link.streamVersion - 1, hash: run.prev ? Buffer.from(run.prev, 'hex') : null };
    }
    const now = cur!;
    if ((link.prevHash?.toString('hex') ?? null) !== (now.hash?.toString('hex') ?? null)) problem(`${at}: previous-hash does not match the hash before it`);
    if (!bodies.has(link.receiptId)) problem(`${at}: its receipt ${link.receiptId} is not in the archive`);
    else if (link.actualBodySha256 !== null && link.actualBodySha256 !== link.bodySha256) problem(`${at}: the receipt body does not match the sha256 the event hashed`);
    if (!computeEventHash(now.hash, link).equals(link.hash)) problem(`${at}: event content or its receipt metadata does not match its hash`);
    now.version = link.streamVersion;
    now.hash = link.hash;
  }
  closeRun();
  // Anyone holding the files can replace a value by its commitment (the nonce is beside it): only a signed record
  // tells an erasure from an edit that hides a value.
  const unnamed = erasedLinks.unnamed(positionsListed(Array.isArray(m.erasures) ? m.erasures : []));
  if (listsErasures) {
    for (const [position, l] of unnamed) problem(`${l.stream} at ${position}: erased with no erasure in the manifest nor a PersonalDataErased in the archive naming it`);
  } else if (unnamed.size > 0) {
    report.notes.push(`${unnamed.size} erased rows are not checked against an erasure record (archive format 1 lists none)`);
  }
  report.erasures = Array.isArray(m.erasures) ? m.erasures.length : 0;
  for (const [stream, rs] of runs) for (const [first, r] of rs) if (!r.seen) problem(`${stream}: the run from version ${first} has no events in the archive`);
  const counts = m.counts ?? { receipts: -1, events: -1, streams: -1, runs: -1 };
  for (const k of ['receipts', 'events', 'streams', 'runs'] as const) {
    if (counts[k] !== report[k]) problem(`the manifest counts ${counts[k]} ${k}, the archive holds ${report[k]}`);
  }
  report.valid = report.problems.length === 0;
  return report;
};
