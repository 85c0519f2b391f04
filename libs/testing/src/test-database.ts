import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { APP_ROLE, PROJECTOR_ROLE, createDatabase, urlAsRole, type DatabaseHandle } from '../../db/src/index.js';
import { withDatabase } from './postgres.global-setup.js';

export interface TestDatabase extends DatabaseHandle {
  /** As the superuser that made it (db/pool above): tests use it to look behind the service's back. */
  url: string;
  /** The same database as the service's least-privileged roles. */
  appUrl: string;
  projectorUrl: string;
  name: string;
  drop(): Promise<void>;
}

/** A fresh, migrated database cloned from the run's template: test files never see each other's rows. */
export const createTestDatabase = async (poolSize = 10): Promise<TestDatabase> => {
  const serverUrl = inject('pgServerUrl');
  const template = inject('pgTemplate');
  const name = `ledger_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  await admin.end();
  const url = withDatabase(serverUrl, name);
  const handle = createDatabase(url, poolSize);
  return {
    ...handle,
    url,
    appUrl: urlAsRole(url, APP_ROLE, inject('pgRolePasswords').app),
    projectorUrl: urlAsRole(url, PROJECTOR_ROLE, inject('pgRolePasswords').projector),
    name,
    drop: async () => {
      await handle.db.destroy();
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
};
