import type { LedgerConfig } from '@lib/config';
import { openToolDatabase } from './database.runtime.js';

/**
 * Applies the migrations as the owner and returns. With the embedded PostgreSQL it attaches to the server of a
 * running service (as `npm run projector` does) rather than taking the data directory over: taking over would
 * shut that server down under the service. Only when no service runs does it start a server, and stop it after.
 */
export const runMigrations = async (config: LedgerConfig): Promise<void> => {
  const database = await openToolDatabase(config, { attach: true });
  try {
    await database.migrate();
  } finally {
    await database.stop();
  }
};
