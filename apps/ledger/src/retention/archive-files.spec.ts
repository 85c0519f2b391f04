import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MANIFEST, NEXT, recoverArchiveDir, switchArchiveDir } from './archive-files.js';

/** A month folder with its files, and (optionally) an erasure's prepared `.next` files. */
const month = (next: ('receipts.ndjson' | 'events.ndjson' | 'manifest.json')[]) => {
  const dir = mkdtempSync(join(tmpdir(), 'archive-files-'));
  for (const f of ['receipts.ndjson', 'events.ndjson', 'runs.ndjson', MANIFEST]) writeFileSync(join(dir, f), `old ${f}\n`);
  for (const f of next) writeFileSync(join(dir, f + NEXT), `new ${f}\n`);
  return dir;
};
const contents = (dir: string) => Object.fromEntries(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f), 'utf8').trim()]));

describe('an erasure switching an archived month', () => {
  it('replaces the data files, then the manifest', async () => {
    const dir = month(['receipts.ndjson', 'events.ndjson', 'manifest.json']);
    await switchArchiveDir(dir);
    expect(contents(dir)).toEqual({
      'events.ndjson': 'new events.ndjson', 'manifest.json': 'new manifest.json', 'receipts.ndjson': 'new receipts.ndjson', 'runs.ndjson': 'old runs.ndjson',
    });
  });

  it('finishes a switch interrupted after its commit point (the new manifest written), whichever files were renamed', async () => {
    // Stopped after receipts.ndjson was renamed: events.ndjson.next and manifest.json.next are left.
    const dir = month(['events.ndjson', 'manifest.json']);
    writeFileSync(join(dir, 'receipts.ndjson'), 'new receipts.ndjson\n');
    expect(await recoverArchiveDir(dir)).toBe('finished');
    expect(contents(dir)).toMatchObject({ 'events.ndjson': 'new events.ndjson', 'manifest.json': 'new manifest.json', 'receipts.ndjson': 'new receipts.ndjson' });
  });

  it('undoes one stopped before it (no new manifest): the old month is left as it was', async () => {
    const dir = month(['receipts.ndjson', 'events.ndjson']);
    expect(await recoverArchiveDir(dir)).toBe('undone');
    expect(contents(dir)).toEqual({
      'events.ndjson': 'old events.ndjson', 'manifest.json': 'old manifest.json', 'receipts.ndjson': 'old receipts.ndjson', 'runs.ndjson': 'old runs.ndjson',
    });
    expect(await recoverArchiveDir(dir)).toBeNull();
    expect(existsSync(join(dir, 'receipts.ndjson' + NEXT))).toBe(false);
  });
});
