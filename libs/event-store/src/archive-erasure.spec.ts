import { createHash, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ARCHIVE_FORMAT, ARCHIVE_FILES, chainLinkLine, RunCollector, signManifest, verifyArchive, type ArchiveFile, type ArchiveManifest, type FileDigest } from './archive.js';
import { ArchiveMonthEraser, ErasedLinks, entriesFromMarkers, type ArchiveErasureEntry } from './archive-erasure.js';
import { loadSigningKey } from './checkpoint.js';
import { escapeEncoded, subjectMatcher } from './erasure-plan.js';
import { computeEventHash, type ChainedEventContent, type HashedReceiptMeta, type StoredChainLink } from './hash-chain.js';
import { sealPersonalFields } from './personal-seals.js';

const keys = generateKeyPairSync('ed25519');
const signer = loadSigningKey(keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
const publicKey = signer.publicKeyPem;

const NUMBERS = ['+15551230001', '+15557770002', '+15559990003'] as const;
const TO = '+15550000000';

/** An archived month: per number one leg of three events, each from a receipt whose body and query carry the number. */
const buildMonth = (rule: (i: number) => number = () => 3) => {
  const receipts: Record<string, unknown>[] = [];
  const links: StoredChainLink[] = [];
  let position = 0;
  NUMBERS.forEach((from, k) => {
    let prev: Buffer | null = null;
    for (let v = 1; v <= 3; v++) {
      position += 1;
      const id = String(position);
      const body = Buffer.from(JSON.stringify({ From: from, To: TO, CallStatus: ['ringing', 'in-progress', 'completed'][v - 1], CallSid: `CA${k}` }));
      const query = `From=${encodeURIComponent(from)}&To=${encodeURIComponent(TO)}`;
      const receipt: HashedReceiptMeta = {
        provider: 'twilio', contentType: 'application/x-www-form-urlencoded', path: 'status', query, headers: {}, remoteAddr: null, source: 'live',
        signatureStatus: 'verified', signatureTimestamp: null,
      };
      const data = v === 1 ? { direction: 'inbound', from, to: TO } : { outcome: 'x' };
      const plain = { provider: 'twilio', legId: `CA${k}`, party: { direction: 'inbound', from, to: TO } };
      const chainVersion = rule(position);
      const metadata = chainVersion >= 3 ? { ...plain, seals: sealPersonalFields({ data, metadata: plain, receipt }) } : plain;
      const c: ChainedEventContent = {
        chainVersion, eventId: `00000000-0000-8000-8000-${String(position).padStart(12, '0')}`, streamName: `callLeg-twilio:CA${k}`, streamVersion: v, type: v === 1 ? 'CallInitiated' : 'CallRinging',
        schemaVersion: 1, data, metadata, bodySha256: createHash('sha256').update(body).digest('hex'), receivedAt: '2026-01-05T00:00:00.000Z', occurredAt: null, receipt,
      };
      const hash = computeEventHash(prev, c);
      links.push({ ...c, position: id, transactionId: id, receiptId: id, prevHash: prev, hash, actualBodySha256: c.bodySha256 });
      prev = hash;
      receipts.push({
        id, provider: 'twilio', bodySha256: c.bodySha256, dedupeKey: null, body: body.toString('base64'), contentType: receipt.contentType, path: 'status', query,
        headers: {}, remoteAddr: null, receivedAt: c.receivedAt, source: 'live', signatureStatus: 'verified', signatureTimestamp: null, recordedAt: c.receivedAt, erasedAt: null,
      });
    }
  });
  const collector = new RunCollector('2026-01-01');
  const runs = links.flatMap((l) => collector.add(l));
  runs.push(...collector.end());
  const files: Record<ArchiveFile, string[]> = {
    'receipts.ndjson': receipts.map((r) => JSON.stringify(r)),
    'events.ndjson': links.map((l) => JSON.stringify(chainLinkLine(l))),
    'runs.ndjson': runs.map((r) => JSON.stringify(r)),
  };
  const manifest = manifestOf(files, [], collector.streams);
  return { files, manifest };
};

const digest = (lines: string[]): FileDigest => {
  const text = lines.map((l) => `${l}\n`).join('');
  return { sha256: createHash('sha256').update(text).digest('hex'), bytes: Buffer.byteLength(text), lines: lines.length };
};

const manifestOf = (files: Record<ArchiveFile, string[]>, erasures: ArchiveErasureEntry[] | undefined, streams: number = NUMBERS.length): ArchiveManifest =>
  signManifest(
    {
      format: ARCHIVE_FORMAT, month: '2026-01-01', range: { from: '2026-01-01T00:00:00.000Z', to: '2026-02-01T00:00:00.000Z' }, createdAt: '2026-03-01T00:00:00.000Z',
      counts: { receipts: files['receipts.ndjson'].length, events: files['events.ndjson'].length, streams, runs: files['runs.ndjson'].length },
      files: Object.fromEntries(ARCHIVE_FILES.map((f) => [f, digest(files[f])])) as Record<ArchiveFile, FileDigest>,
      retention: { rule: 'test', dropAt: null, pairs: [] }, ...(erasures ? { erasures } : {}),
    },
    signer,
  );

const verify = (files: Record<ArchiveFile, string[]>, manifest: ArchiveManifest) =>
  verifyArchive(JSON.stringify(manifest), Object.fromEntries(ARCHIVE_FILES.map((f) => [f, digest(files[f])])) as Record<ArchiveFile, FileDigest>, {
    'receipts.ndjson': () => files['receipts.ndjson'], 'events.ndjson': () => files['events.ndjson'], 'runs.ndjson': () => files['runs.ndjson'],
  }, { publicKey });

/** What archive-eraser.ts does to a month's files, in memory. */
const eraseMonth = (files: Record<ArchiveFile, string[]>, subject: Parameters<typeof subjectMatcher>[0], earlier: ArchiveErasureEntry[] = []) => {
  const eraser = new ArchiveMonthEraser(subjectMatcher(subject), '2026-06-01T00:00:00.000Z');
  for (const l of files['receipts.ndjson']) eraser.scanReceipt(l);
  for (const l of files['events.ndjson']) eraser.scanEvent(l);
  const events = files['events.ndjson'].map((l) => eraser.rewriteEvent(l));
  const out: Record<ArchiveFile, string[]> = { 'receipts.ndjson': files['receipts.ndjson'].map((l) => eraser.rewriteReceipt(l)), 'events.ndjson': events, 'runs.ndjson': files['runs.ndjson'] };
  const entry: ArchiveErasureEntry = { erasureId: 'E1', at: '2026-06-01T00:00:00.000Z', ...eraser.entry };
  return { eraser, files: out, manifest: manifestOf(out, [...earlier, entry]) };
};

/** Every form the number can take in the files: as is, without `+`, URL-encoded, and inside base64 bodies. */
const traces = (files: Record<ArchiveFile, string[]>, number: string): string[] => {
  const digits = number.slice(1);
  const text = Object.values(files).flat().join('\n');
  const bodies = files['receipts.ndjson'].map((l) => Buffer.from((JSON.parse(l) as { body: string }).body, 'base64').toString('latin1')).join('\n');
  return [text, bodies].filter((t) => t.includes(digits));
};

describe('erasure of an archived month', () => {
  it('erases a number: values to [erased], seals to commitments, bodies dropped; the month still verifies with the erasure listed', async () => {
    const { files, manifest } = buildMonth();
    expect(await verify(files, manifest)).toMatchObject({ valid: true, problems: [] });
    const { eraser, files: out, manifest: signed } = eraseMonth(files, { kind: 'number', number: NUMBERS[0] });
    // data.from, metadata.party.from and receipt.query of the first event; party.from and the query of the others.
    expect(eraser.counts).toEqual({ events: 3, fields: 3 + 2 + 2, receipts: 3, notErasable: 0 });
    expect(traces(out, NUMBERS[0])).toEqual([]);
    expect(traces(out, NUMBERS[1])).toHaveLength(2);
    expect([...eraser.changed.keys()]).toEqual(['callLeg-twilio:CA0']);
    expect(eraser.changed.get('callLeg-twilio:CA0')).toMatchObject({ positions: ['1', '2', '3'], parties: ['from'] });
    const receipt = JSON.parse(out['receipts.ndjson'][0]!);
    expect(receipt).toMatchObject({ body: '', query: '[erased]', erasedAt: '2026-06-01T00:00:00.000Z' });
    // Lines it did not change keep their bytes.
    expect(out['events.ndjson'].slice(3)).toEqual(files['events.ndjson'].slice(3));
    expect(await verify(out, signed)).toMatchObject({ valid: true, problems: [], erasures: 1 });
  });

  it('rejects an erasure no record names: the files hashed and signed, but the manifest lists no such erasure', async () => {
    const { files } = buildMonth();
    const { files: out } = eraseMonth(files, { kind: 'number', number: NUMBERS[1] });
    const report = await verify(out, manifestOf(out, []));
    expect(report.valid).toBe(false);
    expect(report.problems.join(' ')).toMatch(/callLeg-twilio:CA1 at 4: erased with no erasure in the manifest/);
  });

  it('rejects a byte changed after the rewrite, and a manifest whose erasures were edited', async () => {
    const { files } = buildMonth();
    const { files: out, manifest } = eraseMonth(files, { kind: 'leg', legIds: ['CA2'] });
    const edited = { ...out, 'events.ndjson': out['events.ndjson'].map((l, i) => (i === 0 ? l.replace('inbound', 'outbound') : l)) };
    expect((await verify(edited, manifest)).problems.join(' ')).toMatch(/events.ndjson does not match/);
    const forged = { ...manifest, erasures: [] };
    expect((await verify(out, forged)).problems.join(' ')).toMatch(/signature does not verify/);
  });

  it('erases a leg: every sealed value of its streams; other legs untouched', async () => {
    const { files } = buildMonth();
    const { eraser, files: out, manifest } = eraseMonth(files, { kind: 'leg', legIds: ['CA2'] });
    expect(eraser.counts.receipts).toBe(3);
    expect(traces(out, NUMBERS[2])).toEqual([]);
    expect(traces(out, TO)).toHaveLength(2);
    expect(eraser.changed.get('callLeg-twilio:CA2')?.parties).toEqual(['from', 'to']);
    expect((await verify(out, manifest)).valid).toBe(true);
  });

  it('keeps values hashed in clear (rules 1 and 2) and counts them; their bodies still go', async () => {
    const { files, manifest } = buildMonth((position) => (position <= 3 ? 2 : 3));
    expect((await verify(files, manifest)).valid).toBe(true);
    const { eraser, files: out, manifest: signed } = eraseMonth(files, { kind: 'number', number: NUMBERS[0] });
    expect(eraser.counts).toMatchObject({ events: 0, fields: 0, receipts: 3, notErasable: 3 });
    const receipt = JSON.parse(out['receipts.ndjson'][0]!);
    expect(receipt).toMatchObject({ body: '', erasedAt: expect.any(String) });
    expect(receipt.query).toContain('15551230001');
    expect((await verify(out, signed)).valid).toBe(true);
  });

  it('verifies a format-1 month (written before erasures were listed) as before, saying its erased rows are not checked', async () => {
    const { files } = buildMonth();
    const { files: out } = eraseMonth(files, { kind: 'leg', legIds: ['CA0'] });
    const old = signManifest({ ...(({ signature: _s, publicKeySha256: _k, erasures: _e, ...m }) => m)(manifestOf(out, undefined)), format: 'call-ledger-archive/1' }, signer);
    const report = await verify(out, old);
    expect(report).toMatchObject({ valid: true, problems: [] });
    expect(report.notes.join(' ')).toMatch(/3 erased rows are not checked against an erasure record/);
  });

  it('a second erasure of the same number changes nothing', () => {
    const { files } = buildMonth();
    const { files: once } = eraseMonth(files, { kind: 'number', number: NUMBERS[0] });
    const { eraser, files: twice } = eraseMonth(once, { kind: 'number', number: NUMBERS[0] });
    expect(eraser.touched).toBe(false);
    expect(twice).toEqual(once);
  });

  it('property: erasing any sequence of subjects keeps the month verifying and leaves no trace of them', async () => {
    const subjects = fc.constantFrom<Parameters<typeof subjectMatcher>[0]>(
      { kind: 'number', number: NUMBERS[0] }, { kind: 'number', number: NUMBERS[1] }, { kind: 'number', number: NUMBERS[2] }, { kind: 'leg', legIds: ['CA1'] }, { kind: 'call', legIds: ['CA0', 'CA2'] },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(subjects, { minLength: 1, maxLength: 3 }), async (seq) => {
        let { files } = buildMonth();
        let erasures: ArchiveErasureEntry[] = [];
        for (const [i, s] of seq.entries()) {
          const r = eraseMonth(files, s, erasures);
          files = r.files;
          erasures = (r.manifest.erasures ?? []).map((e, j) => (j === erasures.length ? { ...e, erasureId: `E${i}` } : e));
        }
        const report = await verify(files, manifestOf(files, erasures));
        expect(report.problems).toEqual([]);
        for (const s of seq) if (s.kind === 'number') expect(traces(files, s.number)).toEqual([]);
      }),
      { numRuns: 25 },
    );
  });
});

