import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `vite build --config apps/console/vite.config.ts` writes the console (outside `dist/`, which `nest build` empties). */
export const CONSOLE_OUT_DIR = 'dist-console';

/**
 * The built console, found from this file upwards (the repository root holds package.json), so the same code
 * finds it from the sources (tests) and from `dist/` (npm start, Docker). Null when the console was not built.
 */
export const findConsoleAssets = (from = dirname(fileURLToPath(import.meta.url))): string | null => {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) {
      const out = join(dir, CONSOLE_OUT_DIR);
      return existsSync(join(out, 'index.html')) ? out : null;
    }
    if (dirname(dir) === dir) return null;
  }
};
