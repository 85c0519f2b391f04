import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStoreRepository } from '@lib/event-store';
import { Projector } from '@lib/projections';
import { ExportCallsHandler } from '../../apps/ledger/src/export/export-calls.query.js';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, restcommRequest, type SignedRequest } from '../support/signing.js';

let t: TestApp;
const auth = { authorization: `Bearer ${API_KEY}` };
const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const ROOT = 'CA-root-0001';
const KID1 = 'CA-kid-0001';
const KID2 = 'CA-kid-0002';
const fc = (o: Record<string, unknown>) => JSON.stringify({ accountId: ACC, conferenceId: null, queueId: null, ...o });
const bodies = new Map<string, Buffer>();
let lastPosition = '0';

const post = async (r: SignedRequest) => {
  const res = await t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
  expect(res.statusCode).toBe(200);
  lastPosition = (res.json() as { position: string }).position ?? lastPosition;
  return r.payload;
};
const get = (url: string, headers: Record<string, string> = auth) => t.app.inject({ method: 'GET', url, headers });
const getJson = async <T = any>(url: string): Promise<T> => {
  const res = await get(url);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as T;
};

beforeAll(async () => {
  t = await startTestApp(SECRETS);
  const projector = t.app.get(Projector);
  // The in-process projector creates the read model in the background; its status lists it once it has.
  while ((await projector.status()).length === 0) await new Promise((r) => setTimeout(r, 20));

  // A tree: the root dials two children; the first answers and is recorded.
  await post(freeclimbRequest(fc({ requestType: 'inboundCall', callId: ROOT, parentCallId: null, from: '+13125550147', to: '+13125550100', callStatus: 'ringing', direction: 'inbound' })));
  await post(freeclimbRequest(fc({ requestType: 'outDialStart', callId: ROOT, dialCallId: KID1, parentCallId: null, from: '+13125550147', to: '+13125550100', callStatus: 'inProgress', direction: 'inbound' })));
  bodies.set(KID1, await post(freeclimbRequest(fc({ requestType: 'outDialConnect', callId: KID1, parentCallId: ROOT, from: '+13125550100', to: '+18475550163', callStatus: 'inProgress', direction: 'outboundDial' }))));
  await post(freeclimbRequest(fc({ requestType: 'callStatus', callId: KID1, parentCallId: ROOT, from: '+13125550100', to: '+18475550163', callStatus: 'completed', callEndedReason: 'farEndHangup', callDuration: '74', direction: 'outboundDial', recordingUrl: 'https://rec.example/RE1.wav', recordingId: 'RE1', recordingDurationSec: '70' })));
  await post(freeclimbRequest(fc({ requestType: 'outDialStart', callId: ROOT, dialCallId: KID2, parentCallId: null, from: '+13125550147', to: '+13125550100', callStatus: 'inProgress', direction: 'inbound' })));
  await post(freeclimbRequest(fc({ requestType: 'outDialConnect', callId: KID2, parentCallId: ROOT, from: '+13125550100', to: '+18475550999', callStatus: 'inProgress', direction: 'outboundDial' })));
  // Standalone legs, one with a caller name that needs CSV quoting.
  for (let i = 0; i < 5; i += 1) {
    await post(freeclimbRequest(fc({ requestType: 'inboundCall', callId: `CA-solo-${i}`, parentCallId: null, from: i === 0 ? '"Front desk", +1 (415) 555-0100' : `+1415555010${i}`, to: '+13125550100', callStatus: 'ringing', direction: 'inbound' })));
  }
  // The same call id at two providers.
  await post(freeclimbRequest(fc({ requestType: 'inboundCall', callId: 'CA-dup', parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound' })));
  await post(restcommRequest('CallSid=CA-dup&AccountSid=AC3400&From=%2B12125550177&To=%2B12125550100&CallStatus=ringing&Direction=inbound&ApiVersion=2012-04-24'));
  // The translators refuse bodies that are not UTF-8, so such a leg event can only be stored through the store itself
  // (as a future translator might): a Latin-1 byte in an otherwise ordinary body.
  const latin1 = Buffer.concat([Buffer.from('CallSid=CA-latin1&CallerName=Jos'), Buffer.from([0xe9])]);
  bodies.set('CA-latin1', latin1);
  const [outcome] = await t.app.get(EventStoreRepository).appendBatch([
    {
      receipt: {
        provider: 'twilio', body: latin1, bodySha256: createHash('sha256').update(latin1).digest(), contentType: 'application/x-www-form-urlencoded',
        path: 'status', query: '', headers: {}, remoteAddr: null, receivedAt: new Date(), source: 'import', signatureStatus: 'not-checked', signatureTimestamp: null,
      },
      events: [{ type: 'CallInitiated', legId: 'CA-latin1', accountId: 'AC1', parentLegId: null, occurredAt: null, providerSeq: null, party: null, data: { direction: 'inbound', from: 'José', to: '+2' } }],
    },
  ]);
  lastPosition = outcome!.position!;
  if (!(await projector.waitFor(lastPosition, 10_000))) throw new Error('projections did not catch up');
});
afterAll(async () => t.close());

describe('GET /v1/calls', () => {
  it('lists every leg newest first, and pages through them with the cursor without gaps or repeats', async () => {
    const all = await getJson(`/v1/calls?minPosition=${lastPosition}`);
    expect(all.nextCursor).toBeNull();
    expect(all.data).toHaveLength(11);
    const starts = all.data.map((l: any) => l.startedAt ?? '');
    expect(starts.filter(Boolean)).toEqual([...starts.filter(Boolean)].sort().reverse());
    const seen: string[] = [];
    let url = '/v1/calls?limit=3';
    for (;;) {
      const page = await getJson(url);
      expect(page.data.length).toBeLessThanOrEqual(3);
      seen.push(...page.data.map((l: any) => `${l.provider}:${l.callId}`));
      if (!page.nextCursor) break;
      url = `/v1/calls?limit=3&cursor=${encodeURIComponent(page.nextCursor)}`;
    }
    expect(seen).toEqual(all.data.map((l: any) => `${l.provider}:${l.callId}`));
  });

  it('filters by provider, status, direction, account, numbers (exact and prefix), roots, final and time', async () => {
    const ids = async (q: string) => (await getJson(`/v1/calls?${q}`)).data.map((l: any) => l.callId).sort();
    expect(await ids('provider=restcomm')).toEqual(['CA-dup']);
    expect(await ids('provider=twilio')).toEqual(['CA-latin1']);
    expect(await ids('direction=outbound-dial')).toEqual([KID1, KID2]);
    expect(await ids('status=completed')).toEqual([KID1]);
    expect(await ids('final=true')).toEqual([KID1]);
    expect(await ids(`to=${encodeURIComponent('+1847*')}`)).toEqual([KID1, KID2]);
    expect(await ids(`to=${encodeURIComponent('+18475550163')}`)).toEqual([KID1]);
    expect(await ids(`from=${encodeURIComponent('+1415555010*')}`)).toEqual(['CA-solo-1', 'CA-solo-2', 'CA-solo-3', 'CA-solo-4']);
    expect(await ids('rootOnly=true&provider=freeclimb')).toEqual(['CA-dup', ROOT, 'CA-solo-0', 'CA-solo-1', 'CA-solo-2', 'CA-solo-3', 'CA-solo-4'].sort());
    expect(await ids(`accountId=${ACC}&direction=outbound-dial`)).toEqual([KID1, KID2]);
    expect(await ids('since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00%2B01:00')).toEqual([]);
    expect((await ids('since=2000-01-01T00:00:00Z')).length).toBe(11);
  });

  it('counts every leg the filters select with ?withTotal=true, on every page, and the cursor still fits', async () => {
    const first = await getJson('/v1/calls?limit=2&withTotal=true&provider=freeclimb');
    const all = await getJson('/v1/calls?limit=1000&provider=freeclimb');
    expect(first.total).toBe(all.data.length);
    expect(first.data).toHaveLength(2);
    const next = await getJson(`/v1/calls?limit=2&provider=freeclimb&cursor=${encodeURIComponent(first.nextCursor)}&withTotal=true`);
    expect(next.total).toBe(all.data.length);
    expect(next.data[0].callId).toBe(all.data[2].callId);
    expect((await getJson('/v1/calls?withTotal=true&status=completed')).total).toBe(1);
    expect((await getJson('/v1/calls?provider=freeclimb')).total).toBeUndefined();
  });

  it('gives each listed leg the number of legs in its tree', async () => {
    const { data } = await getJson('/v1/calls?limit=1000');
    for (const leg of data) {
      const tree = await getJson(`/v1/calls/${encodeURIComponent(leg.callId)}/tree?provider=${leg.provider}`);
      const count = (n: { children: unknown[] }): number => 1 + n.children.reduce((s: number, c: any) => s + count(c), 0);
      expect(leg.treeLegs, leg.callId).toBe(count(tree));
    }
    expect(data.find((l: any) => l.callId === ROOT).treeLegs).toBeGreaterThan(1);
  });

  it('searches numbers by substring: numberContains on caller or callee, *…* and *… on one side, with exact totals and paging', async () => {
    const ids = async (q: string) => (await getJson(`/v1/calls?${q}`)).data.map((l: any) => l.callId).sort();
    // 0163 is only KID1's callee; 5550147 only the root's caller; 555010 is in callers (the solo legs, the children) and callees (the root, the solo legs, Restcomm's CA-dup).
    expect(await ids('numberContains=0163')).toEqual([KID1]);
    expect(await ids('numberContains=5550147')).toEqual([ROOT]);
    expect(await ids(`from=${encodeURIComponent('*5550147*')}`)).toEqual([ROOT]);
    expect(await ids(`to=${encodeURIComponent('*5550147*')}`)).toEqual([]);
    expect(await ids(`to=${encodeURIComponent('*0999')}`)).toEqual([KID2]);
    // Spaces and parentheses are literal characters of the stored caller name.
    expect(await ids(`numberContains=${encodeURIComponent('(415) 555')}`)).toEqual(['CA-solo-0']);
    const all = await getJson('/v1/calls?numberContains=555010&withTotal=true');
    const seen: string[] = [];
    for (let cursor: string | null = ''; cursor !== null; ) {
      const page: any = await getJson(`/v1/calls?numberContains=555010&withTotal=true&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.total).toBe(all.total);
      seen.push(...page.data.map((l: any) => l.callId));
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(all.data.map((l: any) => l.callId));
    expect(seen.sort()).toEqual(['CA-dup', ROOT, KID1, KID2, 'CA-solo-0', 'CA-solo-1', 'CA-solo-2', 'CA-solo-3', 'CA-solo-4'].sort());
    // A cursor of one search does not continue another.
    const first = await getJson('/v1/calls?numberContains=555010&limit=2');
    expect((await get(`/v1/calls?numberContains=555014&limit=2&cursor=${encodeURIComponent(first.nextCursor)}`)).statusCode).toBe(400);
  });

  it('answers 400 naming the parameter for a bad value, an unknown parameter or a foreign cursor', async () => {
    const page = await getJson('/v1/calls?limit=2&provider=freeclimb');
    const cases: [string, string][] = [
      ['limit=-1', 'limit'],
      ['limit=1001', 'limit'],
      ['status=sleeping', 'status'],
      ['since=yesterday', 'since'],
      ['rootOnly=yes', 'rootOnly'],
      ['colour=blue', 'colour'],
      ['cursor=garbage', 'cursor'],
      [`provider=jambonz&limit=2&cursor=${encodeURIComponent(page.nextCursor)}`, 'cursor'],
      [`limit=2&cursor=${encodeURIComponent(page.nextCursor)}`, 'cursor'],
      ['minPosition=abc', 'minPosition'],
      ['numberContains=55', 'numberContains'],
      // 3 UTF-16 units, 2 characters.
      [`numberContains=${encodeURIComponent('📞0')}`, 'numberContains'],
      [`from=${encodeURIComponent('*📞0')}`, 'from'],
      [`from=${encodeURIComponent('*55*')}`, 'from'],
      [`to=${encodeURIComponent('+1*555*0')}`, 'to'],
    ];
    for (const [q, name] of cases) {
      const res = await get(`/v1/calls?${q}`);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().error.message, q).toContain(name);
      expect(res.json().error.code).toMatch(/^QUERY\./);
    }
    // The same filters with another page size may continue.
    expect((await get(`/v1/calls?limit=5&provider=freeclimb&cursor=${encodeURIComponent(page.nextCursor)}`)).statusCode).toBe(200);
  });

  it('refuses every query route without the API key', async () => {
    for (const url of ['/v1/calls', `/v1/calls/${ROOT}`, `/v1/calls/${ROOT}/tree`, `/v1/calls/${ROOT}/events`, '/v1/recordings', '/v1/export/calls?format=csv', '/v1/audit/verify']) {
      const res = await get(url, {});
      expect(res.statusCode, url).toBe(401);
      expect(res.json().error.code).toBe('AUTH.API_KEY_INVALID');
    }
  });
});

describe('GET /v1/calls/{callId}', () => {
  it('answers one leg with its recordings and duration sources', async () => {
    const leg = await getJson(`/v1/calls/${KID1}`);
    expect(leg).toMatchObject({
      provider: 'freeclimb', accountId: ACC, callId: KID1, parentCallId: ROOT, rootCallId: ROOT, depth: 1, direction: 'outbound-dial',
      status: 'completed', talkDurationSec: 74, durationSource: { talk: 'provider' }, final: true,
      recordings: [{ recordingId: 'RE1', callId: KID1, rootCallId: ROOT, provider: 'freeclimb', url: 'https://rec.example/RE1.wav', durationSec: 70 }],
    });
    expect(leg.lastPosition).toMatch(/^\d+$/);
  });

  it('answers 404 for an unknown id, and 409 listing the providers for a shared one unless ?provider= chooses', async () => {
    const missing = await get('/v1/calls/CA-nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('CALL.NOT_FOUND');
    const ambiguous = await get('/v1/calls/CA-dup');
    expect(ambiguous.statusCode).toBe(409);
    expect(ambiguous.json().error).toMatchObject({ code: 'CALL.AMBIGUOUS', details: { providers: ['freeclimb', 'restcomm'] } });
    expect(ambiguous.json().error.message).toContain('freeclimb, restcomm');
    expect((await getJson('/v1/calls/CA-dup?provider=restcomm')).provider).toBe('restcomm');
    expect((await get('/v1/calls/CA-dup?provider=jambonz')).statusCode).toBe(404);
  });
});

describe('GET /v1/calls/{callId}/tree', () => {
  it('answers the whole tree from its root, whichever leg is asked for, children by start time', async () => {
    for (const id of [ROOT, KID2]) {
      const tree = await getJson(`/v1/calls/${id}/tree`);
      expect(tree.callId).toBe(ROOT);
      expect(tree.children.map((c: any) => c.callId)).toEqual([KID1, KID2]);
      expect(tree.children[0]).toMatchObject({ depth: 1, children: [], recordings: [{ recordingId: 'RE1' }] });
    }
  });
});

describe('GET /v1/calls/{callId}/events', () => {
  it("answers the leg's events oldest first with the verbatim receipt and a valid chain", async () => {
    const res = await getJson(`/v1/calls/${KID1}/events`);
    expect(res.chain).toEqual({ valid: true });
    expect(res.data.map((e: any) => e.streamVersion)).toEqual(res.data.map((_: unknown, i: number) => i + 1));
    const first = res.data.find((e: any) => e.receipt.body === bodies.get(KID1)!.toString('utf8'));
    expect(first).toMatchObject({ callId: KID1, receipt: { bodyEncoding: 'utf8', contentType: 'application/json', signature: { status: 'verified' } } });
    expect(first.receipt.signature.header).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(first.chainVerified).toBe(true);
    // The headers kept for the audit: the sender's, never credentials.
    expect(first.receipt.headers).toMatchObject({ 'content-type': 'application/json', 'freeclimb-signature': first.receipt.signature.header });
    expect(Object.keys(first.receipt.headers)).not.toContain('authorization');
  });

  it('gives every leg of the tree in position order with ?tree=true', async () => {
    const res = await getJson(`/v1/calls/${KID2}/events?tree=true`);
    expect(new Set(res.data.map((e: any) => e.callId))).toEqual(new Set([ROOT, KID1, KID2]));
    const positions = res.data.map((e: any) => BigInt(e.position));
    expect(positions).toEqual([...positions].sort((a: bigint, b: bigint) => (a < b ? -1 : 1)));
    expect(res.chain.valid).toBe(true);
  });

  it("gives only the chosen provider's events for a call id two providers use, 409 without ?provider=, 404 for an unknown id", async () => {
    const restcomm = await getJson('/v1/calls/CA-dup/events?provider=restcomm');
    const freeclimb = await getJson('/v1/calls/CA-dup/events?provider=freeclimb');
    expect(restcomm.data.length).toBeGreaterThan(0);
    expect(freeclimb.data.length).toBeGreaterThan(0);
    expect(restcomm.data.every((e: any) => e.receipt.body.includes('AccountSid=AC3400'))).toBe(true);
    expect(freeclimb.data.every((e: any) => e.receipt.contentType === 'application/json')).toBe(true);
    expect((await get('/v1/calls/CA-dup/events')).statusCode).toBe(409);
    expect((await get('/v1/calls/CA-nobody/events')).statusCode).toBe(404);
    expect((await get('/v1/calls/CA-nobody/events?provider=twilio')).statusCode).toBe(404);
  });

  it('answers a body that is not UTF-8 as base64, byte for byte', async () => {
    const res = await getJson('/v1/calls/CA-latin1/events');
    expect(res.data[0].receipt.bodyEncoding).toBe('base64');
    expect(Buffer.from(res.data[0].receipt.body, 'base64')).toEqual(bodies.get('CA-latin1'));
  });
});

describe('GET /v1/recordings', () => {
  it("lists recordings, filtered by a leg's tree, provider and account", async () => {
    const all = await getJson('/v1/recordings');
    expect(all).toEqual({ data: [{ recordingId: 'RE1', callId: KID1, rootCallId: ROOT, provider: 'freeclimb', url: 'https://rec.example/RE1.wav', durationSec: 70, scope: 'call', createdAt: expect.any(String) }], nextCursor: null });
    expect((await getJson(`/v1/recordings?callId=${KID2}`)).data).toHaveLength(1);
    expect((await getJson(`/v1/recordings?callId=CA-solo-1`)).data).toHaveLength(0);
    expect((await getJson(`/v1/recordings?provider=restcomm`)).data).toHaveLength(0);
    expect((await getJson(`/v1/recordings?accountId=${ACC}`)).data).toHaveLength(1);
    expect((await getJson(`/v1/recordings?until=2000-01-01T00:00:00Z`)).data).toHaveLength(0);
    const bad = await get(`/v1/recordings?cursor=${encodeURIComponent((await getJson('/v1/calls?limit=1')).nextCursor)}`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('cursor');
  });
});

describe('GET /v1/export/calls', () => {
  it('streams every matching leg across several internal batches, as NDJSON and as CSV', async () => {
    t.app.get(ExportCallsHandler).batchSize = 3;
    // The export has every field of a leg; the list adds the size of the leg's tree.
    const list = (await getJson('/v1/calls?limit=1000')).data.map(({ treeLegs: _n, ...leg }: { treeLegs: number }) => leg);
    const nd = await get('/v1/export/calls?format=ndjson');
    expect(nd.statusCode).toBe(200);
    expect(nd.headers['content-type']).toContain('application/x-ndjson');
    expect(nd.body.trimEnd().split('\n').map((l) => JSON.parse(l))).toEqual(list);

    const csv = await get('/v1/export/calls?format=csv&provider=freeclimb');
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    const lines = csv.body.split('\r\n');
    expect(lines[0]!.startsWith('provider,accountId,callId,')).toBe(true);
    expect(lines.at(-1)).toBe('');
    expect(lines.length - 2).toBe(list.filter((l: any) => l.provider === 'freeclimb').length);
    expect(csv.body).toContain(',"""Front desk"", +1 (415) 555-0100",');
  });

  it('needs a known format', async () => {
    const res = await get('/v1/export/calls');
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toContain('format');
  });
});

describe('GET /v1/audit/verify', () => {
  it('recomputes the chains, then reports the leg whose stored event was altered', async () => {
    const ok = await getJson('/v1/audit/verify');
    expect(ok).toMatchObject({ valid: true, broken: [] });
    expect(ok.streamsChecked).toBeGreaterThanOrEqual(10);
    const one = await getJson(`/v1/audit/verify?callId=${KID1}`);
    expect(one.streamsChecked).toBe(1);
    expect(one.eventsChecked).toBe((await getJson(`/v1/calls/${KID1}/events`)).data.length);
    expect((await getJson('/v1/audit/verify?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z')).streamsChecked).toBe(0);

    // Tampering as the database owner, who can switch the immutability triggers off.
    await sql`ALTER TABLE events DISABLE TRIGGER USER`.execute(t.db.db);
    await sql`UPDATE events SET data = data || '{"outcome":"busy"}' WHERE stream_name = ${`callLeg-freeclimb:${KID1}`} AND type = 'CallCompleted'`.execute(t.db.db);
    await sql`ALTER TABLE events ENABLE TRIGGER USER`.execute(t.db.db);
    const bad = await getJson('/v1/audit/verify');
    expect(bad.valid).toBe(false);
    expect(bad.broken).toEqual([expect.objectContaining({ callId: KID1, provider: 'freeclimb', reason: expect.stringContaining('does not match its hash') })]);
    expect((await getJson(`/v1/calls/${KID1}/events`)).chain.valid).toBe(false);
  });
});

describe('before the projector has created the read models', () => {
  it('answers 503 with Retry-After instead of an internal error', async () => {
    const cold = await startTestApp({ LEDGER_PROJECTOR: 'off' });
    try {
      for (const url of ['/v1/calls', '/v1/calls/CA1', '/v1/recordings']) {
        const res = await cold.app.inject({ method: 'GET', url, headers: auth });
        expect(res.statusCode, url).toBe(503);
        expect(res.headers['retry-after']).toBe('1');
        expect(res.json().error.code).toBe('SERVICE.UNAVAILABLE');
      }
    } finally {
      await cold.close();
    }
  });
});
