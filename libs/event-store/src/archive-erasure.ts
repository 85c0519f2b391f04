import { eventHoldsSubject, planEventErasure, receiptHoldsSubject, type SubjectMatcher } from './erasure-plan.js';
import type { StreamChanges } from './erasure.repository.js';
import { ERASED, sealsOf } from './personal-seals.js';

/**
 * An erasure applied to an archived month (README "Erasure and its proof"), as the manifest lists it: which rows it
 * changed, never the value. `events`: `[position, sealed paths erased]` of each event it changed (no path: only its
 * receipt's body went); `receipts`: the receipts whose body it dropped. Signed with the rest of the manifest.
 */
export interface ArchiveErasureEntry {
  erasureId: string;
  at: string;
  events: [string, string[]][];
  receipts: string[];
}

/* eslint-disable @typescript-eslint/no-explicit-any -- archive lines are untrusted JSON; the hashes vouch for them */
type Line = Record<string, any>;

const partyOf = (path: string): 'from' | 'to' | null => (path.endsWith('.from') ? 'from' : path.endsWith('.to') ? 'to' : null);

/**
 * The rewrite of one archived month by one erasure, line by line, in four passes over its two files (so a month is
 * never held in memory): `scanReceipt` over receipts.ndjson, `scanEvent` over events.ndjson (which receipts go),
 * then `rewriteEvent` and, after it (it learns which receipts' queries are hashed in clear), `rewriteReceipt`. The rule is the live store's (erasure-plan.ts): each erased field keeps
 * its commitment (`c:<hex>` seal) and loses value and nonce, each receipt that goes loses its body (`body_sha256`
 * kept, `erasedAt` set) and its query (unless an event of rule 1 or 2 hashes it in clear). A line that does not
 * change is returned as it was, byte for byte.
 */
export class ArchiveMonthEraser {
  /** Receipts whose query or body holds the number. */
  private readonly holding = new Set<string>();
  private readonly alreadyErased = new Set<string>();
  /** Receipts with an event of chain rule 1 or 2: their query is hashed in clear and stays. */
  private readonly clearQuery = new Set<string>();
  /** Receipts that go. */
  private readonly going = new Set<string>();
  private anyMatched = false;
  readonly counts = { events: 0, fields: 0, receipts: 0, notErasable: 0 };
  readonly changed = new Map<string, StreamChanges>();
  readonly entry: Omit<ArchiveErasureEntry, 'erasureId' | 'at'> = { events: [], receipts: [] };

  constructor(
    private readonly m: SubjectMatcher,
    /** When the receipts' bodies were dropped (ISO), as `erased_at` in the store. */
    private readonly at: string,
  ) {}

  /** After the scans: whether the month may hold anything to erase (if not, its files are not rewritten). */
  get mayChange(): boolean {
    return this.going.size > 0 || this.holding.size > 0 || this.anyMatched;
  }

  receiptErased(id: string): boolean {
    return this.alreadyErased.has(id);
  }

  get touched(): boolean {
    return this.entry.events.length > 0 || this.entry.receipts.length > 0;
  }

  scanReceipt(raw: string): void {
    const r = JSON.parse(raw) as Line;
    const id = String(r.id);
    if (r.erasedAt) this.alreadyErased.add(id);
    else if (receiptHoldsSubject(this.m, Buffer.from(String(r.body ?? ''), 'base64'), String(r.query ?? ''))) this.holding.add(id);
  }

  scanEvent(raw: string): void {
    const o = JSON.parse(raw) as Line;
    const receiptId = String(o.receiptId);
    if (eventHoldsSubject(this.m, { streamName: String(o.streamName), data: o.data, metadata: o.metadata })) {
      this.anyMatched = true;
      if (!this.alreadyErased.has(receiptId)) this.going.add(receiptId);
    }
  }

  rewriteReceipt(raw: string): string {
    const r = JSON.parse(raw) as Line;
    const id = String(r.id);
    if (this.alreadyErased.has(id) || !(this.going.has(id) || this.holding.has(id))) return raw;
    this.counts.receipts += 1;
    this.entry.receipts.push(id);
    const query = String(r.query ?? '');
    return JSON.stringify({ ...r, body: '', query: query !== '' && !this.clearQuery.has(id) ? ERASED : query, erasedAt: this.at });
  }

