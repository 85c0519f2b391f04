import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeclimbRequest } from '../support/signing.js';
import { API_KEY } from '../support/test-app.js';
import { fillStore, signIn, startConsoleRig, type ConsoleRig } from './support/console-browser.js';

/**
 * The Call Console in a real Chromium against the whole service and PostgreSQL: sign-in, the calls list and its
 * shareable URL. Every test also asserts that the browser console stayed free of errors.
 */
let rig: ConsoleRig;
beforeAll(async () => {
  rig = await startConsoleRig();
  await fillStore(rig, { calls: 60, liveCalls: 6 });
});
afterAll(async () => rig?.close());

const freeclimbSigned = (body: string) => {
  const r = freeclimbRequest(body, '/voice');
  return { headers: r.headers, body: r.payload };
};

type Page = { data: { callId: string; provider: string; status: string }[]; total?: number };

describe('sign-in', () => {
  it('exchanges the key for a session cookie that scripts cannot read, and signs out', async () => {
    const context = await rig.browser.newContext();
    const page = await rig.newPage(context);
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    await page.goto(`${rig.base}/console/calls`);
    await page.getByLabel('API key').fill('not-the-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not accepted');

    await page.getByLabel('API key').fill(API_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await page.getByTestId('calls-total').waitFor();

    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'ledger_console', httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(cookie!.value).not.toContain(API_KEY);
    expect(await page.evaluate('document.cookie')).toBe('');
    expect(await page.evaluate('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })')).not.toContain(API_KEY);
    expect(urls.filter((u) => u.includes(API_KEY))).toEqual([]);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    // The old cookie value no longer opens anything, even if a copy was kept.
    const res = await fetch(`${rig.base}/v1/calls`, { headers: { cookie: `ledger_console=${cookie!.value}` } });
    expect(res.status).toBe(401);
    await page.reload();
    await page.getByLabel('API key').waitFor();
    await context.close();
    expect(rig.errors).toEqual([]);
  });

  it('sends the user back to sign-in when the session ends under them', async () => {
    const context = await rig.browser.newContext();
    const page = await rig.newPage(context);
    await signIn(page, rig.base);
    await page.getByTestId('calls-total').waitFor();
    // End the session server-side, as an expiry does: sign out with the same cookie from outside the page.
    const [cookie] = await context.cookies();
    const headers = { cookie: `ledger_console=${cookie!.value}` };
    const { csrfToken } = (await (await fetch(`${rig.base}/console/api/session`, { headers })).json()) as { csrfToken: string };
    expect((await fetch(`${rig.base}/console/api/session`, { method: 'DELETE', headers: { ...headers, 'x-ledger-csrf': csrfToken } })).status).toBe(200);

    // The list's next live refresh gets the 401.
    await expect.poll(() => page.getByRole('status').first().textContent()).toContain('expired');
    await page.getByLabel('API key').waitFor();
    await context.close();
    expect(rig.errors).toEqual([]);
  });
});

describe('calls list', () => {
  it('filters through the form into the URL, shows the exact total, and a shared link opens the same view', async () => {
    const page = await rig.newPage();
    await signIn(page, rig.base);
    await page.getByLabel('Provider').selectOption('twilio');
    await page.getByLabel('Status').selectOption('completed');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/provider=twilio/);
    const url = new URL(page.url());
    expect(Object.fromEntries(url.searchParams)).toEqual({ provider: 'twilio', status: 'completed' });

    const api = await rig.api<Page>('/v1/calls?provider=twilio&status=completed&withTotal=true&limit=50');
    expect(api.total).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('calls-total').textContent()).toBe(api.total!.toLocaleString('en-US'));
    const rows = () => page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-call-id')));
    await expect.poll(rows).toEqual(api.data.map((l) => l.callId));

    // Someone else opens the link: after sign-in they land on the same filtered view.
    const other = await rig.newPage();
    await signIn(other, rig.base, url.pathname + url.search);
    await expect.poll(() => other.getByTestId('calls-total').textContent()).toBe(api.total!.toLocaleString('en-US'));
    expect(await other.getByLabel('Provider').inputValue()).toBe('twilio');
    await expect.poll(() => other.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-call-id')))).toEqual(api.data.map((l) => l.callId));
    expect(rig.errors).toEqual([]);
  });

  it('searches a number substring of from or to through the form (numberContains), and the link keeps it', async () => {
    const page = await rig.newPage();
    await signIn(page, rig.base);
    const sample = (await rig.api<{ data: { to: string | null }[] }>('/v1/calls?limit=50')).data.find((l) => l.to && /^\+\d{8,}$/.test(l.to))!;
    // Digits from the middle of a number: neither a prefix nor the whole number.
    const part = sample.to!.slice(4, 9);
    await page.getByLabel('Number contains (from or to)').fill(part);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/numberContains=/);
    expect(new URL(page.url()).searchParams.get('numberContains')).toBe(part);
    const api = await rig.api<{ data: { callId: string; from: string | null; to: string | null }[]; total?: number }>(`/v1/calls?numberContains=${encodeURIComponent(part)}&withTotal=true&limit=50`);
    expect(api.total).toBeGreaterThan(0);
    expect(api.data.every((l) => `${l.from} ${l.to}`.includes(part))).toBe(true);
    await expect.poll(() => page.getByTestId('calls-total').textContent()).toBe(api.total!.toLocaleString('en-US'));
    const shown = await page.locator('table.calls tbody tr td:nth-child(2)').allTextContents();
    expect(shown.length).toBe(api.data.length);
    for (const cell of shown) expect(cell).toContain(part);
    expect(rig.errors).toEqual([]);
  });

  it('shows a new call on the first page without a reload', async () => {
    const page = await rig.newPage();
    await signIn(page, rig.base, '/console/calls');
    await page.getByTestId('calls-total').waitFor();
    const before = await page.getByTestId('calls-total').textContent();
    const callId = `CA-live-${Date.now()}`;
    const body = JSON.stringify({ requestType: 'inboundCall', callId, accountId: 'AC-live', parentCallId: null, from: '+13125550199', to: '+18475550100', callStatus: 'ringing', direction: 'inbound', conferenceId: null, queueId: null });
    const res = await fetch(`${rig.base}/v1/webhooks/freeclimb/voice`, { method: 'POST', ...freeclimbSigned(body) });
    expect(res.status).toBe(200);
    await page.locator(`tbody tr[data-call-id="${callId}"]`).waitFor({ timeout: 20_000 });
    expect(await page.locator(`tbody tr[data-call-id="${callId}"]`).getAttribute('class')).toBe('fresh');
    expect(await page.getByTestId('calls-total').textContent()).not.toBe(before);
    expect(rig.errors).toEqual([]);
  });

  it('pages with the keyset cursor and keeps the filters', async () => {
    const page = await rig.newPage();
    await signIn(page, rig.base, '/console/calls?rootOnly=true');
    const first = await rig.api<Page & { nextCursor: string }>('/v1/calls?rootOnly=true&limit=50');
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.waitForURL(/cursor=/);
    const second = await rig.api<Page>(`/v1/calls?rootOnly=true&limit=50&cursor=${encodeURIComponent(first.nextCursor)}`);
    await expect.poll(() => page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-call-id')))).toEqual(second.data.map((l) => l.callId));
    expect(new URL(page.url()).searchParams.get('rootOnly')).toBe('true');
    expect(rig.errors).toEqual([]);
  });
});
