import { hash, randomBytes } from 'node:crypto';
import { canonicalJson, sortedKeys } from './canonical-json.js';

/**
 * Personal data under chain rule 3 (README "Erasure and its proof"). Each personal field of an event is hashed
 * as a commitment, sha256 of the UTF-8 text `call-ledger/seal/1` NUL path NUL nonce-hex NUL canonical-JSON-of-value,
 * not as its value. The nonce is 16 random bytes kept beside the event (`metadata.seals[path] = "n:<hex>"`): a phone number
 * has too few possible values for a bare hash to hide it, the nonce makes the commitment unguessable. Erasure
 * replaces the value with `[erased]` and the seal with the commitment itself (`"c:<hex>"`), so the nonce is gone
 * and the chain still recomputes the same text.
 *
 * The fields, by where they sit in what an event's hash covers (`data.`, `metadata.`, `receipt.`):
 * - numbers and SIP URIs: `data.from`, `data.to` (CallInitiated), `metadata.party.from`, `metadata.party.to`
 *   (every event that names its leg's parties), `data.callerId` and `data.targets` (an app's DialRequested);
 * - what the caller said or keyed: `data.digits` (DtmfReceived), `data.text` (SpeechRecognized);
 * - the receipt's query string (`receipt.query`): a GET delivery carries From/To/Caller there.
 * Stored headers are an allow-list of signature, request-id and region headers (webhook-record.factory.ts): no
 * personal data, so not sealed. The raw body is not a field: it is hashed as its sha256 by every rule already,
 * and erasure drops the bytes and keeps the sha256.
 */
export const PERSONAL_FIELDS = [
  'data.from',
  'data.to',
  'data.callerId',
  'data.targets',
  'data.digits',
  'data.text',
  'metadata.party.from',
  'metadata.party.to',
  'receipt.query',
] as const;
export type PersonalField = (typeof PERSONAL_FIELDS)[number];

/** What an erased value is replaced with, in stored data, metadata and the receipt's query. */
export const ERASED = '[erased]';

/** path → `n:<nonce hex>` while the value is kept, `c:<commitment hex>` once it is erased. */
export type Seals = Record<string, string>;

const NONCE = /^n:([0-9a-f]{32})$/;
const COMMITMENT = /^c:([0-9a-f]{64})$/;

// One-shot hash of one string: a third of createHash's cost per field, on the ingest path.
export const commitmentOf = (path: string, nonceHex: string, value: unknown): string =>
  hash('sha256', `call-ledger/seal/1\u0000${path}\u0000${nonceHex}\u0000${canonicalJson(value ?? null)}`, 'hex');

/**
 * Nonces from a pool of CSPRNG bytes refilled 4 KiB at a time: randomBytes(16) per field was a system call each
 * (about 8 µs, four fields an event), the pool costs a slice.
 */
let pool = Buffer.alloc(0);
let drawn = 0;
const freshNonce = (): string => {
  if (drawn + 16 > pool.length) {
    pool = randomBytes(4096);
    drawn = 0;
  }
  drawn += 16;
  return pool.toString('hex', drawn - 16, drawn);
};

const getAt = (doc: unknown, keys: readonly string[]): unknown => {
  let v: unknown = doc;
  for (const k of keys) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
};

/** A copy of `doc` with the value at `keys` replaced (the objects on the way copied, nothing else). */
const setAt = (doc: unknown, keys: readonly string[], value: unknown): unknown => {
  if (keys.length === 0) return value;
  const obj = doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>) : {};
  return { ...obj, [keys[0]!]: setAt(obj[keys[0]!], keys.slice(1), value) };
};

const splitPath = (path: string): { root: 'data' | 'metadata' | 'receipt'; keys: string[] } => {
  const [root, ...keys] = path.split('.');
  if (root !== 'data' && root !== 'metadata' && root !== 'receipt') throw new Error(`seal path ${path} names no hashed document`);
  return { root, keys };
};
const SPLIT = new Map<string, ReturnType<typeof splitPath>>(PERSONAL_FIELDS.map((p) => [p, splitPath(p)]));
const split = (path: string) => SPLIT.get(path) ?? splitPath(path);

/** A value worth sealing: present, not null, not an empty string or array. */
const personal = (v: unknown): boolean => v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0);

