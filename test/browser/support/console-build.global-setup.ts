import { build } from 'vite';

/** The console the tests drive is the one `npm run build` ships: built from the sources at the start of the run. */
export default async function setup(): Promise<void> {
  await build({ configFile: 'apps/console/vite.config.ts', logLevel: 'warn' });
}
