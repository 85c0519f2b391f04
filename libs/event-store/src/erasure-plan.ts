import { PROVIDERS, type Provider } from '@lib/ledger';
import { eraseSealedFields, keptSealedPaths, sealedPathsHolding } from './personal-seals.js';
import { streamNamesOfLeg } from './stream-names.js';

/**
 * What an erasure decides for one event and one receipt, as pure functions: the live store (erasure.repository.ts,
 * whose candidates SQL finds the same events) and the archived months (archive-erasure.ts, which reads NDJSON) apply
 * the same rule, so an archived value is erased exactly as a live one would have been.
 */
export type ErasureSubject = { kind: 'number'; number: string } | { kind: 'leg' | 'call'; legIds: string[] };

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Where a number (or SIP user) occurs: as a whole token, with or without its leading `+`, in a URL-encoded query
 * or form too (`%2B`), inside a SIP or tel URI. Not a substring: +1555123000 must not erase +15551230001.
 */
export const subjectPattern = (subject: string): string => {
  const core = escapeRegex(subject.trim().replace(/^\+/, ''));
  return `(^|[^0-9A-Za-z]|%2[Bb])${core}([^0-9A-Za-z]|$)`;
};

export interface SubjectMatcher {
  /** A number's pattern; null for a leg or a call. */
  pattern: RegExp | null;
  /** A leg's or call's streams; null for a number. */
  streams: ReadonlySet<string> | null;
}

export const subjectMatcher = (subject: ErasureSubject): SubjectMatcher =>
  subject.kind === 'number'
    ? { pattern: new RegExp(subjectPattern(subject.number)), streams: null }
    : { pattern: null, streams: new Set(subject.legIds.flatMap((id) => streamNamesOfLeg(PROVIDERS as unknown as Provider[], id))) };

/** A value holds the number (a string as it is, anything else as its JSON text). */
export const holdsSubject = (m: SubjectMatcher, v: unknown): boolean =>
  m.pattern !== null && v !== null && v !== undefined && m.pattern.test(typeof v === 'string' ? v : JSON.stringify(v));

const field = (doc: unknown, ...keys: string[]): unknown => {
  let v = doc;
  for (const k of keys) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
};

/** The candidates SQL's `matched` (erasure.repository.ts), for an event read from an archive. */
export const eventHoldsSubject = (m: SubjectMatcher, e: { streamName: string; data: unknown; metadata: unknown }): boolean => {
  if (m.streams) return m.streams.has(e.streamName);
  const values = [
    field(e.data, 'from'), field(e.data, 'to'), field(e.data, 'callerId'), field(e.data, 'targets'), field(e.data, 'digits'), field(e.data, 'text'),
    field(e.metadata, 'party', 'from'), field(e.metadata, 'party', 'to'),
  ];
  return values.some((v) => holdsSubject(m, v));
};

/**
 * PostgreSQL's `encode(body, 'escape')`, which the live search reads bodies as (they need not be UTF-8): NUL and
 * bytes with the high bit set become `\nnn`, a backslash is doubled.
 */
export const escapeEncoded = (body: Buffer): string => {
  let out = '';
  for (const b of body) {
    if (b === 0 || b >= 0x80) out += `\\${b.toString(8).padStart(3, '0')}`;
    else if (b === 0x5c) out += '\\\\';
    else out += String.fromCharCode(b);
  }
  return out;
};

/** A receipt that carries the number in its query or raw body (a leg's receipts are found through its events). */
export const receiptHoldsSubject = (m: SubjectMatcher, body: Buffer, query: string): boolean =>
  m.pattern !== null && (m.pattern.test(query) || m.pattern.test(escapeEncoded(body)));

export interface EventErasure<R> {
  data: unknown;
  metadata: unknown;
  receipt: R;
  /** The values erased: path and the commitment that now stands for the value. */
  erased: { path: string; commitment: string }[];
  /** The event holds the subject but is of chain rule 1 or 2 (values hashed in clear): kept. */
  notErasable: boolean;
  /** The event changed (a value erased, or its receipt's body dropped): its stream's PersonalDataErased names it. */
  touched: boolean;
}

/**
 * One event's erasure: for a number, the sealed fields holding it; for a leg or call, every kept sealed field of a
 * matched event; and `receipt.query` when the event's receipt goes. Rule 1 and 2 events keep their values.
 */
export const planEventErasure = <R extends { query: string } | null>(
  m: SubjectMatcher,
  e: { chainVersion: number; data: unknown; metadata: unknown; receipt: R },
  matched: boolean,
  receiptGoes: boolean,
): EventErasure<R> => {
  if (e.chainVersion < 3) {
    const holds = matched && (m.pattern ? [e.data, e.metadata, e.receipt?.query ?? ''].some((d) => holdsSubject(m, d)) : true);
    return { data: e.data, metadata: e.metadata, receipt: e.receipt, erased: [], notErasable: holds, touched: receiptGoes };
  }
  const docs = { data: e.data, metadata: e.metadata, receipt: e.receipt };
  const paths = m.pattern ? sealedPathsHolding(docs, (v) => holdsSubject(m, v)) : matched ? keptSealedPaths(e.metadata) : [];
  if (receiptGoes && keptSealedPaths(e.metadata).includes('receipt.query')) paths.push('receipt.query');
  const out = eraseSealedFields(docs, paths);
  return { ...out, notErasable: false, touched: out.erased.length > 0 || receiptGoes };
};
