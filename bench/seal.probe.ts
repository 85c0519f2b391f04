/**
 * `node dist/bench/seal.probe.js` (after `nest build ledger`): the Node CPU an append spends per event building what
 * is stored and hashed, chain rule 3 (personal fields sealed: a random nonce and a commitment each, issue 16) beside
 * rule 2 (the same texts, values hashed in clear), in alternating rounds on the same events so that a shared machine's
 * noise falls on both alike. Prints µs per event for each rule and their ratio.
 */
import { canonicalJson, chainContentOfText, eventMetadata, eventRowTexts, hashedMetaOf, receiptMetaText, type ReceiptInput } from '../libs/event-store/src/index.js';
import { newEvent, type TranslatedEvent } from '../libs/ledger/src/index.js';

const N = Number(process.env.EVENTS ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 6);
const receipt: ReceiptInput = {
  provider: 'twilio', body: Buffer.alloc(0), bodySha256: Buffer.alloc(32), contentType: 'application/x-www-form-urlencoded', path: 'status',
  query: '', headers: { 'x-twilio-signature': 'abc' }, remoteAddr: '127.0.0.1', receivedAt: new Date(), source: 'live', signatureStatus: 'verified', signatureTimestamp: null,
};
const meta = hashedMetaOf(receipt);
const events: TranslatedEvent[] = Array.from({ length: N }, (_, i) => {
  const party = { direction: 'inbound' as const, from: `+1312555${String(i).padStart(4, '0')}`, to: '+13125550100' };
  return i % 3 === 0
    ? newEvent('CallInitiated', `CA${i}`, { direction: 'inbound', from: party.from, to: party.to }, { party, accountId: 'AC1' })
    : newEvent('CallRinging', `CA${i}`, { sipStatus: 180 }, { party, accountId: 'AC1' });
});
const link = (i: number) => ({ eventId: `00000000-0000-8000-8000-${String(i).padStart(12, '0')}`, streamName: `callLeg-twilio:CA${i}`, schemaVersion: 1, bodySha256: '00'.repeat(32), receivedAt: receipt.receivedAt.toISOString(), occurredAt: null });

const rule2 = () => {
  const receiptText = receiptMetaText(meta);
  events.forEach((e, i) => {
    const l = link(i);
    chainContentOfText({ chainVersion: 2, ...l, type: e.type, dataText: canonicalJson(e.data), metadataText: canonicalJson(eventMetadata(receipt, e, 1)), receiptText });
  });
};
const rule3 = () => events.forEach((e, i) => eventRowTexts(receipt, e, 1, link(i), meta));

const time = (f: () => void) => {
  const t0 = process.cpuUsage();
  f();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / N;
};
rule2();
rule3();
const r2: number[] = [];
const r3: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  r2.push(time(rule2));
  r3.push(time(rule3));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(JSON.stringify({ events: N, rounds: ROUNDS, rule2UsPerEvent: +median(r2).toFixed(2), rule3UsPerEvent: +median(r3).toFixed(2), ratio: +(median(r3) / median(r2)).toFixed(2) }));
