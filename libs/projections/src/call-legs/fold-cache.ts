import { randomInt } from 'node:crypto';
import type { CallLegFold } from '@lib/ledger';

/**
 * The live fold states of legs in progress, in the projecting process's memory, each under the tag (`fold_seq`)
 * written with its row. A state is used only while the row still carries that tag: a row written by another
 * instance, by a rebuild, or by a transaction that rolled back after the state was put here has another tag (or
 * none), and the leg is then folded in full from its events, as before this cache. So the cache can only make
 * a fold cheaper, never different.
 *
 * Why memory and not the state itself in the row: stored as JSON with the row (about 2 kB a leg in progress),
 * writing and reading it cost PostgreSQL about as much as the events read it saved (bench/profile-notes.md).
 */
/**
 * Measured at about 16 kB of RSS a leg (its role-holding events, their data, the ids seen): with 10,000 legs the
 * import's peak RSS was 543 MB against 385 MB without the cache, for no CPU saved there (an import's legs get their
 * events in one chunk; `node dist/bench/import.probe.js`). 2,000 legs (~32 MB) cover the legs a live batch touches
 * again within a few seconds, which is where the cache saves refolds; an evicted leg is folded in full.
 */
const MAX_LEGS = 2_000;
const states = new Map<string, { seq: string; fold: CallLegFold }>();

const keyOf = (g: number, provider: string, callId: string) => `${g}\u0000${provider}\u0000${callId}`;

/** The state the row's tag names, if this process still holds it. */
export const cachedFold = (g: number, provider: string, callId: string, seq: string | null): CallLegFold | undefined => {
  if (seq === null) return undefined;
  const hit = states.get(keyOf(g, provider, callId));
  return hit?.seq === seq ? hit.fold : undefined;
};

/** Keeps a leg's new state and returns the tag its row must be written with (null: none kept). */
export const keepFold = (g: number, provider: string, callId: string, fold: CallLegFold | null): string | null => {
  const key = keyOf(g, provider, callId);
  states.delete(key);
  if (fold === null) return null;
  // Random rather than a counter: tags written by other processes (or before a restart) must never match.
  const seq = String(randomInt(1, 2 ** 47));
  states.set(key, { seq, fold });
  // Oldest written first: a leg that has not been written for longest is evicted (and folded in full if it speaks again).
  if (states.size > MAX_LEGS) states.delete(states.keys().next().value!);
  return seq;
};
