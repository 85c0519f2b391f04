import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeEventHash, verifyStreamChain, type ChainedEventContent, type HashedReceiptMeta, type StoredChainLink } from './hash-chain.js';
import { ERASED, commitmentOf, eraseSealedFields, keptSealedPaths, sealPersonalFields, sealedPathsHolding } from './personal-seals.js';

const receipt: HashedReceiptMeta = {
  provider: 'twilio', contentType: null, path: 'status', query: 'From=%2B15551230001&To=%2B15551239999', headers: { 'x-twilio-signature': 'sha256:ab' },
  remoteAddr: '198.51.100.7', source: 'live', signatureStatus: 'verified', signatureTimestamp: null,
};

const baseEvent = (i: number) => {
  const data: Record<string, unknown> = i === 0 ? { direction: 'inbound', from: '+15551230001', to: '+15551239999' } : i === 1 ? { digits: '1234', source: 'gather' } : { outcome: 'completed', durationSec: 12 };
  const plain = { provider: 'twilio', legId: 'CA1', party: { direction: 'inbound', from: '+15551230001', to: 'sip:bob@example.com' }, source: 'live' };
  return { data, plain };
};

/** A rule-3 chain of `n` events of one receipt, written as the writer writes them (fresh seals per event). */
const chain = (n: number): StoredChainLink[] => {
  const links: StoredChainLink[] = [];
  let prev: Buffer | null = null;
  for (let i = 0; i < n; i++) {
    const { data, plain } = baseEvent(i % 3);
    const seals = sealPersonalFields({ data, metadata: plain, receipt });
    const c: ChainedEventContent = {
      chainVersion: 3, eventId: `00000000-0000-8000-8000-00000000000${i}`, streamName: 'callLeg-twilio:CA1', streamVersion: i + 1, type: 'X', schemaVersion: 1,
      data, metadata: { ...plain, seals }, bodySha256: 'ab'.repeat(32), receivedAt: '2026-12-01T00:00:00.000Z', occurredAt: null, receipt,
    };
    const hash = computeEventHash(prev, c);
    links.push({ ...c, position: String(i + 1), receiptId: '1', prevHash: prev, hash, actualBodySha256: c.bodySha256 });
    prev = hash;
  }
  return links;
};

/** Every (event index, sealed path) of a chain. */
const fieldsOf = (links: StoredChainLink[]) => links.flatMap((l, i) => keptSealedPaths(l.metadata).map((path) => ({ i, path })));

const erase = (links: StoredChainLink[], picks: { i: number; path: string }[]): StoredChainLink[] => {
  // The receipt's query is one column for all its events: erasing it there erases it for every event.
  const queryErased = picks.some((p) => p.path === 'receipt.query');
  const erased = links.map((l, i) => {
    const paths = [...picks.filter((p) => p.i === i).map((p) => p.path), ...(queryErased ? ['receipt.query'] : [])];
    const out = eraseSealedFields({ data: l.data, metadata: l.metadata, receipt: l.receipt }, paths);
    return { ...l, data: out.data, metadata: out.metadata, receipt: out.receipt, actualBodySha256: null };
  });
  // The erasure's record at the end of the stream, naming every link it changed (here all: every body was dropped).
  const last = erased.at(-1)!;
  const marker: ChainedEventContent = {
    chainVersion: 3, eventId: 'ffffffff-0000-8000-8000-000000000000', streamName: last.streamName, streamVersion: last.streamVersion + 1, type: 'PersonalDataErased',
    schemaVersion: 1, data: { erasureId: 'E', positions: erased.map((l) => l.position), fields: picks.length }, metadata: { provider: 'twilio', legId: 'CA1' },
    bodySha256: 'cd'.repeat(32), receivedAt: '2026-12-01T01:00:00.000Z', occurredAt: null, receipt: { ...receipt, query: '' },
  };
  const hash = computeEventHash(last.hash, marker);
  return [...erased, { ...marker, position: String(erased.length + 1), receiptId: '2', prevHash: last.hash, hash, actualBodySha256: marker.bodySha256 }];
};

