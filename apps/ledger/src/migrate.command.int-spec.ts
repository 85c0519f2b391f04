import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lib/config';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '@lib/db';
import { runMigrations } from './migrate.command.js';

let dir: string | undefined;
let service: EmbeddedPostgresHandle | undefined;
afterAll(async () => {
  await service?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const answers = async (url: string): Promise<boolean> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
};

describe('npm run migrate beside a running service (embedded PostgreSQL)', () => {
  it("migrates through the service's server and leaves it running", { timeout: 120_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'ledger-migrate-'));
    // The running service's server, as the service starts it.
    service = await startEmbeddedPostgres({ dataDir: dir, supervise: false });
    expect(await answers(service.url)).toBe(true);

    await runMigrations(loadConfig({ LEDGER_DATA_DIR: dir, LOG_LEVEL: 'silent' }));

    expect(await answers(service.url)).toBe(true);
    const client = new pg.Client({ connectionString: service.url });
    await client.connect();
    try {
      const tables = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_tables WHERE tablename IN ('events', 'streams')`);
      expect(tables.rows[0]!.n).toBe('2');
    } finally {
      await client.end();
    }
  });
});
