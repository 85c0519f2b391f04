import { describe, expect, it } from 'vitest';
import { ConfigError, keyFingerprint, loadConfig, securityWarnings } from './ledger-config.js';

const KEY = 'k'.repeat(16);

describe('LEDGER_API_KEYS', () => {
  it('reads named entries with scopes, and plain keys with every scope (the format before scopes)', () => {
    const c = loadConfig({ LEDGER_API_KEYS: `ops:read+import+admin:${'a'.repeat(20)}, console:read:${'b'.repeat(16)},${'c'.repeat(16)}` });
    expect(c.apiKeys).toEqual([
      { name: 'ops', scopes: ['read', 'import', 'admin'], key: 'a'.repeat(20), plain: false },
      { name: 'console', scopes: ['read'], key: 'b'.repeat(16), plain: false },
      { name: keyFingerprint('c'.repeat(16)), scopes: ['read', 'import', 'admin', 'read-masked'], key: 'c'.repeat(16), plain: true },
    ]);
    expect(keyFingerprint('c'.repeat(16))).toMatch(/^key-[0-9a-f]{12}$/);
    // A key may itself hold colons: everything after the scopes is the key.
    expect(loadConfig({ LEDGER_API_KEYS: `x:read:${KEY}:tail` }).apiKeys[0]!.key).toBe(`${KEY}:tail`);
  });

  it('refuses to start with a key shorter than 16 characters, without echoing it', () => {
    for (const value of ['short-key-123', `ops:admin:tiny-key`]) {
      let err: unknown;
      try {
        loadConfig({ LEDGER_API_KEYS: value });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/LEDGER_API_KEYS: entry 1.*at least 16 are required/);
      expect((err as Error).message).not.toContain(value.split(':').at(-1));
    }
  });

  it('refuses unknown scopes, malformed entries, duplicate names and duplicate keys', () => {
    expect(() => loadConfig({ LEDGER_API_KEYS: `ops:write:${KEY}` })).toThrow(/unknown scope "write"/);
    expect(() => loadConfig({ LEDGER_API_KEYS: `bad name:read:${KEY}` })).toThrow(/expected <name>:<scope>/);
    expect(() => loadConfig({ LEDGER_API_KEYS: `a:read:${KEY},a:read:${'z'.repeat(16)}` })).toThrow(/"a" is used twice/);
    expect(() => loadConfig({ LEDGER_API_KEYS: `a:read:${KEY},b:admin:${KEY}` })).toThrow(/same key is listed twice/);
  });
});

describe('webhook secrets', () => {
  it('refuse to start when one is shorter than 16 characters, naming the variable', () => {
    for (const name of ['FREECLIMB_SIGNING_SECRET', 'JAMBONZ_WEBHOOK_SECRET', 'TWILIO_AUTH_TOKEN', 'RESTCOMM_WEBHOOK_TOKEN']) {
      expect(() => loadConfig({ [name]: `${'s'.repeat(16)},rc-token-1` }), name).toThrow(new RegExp(`${name}: value 2 is 10 characters long; at least 16`));
      expect(loadConfig({ [name]: 's'.repeat(16) }).secrets).toBeDefined();
    }
  });
});

describe('LEDGER_ACCEPT_UNSIGNED', () => {
  it('is empty by default, takes providers or all, and refuses unknown names', () => {
    expect(loadConfig({}).acceptUnsigned).toEqual([]);
    expect(loadConfig({ LEDGER_ACCEPT_UNSIGNED: 'freeclimb, jambonz' }).acceptUnsigned).toEqual(['freeclimb', 'jambonz']);
    expect(loadConfig({ LEDGER_ACCEPT_UNSIGNED: 'all' }).acceptUnsigned).toEqual(['freeclimb', 'jambonz', 'twilio', 'restcomm']);
    expect(() => loadConfig({ LEDGER_ACCEPT_UNSIGNED: 'plivo' })).toThrow(/unknown provider "plivo"/);
  });

  it('is warned about loudly at start, as are providers that will be refused and plain keys', () => {
    const warnings = securityWarnings(loadConfig({ LEDGER_ACCEPT_UNSIGNED: 'jambonz', TWILIO_AUTH_TOKEN: 't'.repeat(32), LEDGER_API_KEYS: KEY }));
    expect(warnings.find((w) => w.includes('jambonz'))).toMatch(/NO SECRET.*forged/);
    expect(warnings.find((w) => w.includes('freeclimb'))).toMatch(/refused/);
    expect(warnings.some((w) => w.includes('twilio'))).toBe(false);
    expect(warnings.find((w) => w.includes('plain key'))).toContain(keyFingerprint(KEY));
    expect(warnings.join('\n')).not.toContain(KEY);
  });
});

