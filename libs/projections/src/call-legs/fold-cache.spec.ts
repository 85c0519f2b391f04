import { describe, expect, it } from 'vitest';
import type { CallLegFold } from '@lib/ledger';
import { abandoned, beginLiveBatch, boundWhileBehind, cachedFold, committed, dropAttempt, keepFold, MAX_HELD_EVENTS, MAX_HELD_EVENTS_BEHIND, trustedFold, type CachedRow } from './fold-cache.js';

const fold = (id: string): CallLegFold => ({ own: new Map([[id, '1']]), links: new Map(), events: [] });
const row = (callId: string): CachedRow => ({
  provider: 'twilio', callId, accountId: null, parentCallId: null, direction: 'inbound', status: 'ringing', startedAt: null,
  talkDurationSec: null, ringDurationSec: null, answeredBy: null,
});
const at = (position: number) => ({ xid: String(1000 + position), position: String(position) });

describe('fold cache', () => {
  it('answers a state only under the tag its row was written with', () => {
    const seq = keepFold(1, 'twilio', 'CA1', fold('a'))!;
    expect(cachedFold(1, 'twilio', 'CA1', seq)).toEqual(fold('a'));
    // Another tag: the row was written by someone else (another instance, a rebuild, a rolled-back batch).
    expect(cachedFold(1, 'twilio', 'CA1', String(BigInt(seq) + 1n))).toBeUndefined();
    expect(cachedFold(1, 'twilio', 'CA1', null)).toBeUndefined();
    // Another generation or leg with the same tag is another leg.
    expect(cachedFold(2, 'twilio', 'CA1', seq)).toBeUndefined();
    expect(cachedFold(1, 'jambonz', 'CA1', seq)).toBeUndefined();
  });

  it('gives every write a new tag, and forgets a leg written without a state', () => {
    const first = keepFold(1, 'twilio', 'CA2', fold('a'))!;
    const second = keepFold(1, 'twilio', 'CA2', fold('b'))!;
    expect(second).not.toBe(first);
    expect(cachedFold(1, 'twilio', 'CA2', first)).toBeUndefined();
    expect(keepFold(1, 'twilio', 'CA2', null)).toBeNull();
    expect(cachedFold(1, 'twilio', 'CA2', second)).toBeUndefined();
  });

  it('lets a live batch skip the read only from the cursor where this process last committed, and only for states of committed live batches', () => {
    const g = 7;
    // A first batch (nothing committed here yet) reads; what it keeps is pending until it commits.
    expect(beginLiveBatch(g, at(0))).toBe(false);
    keepFold(g, 'twilio', 'L1', fold('a'), row('L1'), true, []);
    keepFold(g, 'twilio', 'L2', fold('b'), row('L2'), false, []); // written outside a live batch (a rebuild's replay)
    committed(g, at(10));
    expect(beginLiveBatch(g, at(10))).toBe(true);
    expect(trustedFold(g, 'twilio', 'L1')?.row.callId).toBe('L1');
    expect(trustedFold(g, 'twilio', 'L2')).toBeUndefined();

    // An attempt that fails takes its states with it; a transaction that does not commit, its pending ones.
    const attempt: string[] = [];
    keepFold(g, 'twilio', 'L3', fold('c'), row('L3'), true, attempt);
    expect(trustedFold(g, 'twilio', 'L3')).toBeDefined(); // the same transaction's later attempts may use it
    dropAttempt(attempt);
    expect(trustedFold(g, 'twilio', 'L3')).toBeUndefined();
    keepFold(g, 'twilio', 'L1', fold('d'), row('L1'), true, []);
    abandoned(g);
    expect(trustedFold(g, 'twilio', 'L1')).toBeUndefined();

    // Another writer moved the checkpoint: nothing is taken unread until a live batch of this process commits again.
    keepFold(g, 'twilio', 'L4', fold('e'), row('L4'), true, []);
    committed(g, at(20));
    expect(beginLiveBatch(g, at(30))).toBe(false);
    expect(trustedFold(g, 'twilio', 'L4')).toBeUndefined();
    committed(g, at(40));
    expect(beginLiveBatch(g, at(40))).toBe(true);
    expect(trustedFold(g, 'twilio', 'L4')).toBeUndefined(); // demoted: its row is read and its tag checked again
    expect(cachedFold(g, 'twilio', 'L4', null)).toBeUndefined();
  });

  it('keeps only the newest states while the live loop is behind, up to MAX_HELD_EVENTS_BEHIND held events, and forgets the older ones (their rows fold in full)', () => {
    const g = 9;
    // Each state weighs 10 here: 1,500 of them weigh 15,000, of which the newest MAX_HELD_EVENTS_BEHIND / 10 stay.
    const heavy = (id: string): CallLegFold => ({ own: new Map([[id, '1']]), links: new Map(), events: Array.from({ length: 9 }, () => ({}) as CallLegFold['events'][number]) });
    const kept = MAX_HELD_EVENTS_BEHIND / 10;
    const seqs = Array.from({ length: 1500 }, (_, i) => keepFold(g, 'twilio', `B${i}`, heavy(String(i)), row(`B${i}`), true, [])!);
    boundWhileBehind();
    expect(cachedFold(g, 'twilio', `B${1499 - kept}`, seqs[1499 - kept]!)).toBeUndefined();
    expect(cachedFold(g, 'twilio', `B${1500 - kept}`, seqs[1500 - kept]!)).toBeDefined();
    expect(cachedFold(g, 'twilio', 'B1499', seqs[1499]!)).toBeDefined();
    // The states left are still the batch's: trusted once it commits.
    committed(g, at(50));
    expect(beginLiveBatch(g, at(50))).toBe(true);
    expect(trustedFold(g, 'twilio', 'B1499')?.row.callId).toBe('B1499');
    expect(trustedFold(g, 'twilio', 'B0')).toBeUndefined();
  });

  it('bounds the states by the events they hold, evicting the least recently written first', () => {
    const g = 11;
    // Each state weighs its held events plus one: 10 here.
    const heavy = (id: string): CallLegFold => ({ own: new Map([[id, '1']]), links: new Map(), events: Array.from({ length: 9 }, () => ({}) as CallLegFold['events'][number]) });
    const fits = MAX_HELD_EVENTS / 10;
    const seqs = Array.from({ length: fits + 100 }, (_, i) => keepFold(g, 'twilio', `H${i}`, heavy(String(i)))!);
    expect(cachedFold(g, 'twilio', 'H99', seqs[99]!)).toBeUndefined();
    expect(cachedFold(g, 'twilio', 'H100', seqs[100]!)).toBeDefined();
    // Written again, a leg is the newest: the next eviction takes the oldest other one.
    seqs[100] = keepFold(g, 'twilio', 'H100', heavy('100'))!;
    keepFold(g, 'twilio', 'H-new', heavy('new'));
    expect(cachedFold(g, 'twilio', 'H100', seqs[100]!)).toBeDefined();
    expect(cachedFold(g, 'twilio', 'H101', seqs[101]!)).toBeUndefined();
    // A light state replacing a heavy one frees room: nothing else goes.
    keepFold(g, 'twilio', 'H100', fold('light'));
    keepFold(g, 'twilio', 'H-light', fold('light2'));
    expect(cachedFold(g, 'twilio', 'H102', seqs[102]!)).toBeDefined();
  });
});
