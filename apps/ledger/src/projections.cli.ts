import 'reflect-metadata';
import { loadConfig } from '@lib/config';
import { BACKGROUND_TIMEOUTS, createDatabase } from '@lib/db';
import { callLegsProjection } from '@lib/projections';
import { parseProjectionsArgs } from './cli-args.js';
import { openToolDatabase } from './database.runtime.js';
import { createProjector } from './projections/projector.provider.js';

/**
 * `npm run projections -- rebuild [name]` rebuilds side by side and switches over when caught up;
 * `npm run projections -- status` prints each projection's checkpoint and lag.
 */
const args = parseProjectionsArgs(process.argv.slice(2));
if (!args.ok) {
  console.error(`projections: ${args.error}`);
  process.exit(2);
}
const { command, name } = args.value;
const config = loadConfig();
const database = await openToolDatabase(config, { attach: true });
// Migrations as the owner; the projections as the projector role, which owns the read models it rebuilds.
const { db } = createDatabase(database.projectorUrl, 4, { ...BACKGROUND_TIMEOUTS, applicationName: 'call-ledger-projections-cli' });
let code = 0;
try {
  await database.migrate();
  const projector = createProjector(db, [callLegsProjection], null);
  await projector.init();
  if (command === 'rebuild') {
    const started = performance.now();
    await projector.rebuild(name);
    console.log(`rebuilt ${name ?? 'all projections'} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  console.log(JSON.stringify(await projector.status(), null, 2));
} catch (err) {
  console.error((err as Error).message);
  code = 1;
} finally {
  await db.destroy();
  await database.stop();
}
process.exit(code);