describe('erasures made while a month was live', () => {
  it('are listed from the records that name them; an erased row no record names stays unlisted', () => {
    const links = new ErasedLinks();
    links.add({ position: '5', streamName: 's', type: 'X', data: {}, metadata: { seals: { 'data.from': 'c:' + 'a'.repeat(64) } }, bodyErased: true });
    links.add({ position: '6', streamName: 's', type: 'X', data: {}, metadata: {}, bodyErased: true });
    links.add({ position: '7', streamName: 's', type: 'X', data: {}, metadata: {}, bodyErased: false });
    links.add({ position: '8', streamName: 't', type: 'X', data: {}, metadata: {}, bodyErased: true });
    links.add({ position: '9', streamName: 't', type: 'PersonalDataErased', data: { positions: ['8'] }, metadata: {}, bodyErased: false });
    const unnamed = links.unnamed();
    expect([...unnamed.keys()]).toEqual(['5', '6']);
    expect(entriesFromMarkers(unnamed, [{ erasureId: 'E', at: 'T', positions: ['5', '99'] }])).toEqual([{ erasureId: 'E', at: 'T', events: [['5', ['data.from']]], receipts: [] }]);
  });
});

describe('escapeEncoded', () => {
  it('reads a body as PostgreSQL encode(body, \'escape\') does', () => {
    expect(escapeEncoded(Buffer.from([0x41, 0x00, 0x5c, 0xe9, 0x2b, 0x31]))).toBe('A\\000\\\\\\351+1');
  });
});
