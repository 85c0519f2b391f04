import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ARCHIVE_FILES, verifyArchive, verifyAuditExport, type ArchiveFile, type FileDigest } from '@lib/event-store';
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

const digestOf = async (file: string): Promise<FileDigest> => {
  const hash = createHash('sha256');
  let bytes = 0;
  let lines = 0;
  for await (const chunk of createReadStream(file)) {
    const b = chunk as Buffer;
    hash.update(b);
    bytes += b.length;
    for (const c of b) if (c === 10) lines += 1;
  }
  return { sha256: hash.digest('hex'), bytes, lines };
};

export const verifyArchiveDir = async (dir: string, publicKey?: string) => {
  const digests = {} as Record<ArchiveFile, FileDigest>;
  const files = {} as Record<ArchiveFile, () => AsyncIterable<string>>;
  for (const f of ARCHIVE_FILES) {
    digests[f] = await digestOf(join(dir, f));
    files[f] = () => linesOf(join(dir, f));
  }
  return verifyArchive(await readFile(join(dir, 'manifest.json'), 'utf8'), digests, files, { publicKey });
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