describe('LEDGER_INGEST_MAX_CONCURRENCY', () => {
  it('is off by default (2, as LEDGER_INGEST_CONCURRENCY), never above the pool less two nor below LEDGER_INGEST_CONCURRENCY', () => {
    expect(loadConfig({}).ingestMaxConcurrency).toBe(2);
    expect(loadConfig({ LEDGER_INGEST_MAX_CONCURRENCY: '8' }).ingestMaxConcurrency).toBe(8);
    expect(loadConfig({ LEDGER_INGEST_MAX_CONCURRENCY: '8', LEDGER_DB_POOL_SIZE: '4' }).ingestMaxConcurrency).toBe(2);
    expect(loadConfig({ LEDGER_INGEST_CONCURRENCY: '10', LEDGER_DB_POOL_SIZE: '10' }).ingestMaxConcurrency).toBe(10);
  });
});

describe('partitions and retention', () => {
  it('keeps everything by default, with three months made ahead', () => {
    const c = loadConfig({});
    expect(c.partitions).toEqual({ ahead: 3, checkIntervalSec: 3600 });
    expect(c.retention).toMatchObject({ policy: { providers: {}, accounts: {} }, archiveDir: undefined, intervalSec: 86_400 });
  });

  it('reads LEDGER_RETENTION, requires LEDGER_ARCHIVE_DIR with it, and refuses a rule it cannot read', () => {
    const c = loadConfig({ LEDGER_RETENTION: 'raw=400d,raw:twilio:AC1=30d', LEDGER_ARCHIVE_DIR: '/var/lib/ledger/archive' });
    expect(c.retention.policy).toEqual({ defaultDays: 400, providers: {}, accounts: { 'twilio:AC1': 30 } });
    expect(c.retention.archiveDir).toBe('/var/lib/ledger/archive');
    expect(() => loadConfig({ LEDGER_RETENTION: 'raw=400d' })).toThrow(/LEDGER_ARCHIVE_DIR is required/);
    expect(() => loadConfig({ LEDGER_RETENTION: 'raw=400 days', LEDGER_ARCHIVE_DIR: '/a' })).toThrow(ConfigError);
    // Rules that only keep need no archive.
    expect(loadConfig({ LEDGER_RETENTION: 'raw=keep' }).retention.archiveDir).toBeUndefined();
  });
});

describe('DATABASE_READ_URL', () => {
  it('is off by default, falls back to the primary unless told to answer 503, and must be a URL', () => {
    expect(loadConfig({})).toMatchObject({ readDatabaseUrl: undefined, readFallback: 'primary' });
    const c = loadConfig({ DATABASE_READ_URL: 'postgres://ledger_app:pw@standby:5432/ledger', LEDGER_READ_FALLBACK: 'unavailable' });
    expect(c).toMatchObject({ readDatabaseUrl: 'postgres://ledger_app:pw@standby:5432/ledger', readFallback: 'unavailable' });
    expect(() => loadConfig({ DATABASE_READ_URL: 'the standby' })).toThrow(ConfigError);
    expect(() => loadConfig({ LEDGER_READ_FALLBACK: 'replica' })).toThrow(/LEDGER_READ_FALLBACK/);
  });
});
