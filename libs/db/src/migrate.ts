import { Migrator, type Kysely, type MigrationProvider, type MigrationResultSet } from 'kysely';
import { migrations } from '../../../migrations/index.js';

const provider: MigrationProvider = { getMigrations: async () => migrations };

export const migrateToLatest = async (db: Kysely<any>): Promise<MigrationResultSet> => {
  const result = await new Migrator({ db, provider }).migrateToLatest();
  if (result.error) throw result.error;
  return result;
};

/** True when every registered migration has been applied (the readiness condition of /health). */
export const isFullyMigrated = async (db: Kysely<any>): Promise<boolean> => {
  const list = await new Migrator({ db, provider }).getMigrations();
  return list.every((m) => m.executedAt !== undefined);
};
