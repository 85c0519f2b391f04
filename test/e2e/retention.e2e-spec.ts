import { generateKeyPairSync } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStoreRepository, verifyAuditExport, type WebhookRecord } from '@lib/event-store';
import { newEvent } from '@lib/ledger';
import type { Projector } from '@lib/projections';
import { jambonzRecord } from '@lib/testing';
import { runVerifyCli } from '../../apps/ledger/src/verify.cli.js';
import { API_KEY, readyProjector, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Retention (issue 16): months whose shortest rule has passed are archived (NDJSON + a signed manifest) and dropped as
 * whole partitions; the live chains, the signed checkpoints, the export and the archive still verify.
 * Months are placed relative to today: M-4 and M-3 expire under the 45-day jambonz rule, M-1 cannot have yet.
 */
const keys = generateKeyPairSync('ed25519');
const privatePem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const auth = { authorization: `Bearer ${API_KEY}` };

const now = new Date();
/** First day of the month `k` months before this one, plus `plusMs`. */
const monthAgo = (k: number, plusMs = 0) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - k, 1) + plusMs);
const isoMonth = (d: Date) => d.toISOString().slice(0, 10);
const suffix = (d: Date) => `p${d.toISOString().slice(0, 4)}m${d.toISOString().slice(5, 7)}`;
const M4 = monthAgo(4);
const M3 = monthAgo(3);
const M1 = monthAgo(1);
const HOUR = 3_600_000;

const at = (d: Date, r: WebhookRecord): WebhookRecord => ({ ...r, receipt: { ...r.receipt, receivedAt: d } });
const as = (provider: 'freeclimb', r: WebhookRecord): WebhookRecord => ({ ...r, receipt: { ...r.receipt, provider } });
const ringing = (legId: string, sipStatus: number) => newEvent('CallRinging', legId, { sipStatus }, { accountId: 'acc-r' });

let t: TestApp;
let projector: Projector;
let archiveDir: string;
let store: EventStoreRepository;

beforeAll(async () => {
  archiveDir = mkdtempSync(join(tmpdir(), 'ledger-archive-'));
  t = await startTestApp({
    ...SECRETS,
    LEDGER_CHECKPOINT_SIGNING_KEY: privatePem,
    LEDGER_RETENTION: 'raw=400d,raw:jambonz=45d',
    LEDGER_ARCHIVE_DIR: archiveDir,
    LEDGER_RETENTION_INTERVAL_SEC: '0',
  });
  projector = await readyProjector(t);
  store = new EventStoreRepository(t.pools.app.db);
  // A leg across the M-4 / M-3 boundary that goes on in M-1, a leg wholly in M-4, a freeclimb leg (400 days) in M-3.
  await store.appendBatch([at(new Date(M3.getTime() - HOUR), jambonzRecord('ret-span', { events: [ringing('ret-span', 100), ringing('ret-span', 180)] }))]);
  await store.appendBatch([at(new Date(M3.getTime() + HOUR), jambonzRecord('ret-span', { events: [ringing('ret-span', 183)] }))]);
  await store.appendBatch([at(monthAgo(4, 5 * HOUR), jambonzRecord('ret-old', { body: JSON.stringify({ archived: 'body' }) }))]);
  await store.appendBatch([at(monthAgo(3, 9 * HOUR), as('freeclimb', jambonzRecord('ret-fc')))]);
  const [last] = await store.appendBatch([at(monthAgo(1, 2 * HOUR), jambonzRecord('ret-span', { events: [ringing('ret-span', 200)] }))]);
  expect(await projector.waitFor(last!.position!, 10_000)).toBe(true);
  const cp = await t.app.inject({ method: 'POST', url: '/v1/admin/checkpoints', headers: auth });
  expect(cp.statusCode).toBe(201);
});
afterAll(async () => t.close());

const verifyOnline = async () => (await t.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth })).json();
const exportLines = async () => (await t.app.inject({ method: 'GET', url: '/v1/audit/export', headers: auth })).body.trimEnd().split('\n');

