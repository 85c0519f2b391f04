/**
 * The live projection's incremental fold of one call leg (issue 14). projectCallLeg is a function of the SET of a
 * leg's events, and each of its rules reads the events through a few order-free questions: the canonically first
 * event of a kind, the last one with a SIP code, the one with the highest position, all of a rare kind, the set of
 * distinct values of a field. So a leg's fold state is the subset of its events that answer those questions (the
 * events that hold a role), plus the ids of every event seen (for the duplicate rule and eventCount): for any later
 * events F, the holder of each role among S ∪ F is among roles(S) ∪ F, hence
 *
 *     projectCallLeg(retained(S) ∪ F) = projectCallLeg(S ∪ F)          (eventCount aside, which the ids give)
 *
 * whatever the order in which the events arrive: an event that sorts before the folded ones needs no refold.
 * What the state cannot answer makes applyToCallLeg return null, and the caller refolds the leg from all of its
 * events: an event whose id was already folded at another position (a duplicate), and an erasure (the folded
 * events held the values it erased). An event folded already at the same position (read ahead with the leg's
 * stream by an earlier full fold) is that same event, and is skipped. A parent's machine detections are not kept: the caller reads them for
 * every fold, as it does for a full one (they depend on which parent the leg ends up with).
 * Property-tested against the full fold in call-leg-fold.spec.ts.
 */
import type { Provider } from './call-leg.events.js';
import type { CallLegRow, LedgerEvent } from './call-leg.js';
import { numberProblem, numericFieldSchema } from './numeric-bounds.js';
import { canonicalEvents, compareEventsCanonically, eventTimeSource, projectCallLeg, type ProjectCallLegInput } from './project-call-leg.js';

/** What the projecting process keeps of a leg between live runs (libs/projections call-legs/fold-cache.ts). */
export interface CallLegFold {
  /**
   * Position by id of every own event folded (eventCount is their number). Maps rather than records: a record keyed
   * by event ids is a dictionary-mode object, whose copy (a new state per live batch) and key count were a tenth of
   * the live fold's CPU in the ingest's profile (bench/profile-notes.md, third pass).
   */
  own: ReadonlyMap<string, string>;
  /** Position by id of every parent-side event naming the leg (ChildLegDialed, DialCompleted) folded. */
  links: ReadonlyMap<string, string>;
  /**
   * The events that hold a role (own and links), the very objects folded rather than copies: what each one costs
   * to compare (its parsed time, eventTime's memo) is paid once for the leg's life instead of once per live batch.
   */
  events: LedgerEvent[];
}

export interface FoldedCallLeg {
  row: CallLegRow | null;
  fold: CallLegFold;
}

const childOf = (e: LedgerEvent): string | undefined =>
  e.type === 'ChildLegDialed' || e.type === 'DialCompleted' ? (e.data as { childLegId?: string }).childLegId : undefined;

/** The events projectCallLeg reads as the leg's own, and as the parent-side links naming it (same filters). */
const ownOf = (provider: Provider, callId: string, events: readonly LedgerEvent[]) =>
  events.filter((e) => e.legId === callId && e.provider === provider && e.type !== 'PersonalDataErased');
const linksOf = (provider: Provider, callId: string, events: readonly LedgerEvent[]) =>
  events.filter((e) => e.provider === provider && e.legId !== null && e.legId !== callId && childOf(e) === callId);

const reportsSomething = (e: LedgerEvent): boolean => {
  const data = e.data as unknown as Record<string, unknown>;
  const listed = data.invalidFields;
  if (Array.isArray(listed) && listed.length > 0) return true;
  for (const [field, value] of Object.entries(data)) {
    const schema = numericFieldSchema(e.type, field);
    if (schema && value !== undefined && value !== null && numberProblem(schema, value) !== null) return true;
  }
  return false;
};

const validSip = (e: LedgerEvent): boolean => {
  const value = (e.data as { sipStatus?: unknown }).sipStatus;
  const schema = numericFieldSchema(e.type, 'sipStatus');
  return value !== undefined && value !== null && schema !== undefined && numberProblem(schema, value) === null;
};

const maxPosition = (events: readonly LedgerEvent[]): LedgerEvent | undefined =>
  events.reduce<LedgerEvent | undefined>((m, e) => (m === undefined || BigInt(e.position) > BigInt(m.position) ? e : m), undefined);

/**
 * The role holders among canonically sorted, de-duplicated own events and links (see projectCallLeg for each
 * rule that reads them). Rare kinds are kept whole; everything else is a "first of", "last of" or "max of".
 */