/** Fresh seals for the personal fields an event carries (the writer's side); `nonce` is injectable for tests. */
export const sealPersonalFields = (
  docs: { data: unknown; metadata: unknown; receipt: { query: string } | null },
  nonce: () => string = freshNonce,
): Seals => {
  const seals: Seals = {};
  for (const path of PERSONAL_FIELDS) {
    const { root, keys } = split(path);
    if (personal(getAt(docs[root], keys))) seals[path] = `n:${nonce()}`;
  }
  return seals;
};

export const sealsOf = (metadata: unknown): Seals => {
  const s = getAt(metadata, ['seals']);
  return s !== null && typeof s === 'object' && !Array.isArray(s) ? (s as Seals) : {};
};

/**
 * The three hashed documents as rule 3 hashes them: each sealed value replaced by `sealed:<commitment>` and the
 * metadata's seal map by the sorted list of sealed paths (so that adding or dropping a seal changes the text).
 * A seal that is neither a nonce nor a commitment, or a kept value whose nonce is gone, yields a text no honest
 * writer produced: the chain check then fails, which is the answer.
 */
export const sealedDocuments = <R extends { query: string } | null>(docs: {
  data: unknown;
  metadata: unknown;
  receipt: R;
}): { data: unknown; metadata: unknown; receipt: R; touched: { data: boolean; metadata: boolean; receipt: boolean } } => {
  const seals = sealsOf(docs.metadata);
  const out: { data: unknown; metadata: unknown; receipt: unknown } = { data: docs.data, metadata: docs.metadata, receipt: docs.receipt };
  const touched = { data: false, metadata: false, receipt: false };
  const paths = sortedKeys(seals);
  // An event with no seal is hashed as it is stored (the writer stores no empty seal map).
  if (paths.length === 0) return { ...(out as { data: unknown; metadata: unknown; receipt: R }), touched };
  for (const path of paths) {
    const { root, keys } = split(path);
    const seal = seals[path]!;
    const n = NONCE.exec(seal);
    const c = n ? null : COMMITMENT.exec(seal);
    const commitment = n ? commitmentOf(path, n[1]!, getAt(docs[root], keys)) : c ? c[1]! : `invalid:${seal}`;
    if (root === 'receipt' && out.receipt === null) continue;
    out[root] = setAt(out[root], keys, `sealed:${commitment}`);
    touched[root] = true;
  }
  out.metadata = { ...(out.metadata as Record<string, unknown>), seals: paths };
  touched.metadata = true;
  return { ...(out as { data: unknown; metadata: unknown; receipt: R }), touched };
};

/**
 * Erases the given sealed paths of one event's documents: each value becomes `[erased]`, each seal its
 * commitment. A path that is not sealed with a nonce (never sealed, or erased already) is left alone and not
 * returned. Pure: the store writes exactly what this returns (erasure.repository.ts).
 */
export const eraseSealedFields = <R extends { query: string } | null>(
  docs: { data: unknown; metadata: unknown; receipt: R },
  paths: readonly string[],
): { data: unknown; metadata: unknown; receipt: R; erased: { path: string; commitment: string }[] } => {
  const seals = { ...sealsOf(docs.metadata) };
  const out: { data: unknown; metadata: unknown; receipt: unknown } = { data: docs.data, metadata: docs.metadata, receipt: docs.receipt };
  const erased: { path: string; commitment: string }[] = [];
  for (const path of [...new Set(paths)].sort()) {
    const n = NONCE.exec(seals[path] ?? '');
    if (!n) continue;
    const { root, keys } = split(path);
    const commitment = commitmentOf(path, n[1]!, getAt(docs[root], keys));
    seals[path] = `c:${commitment}`;
    if (!(root === 'receipt' && out.receipt === null)) out[root] = setAt(out[root], keys, ERASED);
    erased.push({ path, commitment });
  }
  out.metadata = { ...(out.metadata as Record<string, unknown>), seals };
  return { ...(out as { data: unknown; metadata: unknown; receipt: R }), erased };
};

/** The sealed paths of an event still holding a value (their nonce kept). */
export const keptSealedPaths = (metadata: unknown): string[] =>
  Object.entries(sealsOf(metadata))
    .filter(([, s]) => NONCE.test(s))
    .map(([p]) => p)
    .sort();

/** The sealed paths of an event whose value equals `value` (a number, compared as stored). */
export const sealedPathsHolding = (docs: { data: unknown; metadata: unknown; receipt: { query: string } | null }, matches: (v: unknown) => boolean): string[] =>
  keptSealedPaths(docs.metadata).filter((path) => {
    const { root, keys } = split(path);
    return matches(getAt(docs[root], keys));
  });
