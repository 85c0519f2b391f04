import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROVIDERS, type Provider } from '@lib/ledger';
import { computeTwilioSignature } from '@lib/providers';
import { API_KEY, SECRETS, readyProjector, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, jambonzRequest, restcommRequest, type SignedRequest } from '../support/signing.js';

/**
 * The corpus of published provider payloads (test/fixtures/providers/<provider>/<name>.{json,form}, each with a
 * <name>.meta.json naming its source, whether it was captured from real traffic or composed from the provider's
 * documentation or code, and what it means). Every body goes byte for byte through the real service, signed as its
 * provider signs, and the receipt's events and the resulting legs must be what the sidecar says.
 */
interface FixtureMeta {
  kind: 'captured' | 'composed';
  source: string;
  notes: string;
  meaning: string;
  path: string;
  expect: { events: string[]; legs: Record<string, Record<string, unknown>> };
}
interface Fixture {
  provider: Provider;
  name: string;
  body: Buffer;
  meta: FixtureMeta;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'providers');

const loadFixtures = (): Fixture[] =>
  PROVIDERS.flatMap((provider) =>
    readdirSync(join(ROOT, provider))
      .filter((f) => f.endsWith('.meta.json'))
      .sort()
      .map((metaFile) => {
        const name = metaFile.slice(0, -'.meta.json'.length);
        const bodyFile = readdirSync(join(ROOT, provider)).find((f) => f === `${name}.json` || f === `${name}.form`);
        if (!bodyFile) throw new Error(`${provider}/${name}: no body beside the sidecar`);
        return {
          provider,
          name,
          body: readFileSync(join(ROOT, provider, bodyFile)),
          meta: JSON.parse(readFileSync(join(ROOT, provider, metaFile), 'utf8')) as FixtureMeta,
        };
      }),
  );

/** Twilio signs the URL it called and the form fields as sent (the same pairs the adapter reads). */
const twilioRequest = (body: Buffer, path: string): SignedRequest => {
  const url = `/v1/webhooks/twilio${path}`;
  const pairs = [...new URLSearchParams(body.toString('utf8')).entries()];
  return {
    url,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': computeTwilioSignature(SECRETS.TWILIO_AUTH_TOKEN, `https://ledger.example.com${url}`, pairs),
    },
    payload: body,
  };
};

const signed = (f: Fixture): SignedRequest => {
  switch (f.provider) {
    case 'freeclimb':
      return freeclimbRequest(f.body, f.meta.path);
    case 'jambonz':
      return jambonzRequest(f.body, f.meta.path);
    case 'twilio':
      return twilioRequest(f.body, f.meta.path);
    case 'restcomm':
      return restcommRequest(f.body.toString('utf8'), f.meta.path);
  }
};

const fixtures = loadFixtures();
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp(SECRETS);
  await readyProjector(t);
});
afterAll(async () => t?.close());