const roleHolders = (own: readonly LedgerEvent[], links: readonly LedgerEvent[]): LedgerEvent[] => {
  const keep = new Set<LedgerEvent>();
  const firstBy = (events: readonly LedgerEvent[], key: (e: LedgerEvent) => string | null | undefined) => {
    const seen = new Set<string>();
    for (const e of events) {
      const k = key(e);
      if (k === null || k === undefined || seen.has(k)) continue;
      seen.add(k);
      keep.add(e);
    }
  };
  const nonNull = (v: unknown): string | null => (v === null || v === undefined ? null : 'x');
  // Own events. First overall (a start without CallInitiated), first of each type (start, answer, ringing, rank,
  // progress, dial start), every completion, recording and machine detection (outcomes, maxima, precedence).
  if (own[0]) keep.add(own[0]);
  firstBy(own, (e) => e.type);
  for (const e of own) if (e.type === 'CallCompleted' || e.type === 'RecordingAvailable' || e.type === 'MachineDetected' || reportsSomething(e)) keep.add(e);
  firstBy(own, (e) => (e.parentLegId && e.parentLegId !== e.legId ? e.parentLegId : null));
  firstBy(own, (e) => (e.type === 'CallInitiated' ? nonNull((e.data as { direction?: unknown }).direction) : null));
  firstBy(own, (e) => (e.type === 'CallInitiated' ? nonNull((e.data as { from?: unknown }).from) : null));
  firstBy(own, (e) => (e.type === 'CallInitiated' ? nonNull((e.data as { to?: unknown }).to) : null));
  firstBy(own, (e) => nonNull(e.party?.direction));
  firstBy(own, (e) => nonNull(e.party?.from));
  firstBy(own, (e) => nonNull(e.party?.to));
  firstBy(own, (e) => nonNull(e.accountId));
  firstBy(own, (e) => e.verification ?? 'unverified');
  firstBy(own, (e) => (eventTimeSource(e) === 'provider' ? 'x' : null));
  firstBy(own, (e) =>
    e.type === 'ConferenceJoined' || e.type === 'ConferenceLeft' || e.type === 'ConferenceStatusChanged'
      ? ((e.data as { conferenceId?: string }).conferenceId || null)
      : null,
  );
  const lastSip = own.filter((e) => e.type !== 'DialCompleted' && validSip(e)).at(-1);
  if (lastSip) keep.add(lastSip);
  const last = maxPosition(own);
  if (last) keep.add(last);
  // Links: every dial result (outcomes, durations, SIP), the first naming each parent, account, provenance.
  for (const e of links) if (e.type === 'DialCompleted') keep.add(e);
  firstBy(links, (e) => (e.type === 'ChildLegDialed' ? (e.data as { parentLegId?: string }).parentLegId || e.legId : e.legId));
  firstBy(links, (e) => nonNull(e.accountId));
  firstBy(links, (e) => e.verification ?? 'unverified');
  const lastLink = maxPosition(links);
  if (lastLink) keep.add(lastLink);
  return [...own, ...links].filter((e) => keep.has(e));
};

const idsOf = (events: readonly LedgerEvent[], into = new Map<string, string>()): Map<string, string> => {
  for (const e of events) into.set(e.eventId, e.position);
  return into;
};

const foldOf = (input: ProjectCallLegInput, own: readonly LedgerEvent[], links: readonly LedgerEvent[], ownIds: ReadonlyMap<string, string>, linkIds: ReadonlyMap<string, string>): FoldedCallLeg => {
  const row = projectCallLeg(input);
  if (row) row.eventCount = ownIds.size;
  return { row, fold: { own: ownIds, links: linkIds, events: roleHolders(own, links) } };
};

/** The full fold of a leg (projectCallLeg) and the state a later applyToCallLeg starts from. */
export function foldCallLeg(input: ProjectCallLegInput): FoldedCallLeg {
  const own = canonicalEvents(ownOf(input.provider, input.callId, input.own));
  const links = canonicalEvents(linksOf(input.provider, input.callId, input.related));
  return foldOf(input, own, links, idsOf(own), idsOf(links));
}

/**
 * Applies new events to a leg's fold state: `own` the leg's new events, `related` the new parent-side events
 * naming it plus the machine detections of its parents (all of them, as for a full fold). Null when the state
 * cannot answer (see above): the caller folds the leg from all of its events instead.
 */
export function applyToCallLeg(fold: CallLegFold, input: ProjectCallLegInput): FoldedCallLeg | null {
  const { provider, callId } = input;
  if (input.own.some((e) => e.type === 'PersonalDataErased' && e.legId === callId && e.provider === provider)) return null;
  const newOwn: LedgerEvent[] = [];
  const newLinks: LedgerEvent[] = [];
  for (const [events, into] of [[canonicalEvents(ownOf(provider, callId, input.own)), newOwn], [canonicalEvents(linksOf(provider, callId, input.related)), newLinks]] as const) {
    for (const e of events) {
      const at = fold.own.get(e.eventId) ?? fold.links.get(e.eventId);
      if (at === undefined) into.push(e);
      else if (at !== e.position) return null;
    }
  }
  const heldOwn: LedgerEvent[] = [];
  const heldLinks: LedgerEvent[] = [];
  for (const e of fold.events) (e.legId === callId ? heldOwn : heldLinks).push(e);
  const own = [...heldOwn, ...newOwn].sort(compareEventsCanonically);
  const links = [...heldLinks, ...newLinks].sort(compareEventsCanonically);
  const amd = input.related.filter((e) => e.type === 'MachineDetected');
  return foldOf(
    { provider, callId, own, related: [...links, ...amd] },
    own,
    links,
    // Copies: the state given stays as it was (a batch whose attempt fails falls back on it under its tag).
    newOwn.length > 0 ? idsOf(newOwn, new Map(fold.own)) : fold.own,
    newLinks.length > 0 ? idsOf(newLinks, new Map(fold.links)) : fold.links,
  );
}
