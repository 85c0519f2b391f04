import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeTwilioSignature } from '@lib/providers';
import { twilioRequest } from '../support/signing.js';
import { SECRETS } from '../support/test-app.js';
import { startStubApp, type StubApp } from '../support/stub-app.js';
import { projectionsCaughtUp, signIn, startConsoleRig, type ConsoleRig } from './support/console-browser.js';

/**
 * A teed call in the console (tee mode, README "Tee mode"): the app's answers sit in the ladder next to the
 * deliveries they answered, the body viewer shows an answer as kept (status, latency, the body verbatim after
 * redaction, what was redacted), and the tree shows per leg the instructions, the dial requests and discrepancies.
 */
const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const P = 'CA-tee-console-parent';
// A real TwiML <Dial> shape (docs/app-answers.md): two numbers and a SIP target with a credential.
const DIAL =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Say>Connecting you</Say><Dial timeout="10" action="/tw/dial-done" callerId="+15550001111">' +
  '<Number>+15551110001</Number><Number>+15551110002</Number><Sip username="alice" password="s3cret-sip">sip:alice@pbx.example.com</Sip></Dial></Response>';
const HANGUP = '<Response><Hangup/></Response>';

type Ev = { position: string; callId: string; type: string; answers?: string | null; receipt: { id: string; body: string } };
type Tree = {
  callId: string;
  children: Tree[];
  intent: { answers: { position: string; instructions: string[] }[]; discrepancies: { kind: string; message: string }[]; dials: { targets: { value: string; childLegIds: string[] }[] }[] } | null;
};

let stub: StubApp;
let rig: ConsoleRig;
let tree: Tree;
let events: Ev[];

const child = (sid: string, to: string, status: string, at: string, seq: number) => ({
  AccountSid: ACC, CallSid: sid, ParentCallSid: P, CallStatus: status, Direction: 'outbound-dial', From: '+15550001111', To: to,
  CallbackSource: 'call-progress-events', SequenceNumber: String(seq), Timestamp: at, ApiVersion: '2010-04-01',
});

const post = async (url: string, headers: Record<string, string>, body: Buffer) => {
  const res = await fetch(rig.base + url, { method: 'POST', headers, body });
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return res.text();
};
/** Through the tee, as Twilio would call it: signed for the ledger's own public URL. */
const teeTwilio = (params: Record<string, string>, path: string) => {
  const url = `/v1/tee/twilio${path}`;
  const req = twilioRequest(params, path);
  return post(url, { ...req.headers, 'x-twilio-signature': computeTwilioSignature(SECRETS.TWILIO_AUTH_TOKEN, `https://ledger.example.com${url}`, Object.entries(params)) }, req.payload);
};

