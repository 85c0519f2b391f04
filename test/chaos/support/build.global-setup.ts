import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..', '..');
export const LEDGER_MAIN = join(ROOT, 'dist', 'apps', 'ledger', 'src', 'main.js');

const newestSource = (dir: string): number => {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !/\.(spec|int-spec|e2e-spec)\.ts$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
};

/**
 * The chaos tests run the service as the real process (`node dist/apps/ledger/src/main.js`), so the build must
 * match the sources: built once per run, and only when a source file is newer than the output.
 */
export default function setup(): void {
  const sources = Math.max(...['apps', 'libs', 'migrations'].map((d) => newestSource(join(ROOT, d))));
  if (existsSync(LEDGER_MAIN) && statSync(LEDGER_MAIN).mtimeMs >= sources) return;
  const build = spawnSync('npx', ['nest', 'build', 'ledger'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error(`nest build failed with status ${build.status}`);
}
