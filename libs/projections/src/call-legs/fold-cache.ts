import { randomInt } from 'node:crypto';
import type { CallLegFold, RollupLeg } from '@lib/ledger';

/**
 * The live fold states of legs in progress, in the projecting process's memory, each under the tag (`fold_seq`)
 * written with its row. A state is used only while the row still carries that tag: a row written by another
 * instance, by a rebuild, or by a transaction that rolled back after the state was put here has another tag (or
 * none), and the leg is then folded in full from its events, as before this cache. So the cache can only make
 * a fold cheaper, never different.
 *
 * Why memory and not the state itself in the row: stored as JSON with the row (about 2 kB a leg in progress),
 * writing and reading it cost PostgreSQL about as much as the events read it saved (bench/profile-notes.md).
 *
 * Trusted batches. Checking a tag needs the leg's row read first, and so does the rollup delta (the row's previous
 * cell). Each state therefore also keeps the rollup fields of the row written with it, and a live batch may skip the
 * read for its cached legs when no other writer can have touched them since: every batch of every instance moves the
 * checkpoint in the transaction that writes its rows, so when a live batch starts from the very cursor this process's
 * last committed live batch ended at (`committed`), the rows are as this process wrote them. States written by an
 * attempt that failed are dropped at once (`dropAttempt`), those of a transaction that did not commit at its end
 * (`abandoned`), and a live batch that starts anywhere else (another instance got in between, a rebuild switched)
 * demotes every state of its generation back to the tag check. A live batch commits without waiting for its WAL flush
 * (checkpoints.ts, lockProjectionBatch): if PostgreSQL loses it in a crash, it loses the checkpoint that batch moved
 * too, so the next batch starts before the cursor trusted here and is not trusted.
 */
/**
 * The cache is bounded by the events its states hold (each state weighing its held events plus one), not by a count of
 * legs: what a state costs is its events (about 770 bytes of heap each, the rest of a state is small), and how many
 * events a leg holds varies from a few (a live leg) to hundreds (an imported conference leg).
 *
 * Measured at about 16 kB of RSS a leg of the import (`node dist/bench/import.probe.js`: 10,000 legs, peak RSS 543 MB
 * against 385 MB without the cache, for no CPU saved there: an import's legs get their events in one chunk), which
 * MAX_HELD_EVENTS_BEHIND bounds. A live leg holds 5 to 6 events (4.5 kB of heap a state, bench/profile-notes.md, third pass).
 * The cache must span the legs in progress: a leg evicted before its late events (its end, a parent's dial result, a
 * recording) is folded again from all of its events, read back from the store. In the simulated live traffic of the
 * ingest bench (50 calls a second, talk up to 10 minutes) 80 % of a leg's later writes came within 2,000 other legs'
 * writes, 96 % within 3,000, all within 4,000: 2,000 legs (the bound before) left a fifth of them to full folds.
 * 20,000 held events are about 3,000 live legs, about 14 MB of heap (2,000 legs were about 9 MB): 32,000 (4,800 legs)
 * took the service's peak RSS in the ingest compare from 264 to 299 MB against the 300 MB target, for full folds
 * that were a few µs per delivery.
 */
export const MAX_HELD_EVENTS = 20_000;
/**
 * While the live loop is behind (full batches: a backlog, an import landing), at most this many held events, the newest
 * written. A projector catching up writes a batch's legs from their events in that batch mostly (an import's call
 * arrives in one chunk), so the states kept from earlier batches save few reads then, and their memory (about 25 MB for
 * 2,000 import legs) came on top of the batches' own: the import's peak RSS. Until this pass the bound was 500 legs,
 * whatever they held; a backlog of live legs (a few events each) then lost most of its states at every full batch and
 * folded them again from the store at their next event: the live-fold probe, whose batches are all full, read 16,809
 * events back for its 7,143 (2,568 tag misses a round), PostgreSQL 154–165 µs an event against 133–136 without the
 * bound (bench/profile-notes.md, third pass). Weighed by held events, the bound keeps such legs and still cuts an
 * import's heavy states. The newest states are those of the legs a next batch may continue (cut at the batch's end);
 * the cache refills to MAX_HELD_EVENTS once the loop has caught up. 3,000 weighs about what 500 live legs did: 6,000
 * took the import's peak RSS to 265 MB in one run of five (its target is < 250 MB; the median +7 MB), for a gain that
 * only a backlog of live legs sees.
 */
export const MAX_HELD_EVENTS_BEHIND = 3_000;

