import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';
import { chainContent, chainContentOfText, computeEventHash, verifyStreamChain, type ArchivedRun, type ChainedEventContent, type HashedReceiptMeta, type StoredChainLink } from './hash-chain.js';

const content = {
  chainVersion: 1,
  receipt: null,
  eventId: '0f6c2b1e-1111-8222-9333-444455556666',
  streamName: 'callLeg-jambonz:abc',
  type: 'CallCompleted',
  schemaVersion: 1,
  data: { outcome: 'completed', durationSec: 37, nested: { b: 2, a: [1, { d: 1, c: 'é\u0000' }] } },
  metadata: { provider: 'jambonz', legId: 'abc', party: null },
  bodySha256: 'ab'.repeat(32),
  receivedAt: '2026-01-05T14:02:10.118Z',
  occurredAt: null,
};

const link = (streamVersion: number, prev: Buffer | null, overrides: Partial<StoredChainLink> = {}): StoredChainLink => {
  const c: ChainedEventContent = { ...content, streamVersion, ...overrides };
  return { ...c, position: String(streamVersion), receiptId: '1', prevHash: prev, hash: computeEventHash(prev, c), actualBodySha256: c.bodySha256 };
};

describe('hash chain', () => {
  it('canonical text does not depend on key order and equals canonicalJson of the tuple', () => {
    const shuffled = { ...content, data: { nested: { a: [1, { c: 'é\u0000', d: 1 }], b: 2 }, durationSec: 37, outcome: 'completed' } };
    expect(chainContent(shuffled)).toBe(chainContent(content));
    expect(chainContent(content)).toBe(
      canonicalJson([content.eventId, content.streamName, content.type, 1, content.data, content.metadata, content.bodySha256, content.receivedAt, null]),
    );
    expect(chainContentOfText({ ...content, dataText: canonicalJson(content.data), metadataText: canonicalJson(content.metadata), receiptText: null })).toBe(chainContent(content));
  });

  it('verifies an intact chain and reports the first broken link', () => {
    const a = link(1, null);
    const b = link(2, a.hash);
    const c = link(3, b.hash);
    expect(verifyStreamChain([a, b, c])).toBeNull();
    expect(verifyStreamChain([a, { ...b, data: { outcome: 'busy' } }, c])).toMatchObject({ streamVersion: 2, reason: 'event content does not match its hash' });
    expect(verifyStreamChain([a, c])).toMatchObject({ streamVersion: 3, reason: expect.stringContaining('missing') });
    expect(verifyStreamChain([a, { ...b, prevHash: Buffer.alloc(32) }, c])).toMatchObject({ streamVersion: 2, reason: expect.stringContaining('previous-hash') });
    expect(verifyStreamChain([{ ...a, actualBodySha256: 'cd'.repeat(32) }, b])).toMatchObject({ streamVersion: 1, reason: expect.stringContaining('raw webhook body') });
  });

  it('steps over versions that retention archived, from the hash before each run to its last hash', () => {
    const links: StoredChainLink[] = [];
    for (let v = 1; v <= 7; v += 1) links.push(link(v, links.at(-1)?.hash ?? null));
    const run = (first: number, last: number): ArchivedRun => ({
      firstVersion: first,
      prevHash: links[first - 2]?.hash ?? null,
      lastVersion: last,
      lastHash: links[last - 1]!.hash,
      month: '2025-01-01',
    });
    const head = { version: 7, lastHash: links[6]!.hash };
    // Archived: 1-2 and 4 (two months), and 6-7 at the end: the live chain holds 3 and 5 only.
    const live = [links[2]!, links[4]!];
    const runs = [run(1, 2), run(4, 4), run(6, 7)];
    expect(verifyStreamChain(live, head, runs)).toBeNull();
    expect(verifyStreamChain([], head, [run(1, 7)])).toBeNull();
    expect(verifyStreamChain(live, head)).toMatchObject({ streamVersion: 3, reason: expect.stringContaining('missing') });
    expect(verifyStreamChain(live, head, [run(1, 2), run(6, 7)])).toMatchObject({ streamVersion: 5, reason: expect.stringContaining('missing') });
    expect(verifyStreamChain(live, head, [run(1, 2), { ...run(4, 4), prevHash: Buffer.alloc(32) }, run(6, 7)])).toMatchObject({
      streamVersion: 5,
      reason: expect.stringContaining('do not chain'),
    });
    // A forged run whose last hash is not the one the live chain goes on from.
    expect(verifyStreamChain(live, head, [{ ...run(1, 2), lastHash: Buffer.alloc(32) }, run(4, 4), run(6, 7)])).toMatchObject({
      streamVersion: 3,
      reason: expect.stringContaining('previous-hash'),
    });
    expect(verifyStreamChain(live, { ...head, version: 8 }, runs)).toMatchObject({ reason: expect.stringContaining('head records version 8') });
  });

  const receipt: HashedReceiptMeta = {
    provider: 'jambonz', contentType: 'application/json', path: 'status', query: '', headers: { 'jambonz-signature': 't=1,v1=ab' },
    remoteAddr: '198.51.100.7', source: 'live', signatureStatus: 'verified', signatureTimestamp: '2026-01-05T14:02:10.000Z',
  };

  it('chain version 2 covers the receipt metadata; version 1 events keep verifying under their own rule', () => {
    const a = link(1, null);
    const b = link(2, a.hash, { chainVersion: 2, receipt });
    const c = link(3, b.hash, { chainVersion: 2, receipt });
    expect(verifyStreamChain([a, b, c])).toBeNull();
    expect(chainContent({ ...content, chainVersion: 2, receipt })).toMatch(/^\["chain\/2",/);
    for (const edit of [{ signatureStatus: 'unverified' }, { remoteAddr: '203.0.113.9' }, { headers: { 'jambonz-signature': 't=1,v1=cd' } }, { query: 'x=1' }]) {
      expect(verifyStreamChain([a, { ...b, receipt: { ...receipt, ...edit } }, c])).toMatchObject({ streamVersion: 2, reason: expect.stringContaining('receipt metadata') });
    }
    // Relabelling a version-2 event as version 1 to drop the receipt from the hash does not verify either.
    expect(verifyStreamChain([a, b, { ...c, chainVersion: 1, receipt: null }])).toMatchObject({ streamVersion: 3 });
  });

  it('compares the chain with its stream head: a deleted last event or a rewritten head is reported', () => {
    const a = link(1, null);
    const b = link(2, a.hash);
    expect(verifyStreamChain([a, b], { version: 2, lastHash: b.hash })).toBeNull();
    expect(verifyStreamChain([a], { version: 2, lastHash: b.hash })).toMatchObject({ reason: expect.stringContaining('records version 2 but the chain ends at 1') });
    expect(verifyStreamChain([a, b], { version: 2, lastHash: a.hash })).toMatchObject({ reason: expect.stringContaining('another last hash') });
  });
});