beforeAll(async () => {
  stub = await startStubApp((r) => ({ status: 200, headers: { 'content-type': 'text/xml' }, body: r.url.startsWith('/tw/voice') ? DIAL : HANGUP }));
  rig = await startConsoleRig({ LEDGER_TEE_TWILIO_URL: `${stub.base}/tw` });
  const parent = { AccountSid: ACC, CallSid: P, CallStatus: 'ringing', Direction: 'inbound', From: '+15550009999', To: '+15550001111', ApiVersion: '2010-04-01' };
  expect(await teeTwilio(parent, '/voice')).toBe(DIAL);
  // The platform's side: the first number rings 40 s (asked: 10), the second is never dialled, a leg nobody asked for appears.
  for (const p of [
    child('CA-tee-c1', '+15551110001', 'initiated', 'Tue, 01 Nov 2016 01:59:00 +0000', 0),
    child('CA-tee-c1', '+15551110001', 'ringing', 'Tue, 01 Nov 2016 01:59:00 +0000', 1),
    child('CA-tee-c1', '+15551110001', 'no-answer', 'Tue, 01 Nov 2016 01:59:40 +0000', 2),
    child('CA-tee-c3', '+15557770000', 'initiated', 'Tue, 01 Nov 2016 01:59:01 +0000', 0),
    child('CA-tee-c3', '+15557770000', 'busy', 'Tue, 01 Nov 2016 01:59:02 +0000', 1),
  ]) {
    const r = twilioRequest(p, '/status');
    await post(r.url, r.headers, r.payload);
  }
  expect(await teeTwilio({ ...parent, CallStatus: 'in-progress', DialCallSid: 'CA-tee-c3', DialCallStatus: 'completed', DialCallDuration: '5' }, '/dial-done')).toBe(HANGUP);
  // The answers are stored after the provider has them: wait for both as a condition.
  const deadline = Date.now() + 30_000;
  for (;;) {
    await projectionsCaughtUp(rig);
    tree = await rig.api<Tree>(`/v1/calls/${P}/tree`);
    if (tree.intent && tree.intent.answers.length === 2 && tree.children.length === 2) break;
    if (Date.now() > deadline) throw new Error(`the answers were not recorded: ${JSON.stringify(tree.intent)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  events = (await rig.api<{ data: Ev[] }>(`/v1/calls/${P}/events?tree=true`)).data;
});
afterAll(async () => {
  await rig?.close();
  await stub?.close();
});

const openCall = async () => {
  const page = await rig.newPage();
  await signIn(page, rig.base, `/console/calls/${P}?provider=twilio`);
  await page.getByTestId('ladder').waitFor();
  return page;
};

describe('a teed call in the console', () => {
  it('draws each app answer as its own mark in the ladder, tied to the delivery it answered', async () => {
    const page = await openCall();
    const answers = events.filter((e) => e.type === 'AppAnswered');
    expect(answers).toHaveLength(2);
    // The position of the first event of the delivery each answer answered (its receipt, on the same leg).
    const expected = answers
      .map((a) => [a.position, events.find((e) => e.callId === a.callId && e.receipt.id === a.answers)!.position])
      .sort();
    const shown = await page.locator('.mark.answer').evaluateAll((els) => els.map((el) => [el.getAttribute('data-position'), el.getAttribute('data-answer-to')]));
    expect(shown.sort()).toEqual(expected);
    // Next to it: on the receive clock an answer comes after the delivery it answered, never before.
    const x = async (position: string) => Number(await page.locator(`.mark[data-position="${position}"]`).getAttribute('data-x'));
    for (const [answer, delivery] of expected) expect(await x(answer!)).toBeGreaterThanOrEqual(await x(delivery!));
    // Deliveries and answers together: one mark per receipt per leg.
    expect(await page.locator('.mark').count()).toBe(new Set(events.map((e) => `${e.callId}|${e.receipt.id}`)).size);
    expect(rig.errors).toEqual([]);
  });

  it('opens an answer from the keyboard: its status and latency, the body verbatim after redaction, and the redaction note', async () => {
    const page = await openCall();
    const voice = events.find((e) => e.type === 'AppAnswered' && (e.receipt.body.includes('"path":"voice"')))!;
    const envelope = JSON.parse(voice.receipt.body) as { status: number; durationMs: number; body: string; redactions: { path: string }[] };
    expect(envelope.redactions).toHaveLength(1);
    await page.locator(`.mark.answer[data-position="${voice.position}"]`).focus();
    await page.keyboard.press('Enter');
    const viewer = page.getByTestId('answer-viewer');
    await viewer.waitFor();
    expect(await viewer.getByTestId('answer-status').textContent()).toContain(`HTTP ${envelope.status} in ${envelope.durationMs} ms`);
    expect(await viewer.getByTestId('answer-raw').textContent()).toBe(envelope.body);
    expect(envelope.body).not.toContain('s3cret-sip');
    const note = (await viewer.getByTestId('redaction').textContent())!;
    expect(note).toContain('1 credential redacted before storage');
    expect(note).toContain(envelope.redactions[0]!.path);
    expect(await viewer.getByTestId('chain').textContent()).toBe('link verifies');
    expect(new URL(page.url()).searchParams.get('event')).toBe(voice.position);

    // From the answered delivery to its answer and back.
    await viewer.getByRole('button', { name: /^delivery / }).click();
    const body = page.getByTestId('body-viewer');
    await body.waitFor();
    await body.getByTestId('show-answer').click();
    await page.getByTestId('answer-viewer').waitFor();
    expect(rig.errors).toEqual([]);
  });

  it('shows per leg the instructions received, the dial requests with their child legs, and every discrepancy', async () => {
    const page = await openCall();
    const root = page.locator(`[data-leg="${P}"]`);
    const intent = root.getByTestId('intent');
    expect(await intent.locator('[data-field="instructions"]').allTextContents()).toEqual(tree.intent!.answers.map((a) => a.instructions.join(' → ')));
    for (const t of tree.intent!.dials[0]!.targets) {
      const shown = await intent.locator(`[data-target="${t.value}"] a[data-child]`).evaluateAll((as) => as.map((a) => a.getAttribute('data-child')));
      expect(shown, t.value).toEqual(t.childLegIds);
    }
    const kinds = await intent.locator('[data-testid="discrepancies"] li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-kind')));
    expect(kinds.sort()).toEqual(tree.intent!.discrepancies.map((d) => d.kind).sort());
    expect(kinds).toEqual(expect.arrayContaining(['ring-over-timeout', 'target-not-attempted', 'unexplained-child', 'outcome-mismatch']));
    expect(await root.locator('[data-field="discrepancy-count"]').textContent()).toContain(`${tree.intent!.discrepancies.length} discrepancies`);
    // Legs whose app was not teed show no intent.
    expect(await page.locator('[data-leg="CA-tee-c1"] [data-testid="intent"]').count()).toBe(0);
    expect(rig.errors).toEqual([]);
  });
});
