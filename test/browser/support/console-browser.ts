import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { importLine, simulate } from '@lib/simulator';
import { sendLive } from '../../../apps/simulator/src/live-sender.js';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../../support/test-app.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface ConsoleRig {
  t: TestApp;
  base: string;
  browser: Browser;
  /** Every console message of type error and every uncaught page error, over every page opened by `newPage`. */
  errors: string[];
  newPage(context?: BrowserContext): Promise<Page>;
  api<T = unknown>(path: string, init?: RequestInit): Promise<T>;
  close(): Promise<void>;
}

/** The whole service listening on a port, and Debian's Chromium. */
export const startConsoleRig = async (env: Record<string, string> = {}): Promise<ConsoleRig> => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)`);
  const t = await startTestApp({ ...SECRETS, ...env });
  await t.app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const errors: string[] = [];
  const rig: ConsoleRig = {
    t,
    base,
    browser,
    errors,
    async newPage(context) {
      const page = await (context ?? (await browser.newContext())).newPage();
      page.on('console', (m) => {
        // A 401 while probing the session before sign-in is the expected answer, which Chromium logs as a failed resource.
        if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      return page;
    },
    async api(path, init = {}) {
      const res = await fetch(base + path, { ...init, headers: { authorization: `Bearer ${API_KEY}`, ...(init.headers ?? {}) } });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return res.json() as never;
    },
    async close() {
      await browser.close();
      await t.close();
    },
  };
  return rig;
};

export const signIn = async (page: Page, base: string, path = '/console/calls'): Promise<void> => {
  await page.goto(base + path);
  await page.getByLabel('API key').fill(API_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
};

/** Waits until every projection has applied the whole store. */
export const projectionsCaughtUp = async (rig: ConsoleRig): Promise<void> => {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { data } = await rig.api<{ data: { lagEvents: number; state: string }[] }>('/v1/admin/projections');
    if (data.length > 0 && data.every((p) => p.lagEvents === 0 && p.state === 'running')) return;
    if (Date.now() > deadline) throw new Error(`projections did not catch up: ${JSON.stringify(data)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** Simulated history (imported: 30 days ending at `end`) plus a few live, signed calls, all projected. */
export const fillStore = async (rig: ConsoleRig, opts: { calls?: number; liveCalls?: number; end?: number } = {}): Promise<void> => {
  const run = simulate({ seed: 'console', calls: opts.calls ?? 60, provider: 'mixed', baseTimeMs: opts.end ?? Date.UTC(2026, 1, 1), mode: 'import', days: 30, rate: 1, maxTalkSec: 300 });
  const res = await fetch(`${rig.base}/v1/import`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/x-ndjson' },
    body: run.deliveries.map(importLine).join('\n') + '\n',
  });
  if (res.status !== 200) throw new Error(`import: ${res.status} ${await res.text()}`);
  if (opts.liveCalls) {
    const live = simulate({ seed: 'console-live', calls: opts.liveCalls, provider: 'mixed', baseTimeMs: Math.floor(Date.now() / 1000) * 1000, mode: 'live', days: 0, rate: 50, maxTalkSec: 60 });
    const secrets = { freeclimb: SECRETS.FREECLIMB_SIGNING_SECRET, jambonz: SECRETS.JAMBONZ_WEBHOOK_SECRET, twilio: SECRETS.TWILIO_AUTH_TOKEN, restcomm: SECRETS.RESTCOMM_WEBHOOK_TOKEN };
    const sent = await sendLive(live.deliveries, { target: rig.base, publicUrl: 'https://ledger.example.com', secrets, concurrency: 8, leadMs: 240_000, now: () => Date.now(), progress: () => undefined });
    if (sent.errors) throw new Error(`live: ${JSON.stringify(sent.firstErrors)}`);
  }
  await projectionsCaughtUp(rig);
};
