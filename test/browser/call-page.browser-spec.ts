import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillStore, signIn, startConsoleRig, type ConsoleRig } from './support/console-browser.js';

/** One simulated call in the console: its tree, its ladder and its deliveries, compared with what the API answers. */
type Leg = { callId: string; provider: string; status: string; final: boolean; children: Leg[] };
type Ev = {
  position: string;
  callId: string;
  type: string;
  receivedAt: string;
  occurredAt: string | null;
  chainVerified: boolean;
  receipt: { id: string; body: string; contentType: string | null; signature: { status: string; timestamp: string | null } };
};

let rig: ConsoleRig;
let root: Leg;
let events: Ev[];
const flat = (l: Leg): Leg[] => [l, ...l.children.flatMap(flat)];

beforeAll(async () => {
  rig = await startConsoleRig();
  await fillStore(rig, { calls: 40, liveCalls: 12 });
  // A live (signed) call with children: the newest roots are the live ones.
  const { data } = await rig.api<{ data: Leg[] }>('/v1/calls?rootOnly=true&limit=12');
  for (const leg of data) {
    const tree = await rig.api<Leg>(`/v1/calls/${encodeURIComponent(leg.callId)}/tree?provider=${leg.provider}`);
    if (tree.children.length > 0) {
      root = tree;
      break;
    }
  }
  if (!root) throw new Error('no simulated call with children');
  events = (await rig.api<{ data: Ev[] }>(`/v1/calls/${encodeURIComponent(root.callId)}/events?provider=${root.provider}&tree=true`)).data;
});
afterAll(async () => rig?.close());

/** Elements that reach past the right edge of the screen, other than inside the containers meant to scroll sideways. */
const WIDER_THAN_SCREEN = `[...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !(e.parentElement && e.parentElement.closest('.ladder, .scroll')))
  .map((e) => e.tagName + '.' + e.className + ': ' + (e.textContent || '').slice(0, 40))`;

const openCall = async (extra = '') => {
  const page = await rig.newPage();
  await signIn(page, rig.base, `/console/calls/${encodeURIComponent(root.callId)}?provider=${root.provider}${extra}`);
  await page.getByTestId('ladder').waitFor();
  return page;
};

