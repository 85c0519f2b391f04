import type { DialRequest, DialTarget } from './app-answer.js';

/**
 * Intent beside outcome (tee mode, pure): what a leg's app asked for (its dial requests) against the child legs
 * that exist and what the provider told the app in the dial's action hook. Each finding names what it compares
 * so an auditor can check it by hand.
 */
export type DiscrepancyKind = 'target-not-attempted' | 'unexplained-child' | 'ring-over-timeout' | 'outcome-mismatch';
export const DISCREPANCY_KINDS: readonly DiscrepancyKind[] = ['target-not-attempted', 'unexplained-child', 'ring-over-timeout', 'outcome-mismatch'];

export interface Discrepancy {
  kind: DiscrepancyKind;
  legId: string;
  /** The dial request concerned (position of its AppAnswered event's DialRequested), when one is. */
  dialPosition: string | null;
  childLegId: string | null;
  target: DialTarget | null;
  message: string;
}

export interface IntentChild {
  callId: string;
  to: string | null;
  status: string;
  ringDurationSec: number | null;
  final: boolean;
}

export interface StoredDialRequest extends DialRequest {
  position: string;
  answeredAt: string;
}

/** What the provider told the app about a dial's outcome (DialCompleted from the action hook). */
export interface ToldOutcome {
  childLegId: string | null;
  outcome: string;
}

export interface DialMatch {
  request: StoredDialRequest;
  /** target index → child leg ids it became. */
  children: { target: DialTarget; childLegIds: string[] }[];
}

/** Numbers and URIs compare without spaces, punctuation, a leading + or a `sip:` / `tel:` scheme and host part. */
const norm = (s: string | null): string => {
  if (!s) return '';
  const bare = s.trim().toLowerCase().replace(/^(sips?|tel):/, '').split(/[@;]/, 1)[0]!;
  // A number with or without its leading + is the same number (Restcomm reports To as dialled, often without it).
  return /^\+?[\d\s().-]+$/.test(bare) ? bare.replace(/[^\d]/g, '') : bare;
};

/** Grace on top of the asked ring timeout: providers count from their INVITE, the leg from its first event. */
export const RING_GRACE_SEC = 5;

/** Outcome words of every dialect mapped onto the leg statuses the projection uses. */
const outcomeWord = (s: string): string => {
  const w = s.toLowerCase().replace(/[_\s]/g, '-');
  if (w === 'inprogress' || w === 'in-progress' || w === 'answered') return 'completed';
  if (w === 'noanswer') return 'no-answer';
  if (w === 'cancelled') return 'canceled';
  return w;
};

export const matchIntent = (
  legId: string,
  requests: readonly StoredDialRequest[],
  children: readonly IntentChild[],
  told: readonly ToldOutcome[],
): { matches: DialMatch[]; discrepancies: Discrepancy[] } => {
  const discrepancies: Discrepancy[] = [];
  const used = new Set<string>();
  const matches: DialMatch[] = requests.map((request) => ({
    request,
    children: request.targets.map((target) => {
      const ids = target.type === 'conference' || target.type === 'queue' ? [] : children.filter((c) => !used.has(c.callId) && norm(c.to) === norm(target.value) && norm(target.value) !== '').map((c) => c.callId);
      // One child per target per request: a re-dial of the same number is the next request's.
      const first = ids.slice(0, 1);
      first.forEach((id) => used.add(id));
      return { target, childLegIds: first };
    }),
  }));
  for (const m of matches) {
    for (const t of m.children) {
      if (t.target.type === 'conference' || t.target.type === 'queue') continue;
      if (t.childLegIds.length === 0) {
        discrepancies.push({
          kind: 'target-not-attempted',
          legId,
          dialPosition: m.request.position,
          childLegId: null,
          target: t.target,
          message: `the app asked to dial ${t.target.type} ${t.target.value} and no child leg to it exists`,
        });
        continue;
      }
      const child = children.find((c) => c.callId === t.childLegIds[0])!;
      const asked = m.request.ringTimeoutSec ?? m.request.defaultRingTimeoutSec;
      if (child.ringDurationSec !== null && child.ringDurationSec > asked + RING_GRACE_SEC) {
        discrepancies.push({
          kind: 'ring-over-timeout',
          legId,
          dialPosition: m.request.position,
          childLegId: child.callId,
          target: t.target,
          message: `child leg rang ${child.ringDurationSec} s; the app asked for a ${asked} s ring timeout${m.request.ringTimeoutSec === null ? ' (the default)' : ''}`,
        });
      }
    }
  }
  for (const c of children) {
    if (used.has(c.callId)) continue;
    discrepancies.push({
      kind: 'unexplained-child',
      legId,
      dialPosition: null,
      childLegId: c.callId,
      target: null,
      message: `child leg ${c.callId} to ${c.to ?? '(unknown)'} matches no dial request the app made`,
    });
  }
  for (const t of told) {
    if (!t.childLegId) continue;
    const child = children.find((c) => c.callId === t.childLegId);
    if (!child || !child.final) continue;
    if (outcomeWord(t.outcome) !== outcomeWord(child.status)) {
      discrepancies.push({
        kind: 'outcome-mismatch',
        legId,
        dialPosition: null,
        childLegId: child.callId,
        target: null,
        message: `the action hook told the app "${t.outcome}" but the child leg ended "${child.status}"`,
      });
    }
  }
  return { matches, discrepancies };
};
