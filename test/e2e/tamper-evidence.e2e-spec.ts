import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { checkpointMessage, computeEventHash, EventStoreRepository, verifyAuditExport } from '@lib/event-store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, readyProjector, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, type SignedRequest } from '../support/signing.js';
import { runVerifyCli } from '../../apps/ledger/src/verify.cli.js';

/**
 * Tamper evidence: the database owner can switch the immutability triggers off, but whatever they change in
 * the store, /v1/audit/verify names the stream and the position of the first link that no longer holds.
 */
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp(SECRETS);
  // The events route reads the leg from the read model: its views exist once the projector has started (after
  // the start-up re-translation pass).
  await readyProjector(t);
});
afterAll(async () => t.close());

const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const leg = (callId: string, status: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ accountId: ACC, callId, callStatus: status, direction: 'inbound', from: '+13125550147', to: '+13125550100', parentCallId: null, conferenceId: null, queueId: null, requestType: 'callStatus', ...extra });
const post = async (r: SignedRequest) => {
  const res = await t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
  expect(res.statusCode).toBe(200);
};
const verify = async () => (await t.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: { authorization: `Bearer ${API_KEY}` } })).json();
const asOwner = async (statement: ReturnType<typeof sql>, table = 'events') => {
  await sql`ALTER TABLE ${sql.table(table)} DISABLE TRIGGER USER`.execute(t.db.db);
  try {
    await statement.execute(t.db.db);
  } finally {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE TRIGGER USER`.execute(t.db.db);
  }
};
const eventsOf = async (callId: string) =>
  (await sql<{ position: string; version: number; receipt_id: string }>`
    SELECT global_position::text AS position, stream_version AS version, receipt_id::text FROM events
    WHERE stream_name = ${`callLeg-freeclimb:${callId}`} ORDER BY stream_version`.execute(t.db.db)).rows;

describe('GET /v1/audit/verify after tampering as the database owner', () => {
  beforeAll(async () => {
    for (const callId of ['CA-tamper-1', 'CA-tamper-2', 'CA-tamper-3', 'CA-tamper-ok']) {
      await post(freeclimbRequest(leg(callId, 'ringing', { requestType: 'inboundCall' }), '/voice'));
      await post(freeclimbRequest(leg(callId, 'inProgress'), '/status'));
      await post(freeclimbRequest(leg(callId, 'completed', { callDuration: 10 }), '/status'));
    }
    expect(await verify()).toMatchObject({ valid: true, broken: [] });
  });

  it('the triggers refuse the change unless the owner disables them', async () => {
    await expect(sql`UPDATE events SET data = '{}' WHERE stream_name = 'callLeg-freeclimb:CA-tamper-1'`.execute(t.db.db)).rejects.toThrow(/append-only/);
    await expect(sql`DELETE FROM webhook_receipts`.execute(t.db.db)).rejects.toThrow(/append-only/);
  });

  it('names the exact stream and position of a changed event, a deleted event and an edited raw body', async () => {
    const one = await eventsOf('CA-tamper-1');
    const two = await eventsOf('CA-tamper-2');
    const three = await eventsOf('CA-tamper-3');
    expect(one.length).toBeGreaterThanOrEqual(3);

    // A changed event in the middle of a stream: the link at that position no longer hashes.
    const changed = one[1]!;
    await asOwner(sql`UPDATE events SET data = jsonb_set(data, '{changed}', 'true') WHERE global_position = ${changed.position}::bigint`);
    // A deleted event: the next one sits at a version that no longer follows.
    const deleted = two[1]!;
    await asOwner(sql`DELETE FROM events WHERE global_position = ${deleted.position}::bigint`);
    // An edited raw webhook body: the event that cites it no longer matches the recorded sha256.
    const cited = three[0]!;
    await asOwner(sql`UPDATE webhook_receipts SET body = convert_to(replace(convert_from(body, 'UTF8'), 'ringing', 'busy'), 'UTF8') WHERE id = ${cited.receipt_id}::bigint`, 'webhook_receipts');

    const report = await verify();
    expect(report.valid).toBe(false);
    const broken = [...report.broken].sort((a: { callId: string }, b: { callId: string }) => a.callId.localeCompare(b.callId));
    expect(broken).toEqual([
      { callId: 'CA-tamper-1', provider: 'freeclimb', streamName: 'callLeg-freeclimb:CA-tamper-1', position: changed.position, reason: expect.stringContaining('does not match its hash') },
      { callId: 'CA-tamper-2', provider: 'freeclimb', streamName: 'callLeg-freeclimb:CA-tamper-2', position: two[2]!.position, reason: expect.stringContaining('stream version 3 where 2 was expected') },
      { callId: 'CA-tamper-3', provider: 'freeclimb', streamName: 'callLeg-freeclimb:CA-tamper-3', position: cited.position, reason: 'raw webhook body no longer matches its recorded sha256' },
    ]);
    // The untouched stream still verifies on its own.
    const ok = (await t.app.inject({ method: 'GET', url: '/v1/audit/verify?callId=CA-tamper-ok', headers: { authorization: `Bearer ${API_KEY}` } })).json();
    expect(ok).toMatchObject({ streamsChecked: 1, valid: true, broken: [] });

    // The audit trail marks each event: links before the break verify, the break and everything after it do not.
    const head = (await sql<{ p: string }>`SELECT max(global_position)::text AS p FROM events`.execute(t.db.db)).rows[0]!.p;
    const trail = (await t.app.inject({ method: 'GET', url: `/v1/calls/CA-tamper-1/events?minPosition=${head}`, headers: { authorization: `Bearer ${API_KEY}` } })).json();
    expect(trail.chain?.valid, JSON.stringify(trail).slice(0, 600)).toBe(false);
    expect(trail.data.map((e: { position: string; chainVerified: boolean }) => [e.position, e.chainVerified])).toEqual(
      one.map((e, i) => [e.position, i < 1]),
    );
    const untouched = (await t.app.inject({ method: 'GET', url: `/v1/calls/CA-tamper-ok/events?minPosition=${head}`, headers: { authorization: `Bearer ${API_KEY}` } })).json();
    expect(untouched.data.every((e: { chainVerified: boolean }) => e.chainVerified)).toBe(true);
  });
});

/**
 * The owner's stronger attacks (issue 10): receipt metadata, the end of a stream, a rewritten chain with its
 * hashes recomputed, a whole leg deleted, a forged checkpoint signature. The chain alone cannot catch the last
 * three; the signed checkpoint and the stream head rows do.
 */
describe('GET /v1/audit/verify against the owner, with signed checkpoints', () => {
  const keys = generateKeyPairSync('ed25519');
  const privatePem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  let s: TestApp;
  const auth = { authorization: `Bearer ${API_KEY}` };
  const postTo = async (r: SignedRequest) => {
    const res = await s.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
    expect(res.statusCode, res.body).toBe(200);
  };
  const verifyS = async () => (await s.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth })).json();
  const exportS = async () => {
    const res = await s.app.inject({ method: 'GET', url: '/v1/audit/export', headers: auth });
    expect(res.statusCode).toBe(200);
    return res.body.trimEnd().split('\n');
  };
  // As the owner, with every trigger off for this session (one connection, so the SET applies to the statement).
  const ownerDo = async (statement: ReturnType<typeof sql>) =>
    s.db.db.connection().execute(async (c) => {
      await sql`SET session_replication_role = replica`.execute(c);
      try {
        await statement.execute(c);
      } finally {
        await sql`SET session_replication_role = DEFAULT`.execute(c);
      }
    });
  const streamOf = (callId: string) => `callLeg-freeclimb:${callId}`;
  const legs = ['CA-own-verdict', 'CA-own-addr', 'CA-own-sig', 'CA-own-last', 'CA-own-rewrite', 'CA-own-leg', 'CA-own-ok'];

  beforeAll(async () => {
    s = await startTestApp({ ...SECRETS, LEDGER_CHECKPOINT_SIGNING_KEY: privatePem, LEDGER_CHECKPOINT_INTERVAL_SEC: '0' });
    for (const callId of legs) {
      await postTo(freeclimbRequest(leg(callId, 'ringing', { requestType: 'inboundCall' }), '/voice'));
      await postTo(freeclimbRequest(leg(callId, 'inProgress'), '/status'));
      await postTo(freeclimbRequest(leg(callId, 'completed', { callDuration: 10 }), '/status'));
    }
    // A lone surrogate in the call id: PostgreSQL keeps U+FFFD, and the hash must cover what it keeps.
    await postTo(freeclimbRequest(`{"accountId":"${ACC}","callId":"CA\\ud800x","callStatus":"ringing","direction":"inbound","from":"+13125550147","to":"+13125550100","parentCallId":null,"requestType":"inboundCall"}`, '/voice'));
    const cp = await s.app.inject({ method: 'POST', url: '/v1/admin/checkpoints', headers: auth });
    expect(cp.statusCode).toBe(201);
    expect(cp.json()).toMatchObject({ seq: 1, headCount: legs.length + 1, streamCount: legs.length + 1, signature: expect.any(String) });
    // Counted and timed in /metrics, so that an operator (and the tee bench) can see when one ran.
    const metrics = (await s.app.inject({ method: 'GET', url: '/metrics', headers: auth })).body;
    expect(metrics).toContain('ledger_audit_checkpoints_total 1\n');
    expect(metrics).toContain(`ledger_audit_checkpoint_heads ${legs.length + 1}\n`);
    expect(metrics).toContain('ledger_audit_checkpoint_seconds_count 1\n');
  });
  afterAll(async () => s.close());

  it('a call id with a lone surrogate is stored with U+FFFD and its chain verifies', async () => {
    const rows = await sql<{ stream_name: string }>`SELECT stream_name FROM streams WHERE stream_name LIKE 'callLeg-freeclimb:CA%x'`.execute(s.db.db);
    expect(rows.rows.map((r) => r.stream_name)).toEqual(['callLeg-freeclimb:CA\uFFFDx']);
    const report = await verifyS();
    expect(report).toMatchObject({ valid: true, broken: [], checkpoints: { checked: 1, signed: 1, signaturesChecked: true, problems: [] } });
  });

  it('the offline verifier passes an intact export and catches an edited one', async () => {
    const lines = await exportS();
    expect(JSON.parse(lines[0]!)).toMatchObject({ kind: 'header', publicKey: publicPem });
    // What the chain hashes of a signature header is its sha256: the export never carries a signature.
    const stored = await sql<{ sig: string }>`SELECT headers->>'freeclimb-signature' AS sig FROM webhook_receipts`.execute(s.db.db);
    expect(stored.rows.length).toBeGreaterThan(0);
    for (const { sig } of stored.rows) expect(lines.join('\n')).not.toContain(sig.split('v1=')[1]!);
    const intact = await verifyAuditExport(lines, { publicKey: publicPem });
    expect(intact).toMatchObject({ valid: true, broken: [], publicKeySource: 'argument', checkpoints: { checked: 1, signed: 1, problems: [] } });
    expect(intact.eventsChecked).toBe(Number((await sql<{ n: string }>`SELECT count(*) AS n FROM events`.execute(s.db.db)).rows[0]!.n));

    // The CLI (npm run verify) on files: 0 for the intact export, 1 for an edited one, 2 for a usage error.
    const dir = mkdtempSync(join(tmpdir(), 'audit-'));
    writeFileSync(join(dir, 'audit.ndjson'), `${lines.join('\n')}\n`);
    writeFileSync(join(dir, 'key.pem'), publicPem);
    const out: string[] = [];
    expect(await runVerifyCli([join(dir, 'audit.ndjson'), '--public-key', join(dir, 'key.pem')], (x) => out.push(x))).toBe(0);
    expect(JSON.parse(out[0]!)).toMatchObject({ valid: true, publicKeySource: 'argument' });
    expect(await runVerifyCli(['--public-key'], () => undefined)).toBe(2);

    // The same export read with the key inside it verifies too, and says that this proves nothing.
    expect((await verifyAuditExport(lines)).notes.join(' ')).toContain('proves nothing');

    // An edited event: its chain breaks.
    const edited = lines.map((l) => {
      const o = JSON.parse(l);
      return o.kind === 'event' && o.streamName === streamOf('CA-own-ok') && o.streamVersion === 2 ? JSON.stringify({ ...o, data: { ...o.data, forged: true } }) : l;
    });
    expect(edited).not.toEqual(lines);
    writeFileSync(join(dir, 'edited.ndjson'), `${edited.join('\n')}\n`);
    expect(await runVerifyCli([join(dir, 'edited.ndjson'), '--public-key', publicPem], () => undefined)).toBe(1);
    const r1 = await verifyAuditExport(edited, { publicKey: publicPem });
    expect(r1.valid).toBe(false);
    expect(r1.broken).toContainEqual(expect.objectContaining({ streamName: streamOf('CA-own-ok'), reason: expect.stringContaining('does not match its hash') }));

    // A whole leg left out of the export: the signed checkpoint still lists it.
    const withoutLeg = lines.filter((l) => !l.includes(`"streamName":"${streamOf('CA-own-leg')}"`));
    const r2 = await verifyAuditExport(withoutLeg, { publicKey: publicPem });
    expect(r2.broken).toContainEqual(expect.objectContaining({ streamName: streamOf('CA-own-leg'), reason: expect.stringContaining('no longer in the store') }));

    // A checkpoint re-signed with another key: the signature check against the real key fails.
    const other = generateKeyPairSync('ed25519');
    const forged = lines.map((l) => {
      if (!l.startsWith('{"kind":"checkpoint"')) return l;
      const c = JSON.parse(l);
      const { kind: _k, heads: _h, digest: _d, signature: _s, ...body } = c;
      return JSON.stringify({ ...c, signature: sign(null, Buffer.from(checkpointMessage(body), 'utf8'), other.privateKey).toString('base64') });
    });
    const r3 = await verifyAuditExport(forged, { publicKey: publicPem });
    expect(r3.checkpoints.problems).toEqual([{ seq: 1, reason: expect.stringContaining('signature does not verify') }]);
  });

  it('catches each owner attack: receipt verdict, address and stored signature, a deleted last event, a rewritten chain, a deleted leg, a forged checkpoint signature', async () => {
    const receiptOf = async (callId: string, version: number) =>
      (await sql<{ receipt_id: string }>`SELECT receipt_id::text FROM events WHERE stream_name = ${streamOf(callId)} AND stream_version = ${version}`.execute(s.db.db)).rows[0]!.receipt_id;

    await ownerDo(sql`UPDATE webhook_receipts SET signature_status = 'unverified' WHERE id = ${await receiptOf('CA-own-verdict', 2)}::bigint`);
    await ownerDo(sql`UPDATE webhook_receipts SET remote_addr = '203.0.113.66' WHERE id = ${await receiptOf('CA-own-addr', 1)}::bigint`);
    await ownerDo(sql`UPDATE webhook_receipts SET headers = jsonb_set(headers, '{freeclimb-signature}', '"t=1,v1=forged"') WHERE id = ${await receiptOf('CA-own-sig', 3)}::bigint`);
    // The last event of a stream: no later link is left to show the gap; the head row does.
    const lastVersion = (await sql<{ v: number }>`SELECT max(stream_version) AS v FROM events WHERE stream_name = ${streamOf('CA-own-last')}`.execute(s.db.db)).rows[0]!.v;
    await ownerDo(sql`DELETE FROM events WHERE stream_name = ${streamOf('CA-own-last')} AND stream_version = ${lastVersion}`);
    // An event edited and every hash after it recomputed, the head row included: the chain is consistent again.
    const store = new EventStoreRepository(s.db.db);
    const links = await store.readChainLinks({ streamNames: [streamOf('CA-own-rewrite')] });
    await ownerDo(sql`UPDATE events SET data = jsonb_set(data, '{forged}', 'true') WHERE stream_name = ${streamOf('CA-own-rewrite')} AND stream_version = 2`);
    const edited = await store.readChainLinks({ streamNames: [streamOf('CA-own-rewrite')] });
    let prev: Buffer | null = null;
    for (const l of edited) {
      const hash = computeEventHash(prev, l);
      await ownerDo(sql`UPDATE events SET prev_hash = ${prev}, hash = ${hash} WHERE global_position = ${l.position}::bigint`);
      prev = hash;
    }
    await ownerDo(sql`UPDATE streams SET last_hash = ${prev} WHERE stream_name = ${streamOf('CA-own-rewrite')}`);
    expect(prev!.equals(links.at(-1)!.hash)).toBe(false);
    // A whole leg: its events, its head row and its receipts.
    await ownerDo(sql`DELETE FROM events WHERE stream_name = ${streamOf('CA-own-leg')}`);
    await ownerDo(sql`DELETE FROM streams WHERE stream_name = ${streamOf('CA-own-leg')}`);

    const report = await verifyS();
    expect(report.valid).toBe(false);
    const reasons = (callId: string) => report.broken.filter((b: { callId: string }) => b.callId === callId).map((b: { reason: string }) => b.reason);
    expect(reasons('CA-own-verdict')).toEqual([expect.stringContaining('receipt metadata does not match its hash')]);
    expect(reasons('CA-own-addr')).toEqual([expect.stringContaining('receipt metadata does not match its hash')]);
    expect(reasons('CA-own-sig')).toEqual([expect.stringContaining('receipt metadata does not match its hash')]);
    expect(reasons('CA-own-last')).toEqual(expect.arrayContaining([expect.stringContaining(`records version ${lastVersion} but the chain ends at ${lastVersion - 1}`)]));
    expect(reasons('CA-own-rewrite')).toEqual([expect.stringContaining('differs from the one a signed checkpoint holds')]);
    expect(reasons('CA-own-leg')).toEqual([expect.stringContaining('no longer in the store')]);
    expect(reasons('CA-own-ok')).toEqual([]);
    expect(report.checkpoints.problems).toEqual([]);

    // A checkpoint whose signature was replaced does not verify with the configured key.
    const other = generateKeyPairSync('ed25519');
    await ownerDo(sql`UPDATE ledger_checkpoints SET signature = ${sign(null, Buffer.from('forged'), other.privateKey)} WHERE seq = 1`);
    expect((await verifyS()).checkpoints.problems).toEqual([{ seq: 1, reason: expect.stringContaining('signature does not verify') }]);
  });
});

describe('checkpoints without a signing key, taken periodically', () => {
  let u: TestApp;
  beforeAll(async () => {
    u = await startTestApp({ ...SECRETS, LEDGER_CHECKPOINT_INTERVAL_SEC: '1' });
  });
  afterAll(async () => u.close());

  it('are taken once events were appended, unsigned, and verify says that signatures were not checked', async () => {
    const count = async () => Number((await sql<{ n: string }>`SELECT count(*) AS n FROM ledger_checkpoints`.execute(u.db.db)).rows[0]!.n);
    const r = freeclimbRequest(leg('CA-periodic', 'ringing', { requestType: 'inboundCall' }), '/voice');
    expect((await u.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload })).statusCode).toBe(200);
    const deadline = Date.now() + 15_000;
    while ((await count()) === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    const rows = await sql<{ signature: Buffer | null; head_count: number }>`SELECT signature, head_count FROM ledger_checkpoints ORDER BY seq`.execute(u.db.db);
    expect(rows.rows[0]).toEqual({ signature: null, head_count: 1 });
    const report = (await u.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: { authorization: `Bearer ${API_KEY}` } })).json();
    expect(report).toMatchObject({ valid: true, checkpoints: { checked: rows.rows.length, signed: 0, unsigned: rows.rows.length, signaturesChecked: false, problems: [] } });
    const key = (await u.app.inject({ method: 'GET', url: '/v1/audit/public-key', headers: { authorization: `Bearer ${API_KEY}` } })).json();
    expect(key).toEqual({ publicKey: null, publicKeySha256: null });
  });
});