describe('call page', () => {
  it('shows the leg tree the API answers, leg by leg with its status', async () => {
    const page = await openCall();
    const shown = await page.locator('[data-leg]').evaluateAll((els) => els.map((el) => [el.getAttribute('data-leg'), el.querySelector('[data-field="status"]')!.textContent]));
    expect(shown).toEqual(flat(root).map((l) => [l.callId, l.status]));
    // Nesting: each child leg is drawn inside its parent's list item.
    for (const child of root.children) {
      expect(await page.locator(`li:has(> [data-leg="${root.callId}"]) [data-leg="${child.callId}"]`).count()).toBe(1);
    }
    expect(rig.errors).toEqual([]);
  });

  it('draws one mark per delivery per leg, in its lane, ordered by the clock chosen', async () => {
    const page = await openCall();
    const expected = new Set(events.map((e) => `${e.callId}|${e.receipt.id}`));
    const marks = () =>
      page.locator('.mark').evaluateAll((els) => els.map((el) => ({ position: el.getAttribute('data-position')!, callId: el.getAttribute('data-call-id')!, x: Number(el.getAttribute('data-x')) })));
    const onReceive = await marks();
    expect(onReceive).toHaveLength(expected.size);
    const byPosition = new Map(events.map((e) => [e.position, e]));
    expect(new Set(onReceive.map((m) => `${m.callId}|${byPosition.get(m.position)!.receipt.id}`))).toEqual(expected);

    const inOrder = (ms: { position: string; x: number }[], time: (e: Ev) => number) => {
      for (const a of ms) for (const b of ms) if (time(byPosition.get(a.position)!) < time(byPosition.get(b.position)!)) expect(a.x, `${a.position} before ${b.position}`).toBeLessThan(b.x);
    };
    inOrder(onReceive, (e) => Date.parse(e.receivedAt));

    await page.getByLabel("Provider's clock").check();
    await page.waitForURL(/clock=provider/);
    const onProvider = await marks();
    inOrder(onProvider, (e) => Date.parse(e.occurredAt ?? e.receipt.signature.timestamp ?? e.receivedAt));
    expect(rig.errors).toEqual([]);
  });

  it('shows the stored bytes of a delivery, its signature verdict and its chain link, with a link to it', async () => {
    const page = await openCall();
    const target = events.find((e) => e.callId !== root.callId) ?? events[0]!;
    await page.locator(`.mark[data-position="${target.position}"]`).click();
    await page.getByTestId('body-viewer').waitFor();
    expect(new URL(page.url()).searchParams.get('event')).toBe(target.position);
    const raw = page.getByRole('button', { name: 'Show raw bytes' });
    if (await raw.count()) await raw.click();
    expect(await page.getByTestId('body-raw').textContent()).toBe(target.receipt.body);
    expect(await page.getByTestId('signature').textContent()).toBe(target.receipt.signature.status);
    expect(await page.getByTestId('chain').textContent()).toBe(target.chainVerified ? 'link verifies' : 'BROKEN at or before this event');
    expect(target.chainVerified).toBe(true);

    // The delivery link opens the same delivery in a fresh page.
    const link = await page.getByRole('link', { name: 'Link to this delivery' }).getAttribute('href');
    const other = await rig.newPage();
    await signIn(other, rig.base, link!);
    await other.getByTestId('body-viewer').waitFor();
    expect(await other.getByTestId('signature').textContent()).toBe(target.receipt.signature.status);
    expect(rig.errors).toEqual([]);
  });

  it('exports the call as NDJSON (the events with their bodies) and the ladder as SVG', async () => {
    const page = await openCall();
    const [nd] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export NDJSON' }).click()]);
    const text = await readFile((await nd.path())!, 'utf8');
    expect(text.trimEnd().split('\n').map((l) => JSON.parse(l))).toEqual(events);
    const [svg] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export ladder SVG' }).click()]);
    const xml = await readFile((await svg.path())!, 'utf8');
    expect(xml).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(xml.match(/class="mark"/g)).toHaveLength(new Set(events.map((e) => `${e.callId}|${e.receipt.id}`)).size);
    expect(rig.errors).toEqual([]);
  });

  it('maps recordings to their legs with a player and the duration', async () => {
    type Rec = { recordingId: string; callId: string; url: string; durationSec: number | null };
    const { data } = await rig.api<{ data: Rec[] }>('/v1/recordings?limit=1');
    expect(data).toHaveLength(1);
    const rec = data[0]!;
    const page = await rig.newPage();
    await signIn(page, rig.base, `/console/calls/${encodeURIComponent(rec.callId)}`);
    await page.getByTestId('ladder').waitFor();
    const players = await page.locator('audio').evaluateAll((as) => as.map((a) => a.getAttribute('src')));
    const all = await rig.api<{ data: Rec[] }>(`/v1/recordings?callId=${encodeURIComponent(rec.callId)}`);
    expect(players.sort()).toEqual(all.data.map((r) => r.url).sort());
    const item = page.locator('.recordings li', { hasText: rec.recordingId });
    expect(await item.getByRole('link').textContent()).toBe(rec.callId);
    if (rec.durationSec !== null) expect(await item.textContent()).toContain(rec.durationSec < 60 ? 's)' : 'm ');
    expect(rig.errors).toEqual([]);
  });

  it('stays inside a phone-wide screen: only the ladder and tables scroll sideways', async () => {
    const context = await rig.browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await rig.newPage(context);
    await signIn(page, rig.base, `/console/calls/${encodeURIComponent(root.callId)}?provider=${root.provider}`);
    await page.getByTestId('ladder').waitFor();
    expect(await page.evaluate(WIDER_THAN_SCREEN)).toEqual([]);
    await page.getByRole('link', { name: 'Calls' }).click();
    await page.getByTestId('calls-total').waitFor();
    expect(await page.evaluate(WIDER_THAN_SCREEN)).toEqual([]);
    await context.close();
    expect(rig.errors).toEqual([]);
  });

  it('is usable from the keyboard: a mark opens with Enter', async () => {
    const page = await openCall();
    const first = page.locator('.mark').first();
    await first.focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('body-viewer').waitFor();
    expect(await first.getAttribute('aria-pressed')).toBe('true');
    expect(rig.errors).toEqual([]);
  });
});
