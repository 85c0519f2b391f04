import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { startLedger, waitUntil } from './support/ledger-process.js';

/**
 * The built service at start: a configuration that would make guessing feasible (a short API key or webhook
 * secret) stops it before it listens, and what it accepts without authentication is said loudly in its log.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(4);
});
afterAll(async () => db.drop());

describe('the service at start', () => {
  it('refuses to start with an API key or a webhook secret shorter than 16 characters, naming it but not its value', async () => {
    const cases: Record<string, string>[] = [{ LEDGER_API_KEYS: 'ops:admin:tiny-key-123' }, { JAMBONZ_WEBHOOK_SECRET: 'whsec_short' }];
    for (const env of cases) {
      const ledger = await startLedger({ DATABASE_URL: db.url, ...env }, { waitReady: false });
      try {
        await waitUntil('the process to give up', () => ledger.child.exitCode !== null, 30_000);
      } finally {
        await ledger.stop('SIGKILL');
      }
      expect(ledger.child.exitCode).toBe(1);
      const [name, value] = Object.entries(env)[0]!;
      expect(ledger.output()).toContain(`invalid configuration: ${name}`);
      expect(ledger.output()).toContain('at least 16 are required');
      expect(ledger.output()).not.toContain(value.split(':').at(-1));
    }
  });

  it('warns loudly about a provider accepted unsigned, and says which ones are refused', async () => {
    const ledger = await startLedger({ DATABASE_URL: db.url, JAMBONZ_WEBHOOK_SECRET: '', TWILIO_AUTH_TOKEN: '', LEDGER_ACCEPT_UNSIGNED: 'jambonz' });
    try {
      await waitUntil('the start-up warnings', () => ledger.output().includes('listening on'), 30_000);
      expect(ledger.output()).toMatch(/!!! jambonz: NO SECRET and LEDGER_ACCEPT_UNSIGNED lists it/);
      expect(ledger.output()).toMatch(/twilio: no secret configured, its deliveries are refused/);
      const res = await fetch(`${ledger.url}/v1/webhooks/twilio/status`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'CallSid=CA1&CallStatus=ringing' });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('WEBHOOK.PROVIDER_NOT_CONFIGURED');
    } finally {
      await ledger.stop();
    }
  });
});