describe('retention: archive, then drop whole months', () => {
  it('archives and drops the expired months (the shortest rule present wins), keeps the others, and records each drop', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/admin/retention', headers: auth });
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report.enabled).toBe(true);
    expect(report.archived.map((a: { month: string }) => a.month)).toEqual([isoMonth(M4), isoMonth(M3)]);
    expect(report.archived[0]).toMatchObject({ receipts: 2, events: 3, runs: 2 });
    expect(report.archived[1]).toMatchObject({ receipts: 2, events: 2, runs: 2 });
    expect(report.kept.map((k: { month: string }) => k.month)).toContain(isoMonth(M1));

    for (const d of [M4, M3]) {
      for (const table of ['events', 'webhook_receipts']) {
        const gone = await sql<{ a: string | null; b: string | null }>`
          SELECT to_regclass(${`${table}_${suffix(d)}`})::text AS a, to_regclass(${`${table}_${suffix(d)}_archiving`})::text AS b`.execute(t.db.db);
        expect(gone.rows[0]).toEqual({ a: null, b: null });
      }
    }
    const left = await sql<{ n: number }>`SELECT count(*)::int AS n FROM events WHERE stream_name LIKE 'callLeg-%:ret-%'`.execute(t.db.db);
    expect(left.rows[0]!.n).toBe(1);

    const actions = (await t.app.inject({ method: 'GET', url: '/v1/admin/actions', headers: auth })).json().data;
    const drops = actions.filter((a: { action: string }) => a.action === 'retention.drop');
    expect(drops.map((a: { keyName: string; details: { month: string } }) => [a.keyName, a.details.month])).toEqual([
      ['ops', isoMonth(M3)],
      ['ops', isoMonth(M4)],
    ]);
    const manifest = JSON.parse(readFileSync(join(archiveDir, isoMonth(M3).slice(0, 7), 'manifest.json'), 'utf8'));
    expect(manifest.retention.pairs).toEqual(
      expect.arrayContaining([expect.objectContaining({ provider: 'freeclimb', days: 400 }), expect.objectContaining({ provider: 'jambonz', days: 45 })]),
    );
  });

  it('lets the service role drop only months that ended more than a day ago, and only detached ones', async () => {
    await expect(sql`SELECT * FROM ledger_detach_month(${isoMonth(monthAgo(0))}::date)`.execute(t.pools.app.db)).rejects.toThrow(/has not ended a day ago/);
    await expect(sql`SELECT ledger_drop_month(${isoMonth(M1)}::date, ${Buffer.alloc(32)}, 'x')`.execute(t.pools.app.db)).rejects.toThrow(/not detached/);
    await expect(sql`DROP TABLE ${sql.table(`events_${suffix(M1)}`)}`.execute(t.pools.app.db)).rejects.toThrow(/must be owner/);
  });

  it('keeps the projections: the legs of dropped months are still read', async () => {
    for (const leg of ['ret-old', 'ret-span']) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/calls/${leg}`, headers: auth });
      expect(res.statusCode, res.body).toBe(200);
    }
  });

  it('verifies online: each chain resumes at its archived anchor, the signed checkpoint heads that were archived are the archive\'s', async () => {
    const report = await verifyOnline();
    expect(report).toMatchObject({ valid: true, broken: [], checkpoints: { checked: 1, signed: 1, problems: [] } });
  });

  it('verifies the export offline, chains starting at the anchors it carries', async () => {
    const lines = await exportLines();
    const span = lines.map((l) => JSON.parse(l)).find((o) => o.kind === 'stream' && o.streamName === 'callLeg-jambonz:ret-span');
    expect(span.archived.map((r: unknown[]) => [r[0], r[2]])).toEqual([
      [1, 2],
      [3, 3],
    ]);
    expect(await verifyAuditExport(lines, { publicKey: publicPem })).toMatchObject({ valid: true, broken: [] });
    // Without the anchors the same chain does not verify: they are what the check starts from.
    const stripped = lines.map((l) => (l.includes('"kind":"stream"') && l.includes('ret-span') ? JSON.stringify({ ...JSON.parse(l), archived: undefined }) : l));
    expect((await verifyAuditExport(stripped, { publicKey: publicPem })).valid).toBe(false);
  });

  it('verifies each archive offline (npm run verify -- <folder>), and catches an edited one', async () => {
    const keyFile = join(archiveDir, 'key.pem');
    writeFileSync(keyFile, publicPem);
    for (const d of [M4, M3]) {
      const out: string[] = [];
      expect(await runVerifyCli([join(archiveDir, isoMonth(d).slice(0, 7)), '--public-key', keyFile], (x) => out.push(x))).toBe(0);
      expect(JSON.parse(out[0]!)).toMatchObject({ valid: true, signatureChecked: true, problems: [] });
    }
    const copy = mkdtempSync(join(tmpdir(), 'ledger-archive-edit-'));
    cpSync(join(archiveDir, isoMonth(M4).slice(0, 7)), copy, { recursive: true });
    const receipts = join(copy, 'receipts.ndjson');
    const edited = readFileSync(receipts, 'utf8').replace(Buffer.from(JSON.stringify({ archived: 'body' })).toString('base64'), Buffer.from('{"archived":"edit"}').toString('base64'));
    writeFileSync(receipts, edited);
    const out: string[] = [];
    expect(await runVerifyCli([copy, '--public-key', keyFile], (x) => out.push(x))).toBe(1);
    expect(JSON.parse(out[0]!).problems.join(' ')).toMatch(/receipts.ndjson does not match|body does not match/);
  });

  it('takes a late delivery for a dropped month into a new partition, chained after the live head; a re-delivery of an archived body stays a duplicate', async () => {
    const [late] = await store.appendBatch([at(monthAgo(4, 7 * HOUR), jambonzRecord('ret-span', { events: [ringing('ret-span', 486)] }))]);
    expect(late!.duplicate).toBe(false);
    expect(existsSync(join(archiveDir, isoMonth(M4).slice(0, 7), 'manifest.json'))).toBe(true);
    const [again] = await store.appendBatch([at(monthAgo(1, 3 * HOUR), jambonzRecord('ret-old', { body: JSON.stringify({ archived: 'body' }) }))]);
    expect(again!.duplicate).toBe(true);
    expect(await verifyOnline()).toMatchObject({ valid: true, broken: [] });
  });
});