/** The row's previous contribution to the rollups, and its parent link (what a batch reads the row for). */
export type CachedRow = RollupLeg & { callId: string };

/**
 * `pending`: written by a live attempt of the transaction still open; `trusted`: written by a committed live batch
 * and not demoted since; `checked`: usable only under the tag check (written outside a live batch, or demoted).
 */
type Standing = 'pending' | 'trusted' | 'checked';
interface Entry {
  g: number;
  seq: string;
  fold: CallLegFold;
  row: CachedRow | null;
  standing: Standing;
}
const states = new Map<string, Entry>();
/** The weight of the states in `states` (weightOf). */
let held = 0;
const weightOf = (e: Entry) => e.fold.events.length + 1;
const remove = (key: string): void => {
  const e = states.get(key);
  if (e === undefined) return;
  held -= weightOf(e);
  states.delete(key);
};
/** Per generation: the cursor the last live batch this process committed ended at. */
const trustedAt = new Map<number, string>();

const keyOf = (g: number, provider: string, callId: string) => `${g}\u0000${provider}\u0000${callId}`;
const cursorKey = (c: { xid: string; position: string }) => `${c.xid}/${c.position}`;

/** The state the row's tag names, if this process still holds it. */
export const cachedFold = (g: number, provider: string, callId: string, seq: string | null): CallLegFold | undefined => {
  if (seq === null) return undefined;
  const hit = states.get(keyOf(g, provider, callId));
  return hit?.seq === seq ? hit.fold : undefined;
};

/**
 * Whether a live batch of generation g starting at `from` may take its cached legs' states and rows without reading
 * them. When it may not, every state of g goes back to the tag check.
 */
export const beginLiveBatch = (g: number, from: { xid: string; position: string }): boolean => {
  if (trustedAt.get(g) === cursorKey(from)) return true;
  trustedAt.delete(g);
  for (const e of states.values()) if (e.g === g && e.standing !== 'pending') e.standing = 'checked';
  return false;
};

/** A trusted batch's view of a leg: its state and the row written with it, when both may be used unread. */
export const trustedFold = (g: number, provider: string, callId: string): { fold: CallLegFold; row: CachedRow } | undefined => {
  const hit = states.get(keyOf(g, provider, callId));
  return hit && hit.standing !== 'checked' && hit.row ? { fold: hit.fold, row: hit.row } : undefined;
};

/**
 * Keeps a leg's new state (and the rollup fields of the row written with it) and returns the tag its row must be
 * written with (null: none kept). `live`: written by a live batch, so trusted once that batch commits; `attempt`
 * collects the keys written, for dropAttempt.
 */
export const keepFold = (
  g: number,
  provider: string,
  callId: string,
  fold: CallLegFold | null,
  row: CachedRow | null = null,
  live = false,
  attempt?: string[],
): string | null => {
  const key = keyOf(g, provider, callId);
  remove(key);
  if (fold === null) return null;
  // Random rather than a counter: tags written by other processes (or before a restart) must never match.
  const seq = String(randomInt(1, 2 ** 47));
  const entry: Entry = { g, seq, fold, row, standing: live ? 'pending' : 'checked' };
  states.set(key, entry);
  held += weightOf(entry);
  attempt?.push(key);
  // Oldest written first: a leg that has not been written for longest is evicted (and folded in full if it speaks again).
  while (held > MAX_HELD_EVENTS && states.size > 1) remove(states.keys().next().value!);
  return seq;
};

/** The live loop is behind: the oldest states go until MAX_HELD_EVENTS_BEHIND are left (a dropped state costs a refold, never a wrong row). */
export const boundWhileBehind = (): void => {
  for (const k of states.keys()) {
    if (held <= MAX_HELD_EVENTS_BEHIND) break;
    remove(k);
  }
};

/** An attempt failed (its savepoint rolled back): the states it wrote describe rows that were not written. */
export const dropAttempt = (keys: readonly string[]): void => {
  for (const k of keys) remove(k);
};

/** The live batch's transaction committed at `next`: its states are the rows as stored. */
export const committed = (g: number, next: { xid: string; position: string }): void => {
  for (const e of states.values()) if (e.g === g && e.standing === 'pending') e.standing = 'trusted';
  trustedAt.set(g, cursorKey(next));
};

/** The live batch's transaction did not commit: the states it wrote describe rows that were rolled back. */
export const abandoned = (g: number): void => {
  for (const [k, e] of states) if (e.g === g && e.standing === 'pending') remove(k);
};
