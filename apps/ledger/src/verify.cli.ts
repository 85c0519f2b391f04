import { createReadStream, existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { verifyAuditExport } from '@lib/event-store';
import { MANIFEST, NEXT, verifyArchiveFiles } from './retention/archive-files.js';
import { parseVerifyArgs } from './cli-args.js';

/**
 * `npm run verify -- <export.ndjson | archive dir> [--public-key <file or PEM or base64>]`: checks an audit export
 * (`GET /v1/audit/export`), or a month archived by retention (a folder with manifest.json), with no database. Exit
 * code 0 when everything holds, 1 when something does not, 2 on a usage error. The report is printed as JSON.
 */
export const runVerifyCli = async (argv: string[], out: (s: string) => void = console.log): Promise<number> => {
  const args = parseVerifyArgs(argv);
  if (!args.ok) return usage(out, args.error);
  const { file, publicKey } = args.value;
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
    const report = await verifyArchiveDir(file, publicKey);
    out(JSON.stringify(report, null, 2));
    return report.valid ? 0 : 1;
  }
  const report = await verifyAuditExport(linesOf(file), { publicKey });
  out(JSON.stringify(report, null, 2));
  return report.valid ? 0 : 1;
};

const linesOf = (file: string) => createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });

/** A month archived by retention: its files, and a rewrite an erasure left half done (`manifest.json.next`). */
export const verifyArchiveDir = async (dir: string, publicKey?: string) => {
  const report = await verifyArchiveFiles(dir, await readFile(join(dir, MANIFEST), 'utf8'), undefined, publicKey);
  if (existsSync(join(dir, MANIFEST + NEXT))) {
    report.notes.push('manifest.json.next is present: an erasure was rewriting this month when it stopped; the service finishes it at its next erasure or retention run');
  }
  return report;
};

const usage = (out: (s: string) => void, message: string): number => {
  out(`${message}\nusage: npm run verify -- <export.ndjson | archive folder> [--public-key <file | PEM | base64 SPKI>]`);
  return 2;
};

if (process.argv[1] && /verify\.cli\.[jt]s$/.test(process.argv[1])) {
  runVerifyCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error((err as Error).message);
      process.exit(2);
    },
  );
}
