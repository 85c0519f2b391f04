import 'reflect-metadata';
import { loadConfig } from '@lib/config';
import { BACKGROUND_TIMEOUTS, createDatabase } from '@lib/db';
import { callLegsProjection } from '@lib/projections';
import { ProviderRegistry } from '@lib/providers';
import { parseRetranslateArgs } from './cli-args.js';
import { openToolDatabase } from './database.runtime.js';
import { createProjector } from './projections/projector.provider.js';
import { retranslateWithAdapters } from './retranslation/retranslate.js';

/**
 * `npm run retranslate [-- --dry-run] [--no-rebuild] [--batch-size <n>]`: what the service does at start, by hand.
 * Re-translates the stored receipts whose translator version is older than this code's, then rebuilds the call_legs
 * projection when anything was appended. `--dry-run` prints, per provider, what would change (old event types ->
 * new ones, with counts) and writes nothing. Exit 0 done, 1 failed, 2 usage.
 */
const args = parseRetranslateArgs(process.argv.slice(2));
if (!args.ok) {
  console.error(`retranslate: ${args.error}`);
  process.exit(2);
}
const config = loadConfig();
const database = await openToolDatabase(config, { attach: true });
// The store is written as the service writes it: as ledger_app, through ledger_append.
const app = createDatabase(database.appUrl, 2, { ...BACKGROUND_TIMEOUTS, applicationName: 'call-ledger-retranslate' });
let code = 0;
try {
  await database.migrate();
  const report = await retranslateWithAdapters(app.db, new ProviderRegistry(config.secrets, config.publicUrl), {
    dryRun: args.value.dryRun,
    ...(args.value.batchSize === undefined ? {} : { batchSize: args.value.batchSize }),
    log: (m) => console.error(m),
  });
  if (report.providers.length === 0) console.error('every provider is at its current translator version: nothing to do');
  for (const p of report.providers) {
    console.log(`${p.provider}: translator version ${p.from} -> ${p.to}, ${p.scanned} receipts read, ${p.changed} ${args.value.dryRun ? 'would get' : 'got'} a new translation`);
    for (const [kind, n] of Object.entries(p.changes).sort()) console.log(`  ${n} × ${kind}`);
    if (p.refused.length > 0) console.log(`  refused by the database, kept as they were: receipts ${p.refused.join(', ')}`);
  }
  if (report.appended > 0 && args.value.rebuild) {
    const projector = createDatabase(database.projectorUrl, 4, { ...BACKGROUND_TIMEOUTS, applicationName: 'call-ledger-retranslate' });
    try {
      const p = createProjector(projector.db, [callLegsProjection], null);
      await p.init();
      await p.rebuild(callLegsProjection.name);
      console.log(`rebuilt ${callLegsProjection.name}`);
    } finally {
      await projector.db.destroy();
    }
  }
} catch (err) {
  console.error((err as Error).message);
  code = 1;
} finally {
  await app.db.destroy();
  await database.stop();
}
process.exit(code);
