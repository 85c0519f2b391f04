import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { verifyAuditExport } from '@lib/event-store';
import { parseVerifyArgs } from './cli-args.js';

/**
 * `npm run verify -- <export.ndjson> [--public-key <file or PEM or base64>]`: checks an audit export
 * (`GET /v1/audit/export`) with no database. Exit code 0 when everything holds, 1 when something does not,
 * 2 on a usage error. The report is printed as JSON.
 */
export const runVerifyCli = async (argv: string[], out: (s: string) => void = console.log): Promise<number> => {
  const args = parseVerifyArgs(argv);
  if (!args.ok) return usage(out, args.error);
  const { file, publicKey } = args.value;
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  const report = await verifyAuditExport(lines, { publicKey });
  out(JSON.stringify(report, null, 2));
  return report.valid ? 0 : 1;
};

const usage = (out: (s: string) => void, message: string): number => {
  out(`${message}\nusage: npm run verify -- <export.ndjson> [--public-key <file | PEM | base64 SPKI>]`);
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