  rewriteEvent(raw: string): string {
    const o = JSON.parse(raw) as Line;
    const receiptId = String(o.receiptId);
    const goes = !this.alreadyErased.has(receiptId) && (this.going.has(receiptId) || this.holding.has(receiptId));
    // Only for receipts that go: a month of rule-2 events would otherwise hold every receipt id in memory.
    if (goes && Number(o.chainVersion) < 3) this.clearQuery.add(receiptId);
    const matched = this.holding.has(receiptId) || eventHoldsSubject(this.m, { streamName: String(o.streamName), data: o.data, metadata: o.metadata });
    const plan = planEventErasure(this.m, { chainVersion: Number(o.chainVersion), data: o.data, metadata: o.metadata, receipt: (o.receipt ?? null) as { query: string } | null }, matched, goes);
    if (plan.notErasable) this.counts.notErasable += 1;
    if (!plan.touched) return raw;
    const paths = plan.erased.map((e) => e.path);
    if (paths.length > 0) this.counts.events += 1;
    this.counts.fields += paths.length;
    this.entry.events.push([String(o.position), paths]);
    const stream = String(o.streamName);
    const c = this.changed.get(stream) ?? this.changed.set(stream, { positions: [], fields: 0 }).get(stream)!;
    c.positions.push(String(o.position));
    c.fields += paths.length;
    const parties = paths.map(partyOf).filter((p): p is 'from' | 'to' => p !== null);
    if (parties.length > 0) c.parties = [...new Set([...(c.parties ?? []), ...parties])].sort();
    return JSON.stringify({ ...o, data: plan.data, metadata: plan.metadata, receipt: plan.receipt, ...(goes ? { actualBodySha256: null } : {}) });
  }
}

/**
 * The erased links of an archived month (a body dropped, or a seal holding a commitment) and the positions its own
 * `PersonalDataErased` events name: what is left unnamed must be named by an erasure the manifest lists.
 */
export class ErasedLinks {
  private readonly erased = new Map<string, { stream: string; paths: string[] }>();
  private readonly named = new Set<string>();

  add(l: { position: string; streamName: string; type: string; data: unknown; metadata: unknown; bodyErased: boolean }): void {
    const paths = Object.entries(sealsOf(l.metadata))
      .filter(([, s]) => typeof s === 'string' && s.startsWith('c:'))
      .map(([p]) => p)
      .sort();
    if (l.bodyErased || paths.length > 0) this.erased.set(l.position, { stream: l.streamName, paths });
    if (l.type === 'PersonalDataErased') {
      const p = (l.data as { positions?: unknown } | null)?.positions;
      if (Array.isArray(p)) for (const x of p) this.named.add(String(x));
    }
  }

  /** Erased positions no record in the archive names, with their stream and erased paths. */
  unnamed(listed: ReadonlySet<string> = new Set()): Map<string, { stream: string; paths: string[] }> {
    return new Map([...this.erased].filter(([p]) => !this.named.has(p) && !listed.has(p)));
  }
}

/** The positions a manifest's erasures list. */
export const positionsListed = (entries: readonly ArchiveErasureEntry[] | undefined): Set<string> => new Set((entries ?? []).flatMap((e) => (e.events ?? []).map(([p]) => String(p))));

/**
 * Entries for rows erased before their month was archived (or before the archive listed erasures), from the
 * erasure records still in the live store that name them. A position no record names stays unlisted: the verifier
 * reports it, which is the honest answer.
 */
export const entriesFromMarkers = (
  unnamed: ReadonlyMap<string, { stream: string; paths: string[] }>,
  markers: readonly { erasureId: string; at: string; positions: readonly string[] }[],
): ArchiveErasureEntry[] => {
  const out = new Map<string, ArchiveErasureEntry>();
  const done = new Set<string>();
  for (const mk of markers) {
    for (const p of mk.positions) {
      const link = unnamed.get(p);
      if (!link || done.has(p)) continue;
      done.add(p);
      const e = out.get(mk.erasureId) ?? out.set(mk.erasureId, { erasureId: mk.erasureId, at: mk.at, events: [], receipts: [] }).get(mk.erasureId)!;
      e.events.push([p, link.paths]);
    }
  }
  return [...out.values()];
};