describe('provider fixture corpus', () => {
  it('holds captured and composed bodies of every provider, each with its source and meaning', () => {
    for (const provider of PROVIDERS) expect(fixtures.some((f) => f.provider === provider), provider).toBe(true);
    expect(fixtures.filter((f) => f.meta.kind === 'captured').length).toBeGreaterThanOrEqual(6);
    for (const f of fixtures) {
      expect(['captured', 'composed'], `${f.provider}/${f.name}`).toContain(f.meta.kind);
      expect(f.meta.source, `${f.provider}/${f.name}`).toMatch(/\S/);
      expect(f.meta.meaning, `${f.provider}/${f.name}`).toMatch(/\S/);
      expect(Object.keys(f.meta.expect.legs).length, `${f.provider}/${f.name}`).toBeGreaterThan(0);
    }
  });

  it.each(fixtures.map((f) => [`${f.provider}/${f.name} (${f.meta.kind})`, f] as const))('%s: receipt events and legs', async (_label, f) => {
    const r = signed(f);
    const res = await t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
    expect(res.statusCode, res.body).toBe(200);
    const receipt = res.json() as { receiptId: string; position: string | null; events: string[] };
    expect(receipt.events).toEqual(f.meta.expect.events);
    expect(receipt.position).not.toBeNull();

    // Stored byte for byte.
    const events = await t.app.inject({
      method: 'GET',
      url: `/v1/calls/${encodeURIComponent(Object.keys(f.meta.expect.legs)[0]!)}/events?provider=${f.provider}&minPosition=${receipt.position}`,
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    expect(events.statusCode, events.body).toBe(200);
    const stored = (events.json() as { data: { receipt: { id: string; body: string } }[] }).data.find((e) => e.receipt.id === receipt.receiptId);
    expect(stored?.receipt.body).toBe(f.body.toString('utf8'));

    for (const [callId, expected] of Object.entries(f.meta.expect.legs)) {
      const leg = await t.app.inject({
        method: 'GET',
        url: `/v1/calls/${encodeURIComponent(callId)}?provider=${f.provider}&minPosition=${receipt.position}`,
        headers: { authorization: `Bearer ${API_KEY}` },
      });
      expect(leg.statusCode, leg.body).toBe(200);
      expect(leg.json(), `${f.provider}/${f.name} leg ${callId}`).toMatchObject(expected);
    }
  });

  it('the KPIs count the Twilio machine answers the corpus holds (AnsweredBy on the final callback)', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/analytics/summary?provider=twilio', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(res.statusCode, res.body).toBe(200);
    const { totals } = res.json() as { totals: { answered: number; machineAnswered: number; machineRate: number | null } };
    // status-completed-final-only-2018 (machine_end_silence) is the one answered Twilio leg a machine took; the
    // async AMD leg (machine_end_beep) has not ended, so it is no attempt yet.
    expect(totals.machineAnswered).toBe(1);
    expect(totals.machineRate).toBeCloseTo(1 / totals.answered, 12);
  });

  it('backfill: imported today, a 2018 call keeps its provider clocks and lands in its own hour, not the import\'s', async () => {
    // Restcomm CallTimestamp (the call's creation) and a Twilio final callback alone (start = end - CallDuration).
    // The bodies differ from the fixtures by their call ids only, so they are new deliveries, not duplicates.
    const rc = fixtures.find((f) => f.provider === 'restcomm' && f.name === 'dial-action-busy-486')!;
    const tw = fixtures.find((f) => f.provider === 'twilio' && f.name === 'status-completed-final-only-2018')!;
    const now = new Date().toISOString();
    const lines = [
      { provider: 'restcomm', receivedAt: now, contentType: 'application/x-www-form-urlencoded', path: '/dial-action', body: rc.body.toString('utf8').replaceAll('CA5a6782f2', 'CA5a6782ff') },
      { provider: 'twilio', receivedAt: now, contentType: 'application/x-www-form-urlencoded', path: '/status', body: tw.body.toString('utf8').replaceAll('CA3333cccc', 'CA3333ffff') },
    ];
    const auth = { authorization: `Bearer ${API_KEY}` };
    const res = await t.app.inject({ method: 'POST', url: '/v1/import', headers: { 'content-type': 'application/x-ndjson', ...auth }, payload: lines.map((l) => JSON.stringify(l)).join('\n') + '\n' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ imported: 2, duplicates: 0, rejected: [] });
    const leg = async (provider: string, id: string) => {
      let body: Record<string, unknown> = {};
      await expect
        .poll(async () => {
          const r = await t.app.inject({ method: 'GET', url: `/v1/calls/${encodeURIComponent(id)}?provider=${provider}`, headers: auth });
          body = r.statusCode === 200 ? (r.json() as Record<string, unknown>) : {};
          return r.statusCode;
        }, { timeout: 10_000 })
        .toBe(200);
      return body;
    };
    expect(await leg('restcomm', 'IDe63fbd64e6e52e61d091a29ebda913cd-CA5a6782ff38f8f435013bdb74e077ea2e')).toMatchObject({
      startedAt: '2018-01-05T14:02:10.118Z', timeSource: { started: 'provider' },
    });
    expect(await leg('twilio', 'CA3333ffff4444dddd5555eeee6666ffff')).toMatchObject({
      startedAt: '2018-03-05T14:02:33.000Z', endedAt: '2018-03-05T14:03:10.000Z', timeSource: { started: 'derived', ended: 'provider' },
    });
    const hours = await t.app.inject({ method: 'GET', url: '/v1/analytics/summary?provider=twilio&groupBy=hour&since=2018-03-05T00:00:00Z&until=2018-03-06T00:00:00Z', headers: auth });
    expect(hours.statusCode, hours.body).toBe(200);
    const groups = (hours.json() as { groups: { key: string; legs: number }[] }).groups;
    expect(groups.find((g) => g.key.startsWith('2018-03-05T14'))?.legs).toBe(2);
  });
});
