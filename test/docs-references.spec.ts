import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const sources = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
const code = [...sources('apps'), ...sources('libs'), ...sources('bench'), ...sources('test')]
  .filter((file) => !file.endsWith('docs-references.spec.ts'))
  .map((file) => ({ file, text: readFileSync(file, 'utf8') }));
const headings = (doc: string) => new Set([...readFileSync(doc, 'utf8').matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!.trim()));

describe('documents cited by comments', () => {
  it('are in the repository: no comment cites the research notes outside it (providers.md §…, a bare §2.11-4, anchors.md)', () => {
    // A section sign is for documents with numbered sections outside the repo (an RFC's keeps its name).
    const outside = code.flatMap(({ file, text }) =>
      [...text.matchAll(/(?<!docs\/)(?:providers\.md §[0-9]|anchors\.md)|(?<!RFC \d+ )§\s?\d[\d.-]*/g)].map((m) => `${file}: ${m[0]}`),
    );
    expect(outside).toEqual([]);
  });

  it('name sections that exist in docs/', () => {
    const docs: Record<string, Set<string>> = { 'docs/providers.md': headings('docs/providers.md'), 'docs/architecture.md': headings('docs/architecture.md') };
    const missing: string[] = [];
    for (const { file, text } of code) {
      for (const m of text.matchAll(/(docs\/(?:providers|architecture)\.md), "([^"]+)"/g)) {
        if (!docs[m[1]!]!.has(m[2]!)) missing.push(`${file}: ${m[1]}, "${m[2]}"`);
      }
    }
    expect(missing).toEqual([]);
  });
});
