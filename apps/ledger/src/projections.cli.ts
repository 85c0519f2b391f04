import 'reflect-metadata';
import { loadConfig } from '@lib/config';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '@lib/db';
import { callLegsProjection } from '@lib/projections';
import { createProjector } from './projections/projector.provider.js';

/**
 * `npm run projections -- rebuild [name]` rebuilds side by side and switches over when caught up;
 * `npm run projections -- status` prints each projection's checkpoint and lag.
 */
const [command = 'status', name] = process.argv.slice(2);
const config = loadConfig();
const embedded = config.databaseUrl ? null : await startEmbeddedPostgres({ dataDir: config.dataDir, attach: true });
const { db } = createDatabase(config.databaseUrl ?? embedded!.url, 4);
let code = 0;
try {
  await migrateToLatest(db);
  const projector = createProjector(db, [callLegsProjection], null);
  await projector.init();
  if (command === 'rebuild') {
    const started = performance.now();
    await projector.rebuild(name);
    console.log(`rebuilt ${name ?? 'all projections'} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } else if (command !== 'status') {
    console.error(`unknown command "${command}": use rebuild [name] or status`);
    code = 2;
  }
  console.log(JSON.stringify(await projector.status(), null, 2));
} catch (err) {
  console.error((err as Error).message);
  code = 1;
} finally {
  await db.destroy();
  await embedded?.stop();
}
process.exit(code);