describe('chain rule 3: sealed personal fields', () => {
  it('seals the personal fields an event carries, and only those', () => {
    const { data, plain } = baseEvent(0);
    expect(Object.keys(sealPersonalFields({ data, metadata: plain, receipt })).sort()).toEqual(['data.from', 'data.to', 'metadata.party.from', 'metadata.party.to', 'receipt.query']);
    expect(sealPersonalFields({ data: { outcome: 'busy' }, metadata: { party: null }, receipt: { ...receipt, query: '' } })).toEqual({});
  });

  it('a commitment depends on the nonce, the path and the value', () => {
    const n = '00'.repeat(16);
    const c = commitmentOf('data.from', n, '+15551230001');
    expect(commitmentOf('data.from', '01'.repeat(16), '+15551230001')).not.toBe(c);
    expect(commitmentOf('data.to', n, '+15551230001')).not.toBe(c);
    expect(commitmentOf('data.from', n, '+15551230002')).not.toBe(c);
  });

  it('erasing any subset of the sealed fields (and dropping the body) leaves every link verifying', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }).chain((n) => fc.tuple(fc.constant(n), fc.subarray(fieldsOf(chain(n))))), ([n, picks]) => {
        const links = chain(n);
        const erased = erase(links, picks);
        expect(verifyStreamChain(erased, { version: n + 1, lastHash: erased.at(-1)!.hash })).toBeNull();
        // Without its record, the same erasure is reported.
        expect(verifyStreamChain(erased.slice(0, -1))).toMatchObject({ reason: expect.stringContaining('no PersonalDataErased') });
        for (const p of picks) {
          const l = erased[p.i]!;
          const [root, ...keys] = p.path.split('.');
          const v = keys.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root === 'data' ? l.data : root === 'metadata' ? l.metadata : l.receipt);
          expect(v).toBe(ERASED);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('changing any byte of a kept value, a nonce or a commitment breaks the link', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(fc.constant(n), fc.subarray(fieldsOf(chain(n))), fc.nat(), fc.nat(), fc.constantFrom('value', 'seal'))),
        ([n, picks, which, at, what]) => {
          const erased = erase(chain(n), picks);
          // The fields of the stream's own events (the record at its end is not one of them).
          const all = erased.slice(0, -1).flatMap((l, i) => Object.keys((l.metadata as { seals: Record<string, string> }).seals).map((path) => ({ i, path })));
          const target = all[which % all.length]!;
          const l = erased[target.i]!;
          const seals = (l.metadata as { seals: Record<string, string> }).seals;
          const flip = (s: string) => {
            const k = at % s.length;
            return s.slice(0, k) + (s[k] === '0' ? '1' : '0') + s.slice(k + 1);
          };
          let edited: StoredChainLink;
          if (what === 'seal') {
            const seal = seals[target.path]!;
            // Keep the prefix (n: or c:), change one hex digit.
            edited = { ...l, metadata: { ...(l.metadata as object), seals: { ...seals, [target.path]: seal.slice(0, 2) + flip(seal.slice(2)) } } };
          } else {
            const [root, ...keys] = target.path.split('.');
            if (root === 'receipt') edited = { ...l, receipt: { ...l.receipt!, query: flip(`${l.receipt!.query}`) } };
            else {
              const doc = (root === 'data' ? l.data : l.metadata) as Record<string, unknown>;
              const set = (o: Record<string, unknown>, ks: string[]): Record<string, unknown> =>
                ks.length === 1 ? { ...o, [ks[0]!]: flip(JSON.stringify(o[ks[0]!])) } : { ...o, [ks[0]!]: set(o[ks[0]!] as Record<string, unknown>, ks.slice(1)) };
              edited = root === 'data' ? { ...l, data: set(doc, keys) } : { ...l, metadata: set(doc, keys) };
            }
            // An erased value is no longer hashed: editing `[erased]` proves nothing either way.
            if (seals[target.path]!.startsWith('c:')) return;
          }
          const copy = [...erased];
          copy[target.i] = edited;
          expect(verifyStreamChain(copy)).toMatchObject({ streamVersion: target.i + 1 });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a seal dropped, or added to a kept field, breaks the link; a rule-3 event relabelled 2 does not verify', () => {
    const [a] = chain(1);
    const seals = (a!.metadata as { seals: Record<string, string> }).seals;
    const { ['data.from']: _gone, ...rest } = seals;
    expect(verifyStreamChain([{ ...a!, metadata: { ...(a!.metadata as object), seals: rest } }])).not.toBeNull();
    expect(verifyStreamChain([{ ...a!, metadata: { ...(a!.metadata as object), seals: { ...seals, 'data.direction': `n:${'00'.repeat(16)}` } } }])).not.toBeNull();
    expect(verifyStreamChain([{ ...a!, chainVersion: 2 }])).not.toBeNull();
  });

  it('finds the sealed fields that hold a value', () => {
    const [a] = chain(1);
    expect(sealedPathsHolding({ data: a!.data, metadata: a!.metadata, receipt: a!.receipt }, (v) => v === '+15551230001')).toEqual(['data.from', 'metadata.party.from']);
  });
});
