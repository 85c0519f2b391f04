import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';

/**
 * Argument parsing of the ledger's CLIs: `node:util` `parseArgs` (strict: unknown options and missing values are
 * errors, `--opt value` and `--opt=value` both work) and zod for what the values must be. Pure, so that each
 * CLI's usage errors are tested without running it.
 */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const attempt = <T>(f: () => T): Parsed<T> => {
  try {
    return { ok: true, value: f() };
  } catch (err) {
    if (err instanceof z.ZodError) return { ok: false, error: err.issues.map((i) => i.message).join('; ') };
    return { ok: false, error: (err as Error).message };
  }
};

const verifyArgs = z.object({
  positionals: z.tuple([z.string().min(1)], { error: 'expected exactly one export file' }),
  publicKey: z.string().min(1, { error: '--public-key needs a value' }).optional(),
});

/** `verify <export.ndjson> [--public-key <file | PEM | base64 SPKI>]`; a key that names a file is read from it. */
export const parseVerifyArgs = (argv: readonly string[]): Parsed<{ file: string; publicKey?: string }> =>
  attempt(() => {
    // A PEM passed inline starts with `-----BEGIN`, which parseArgs would take for an option: join it to its flag.
    const args = argv.flatMap((a, i) => (a === '--public-key' && argv[i + 1] !== undefined ? [] : argv[i - 1] === '--public-key' && i > 0 ? [`--public-key=${a}`] : [a]));
    const { values, positionals } = parseArgs({ args, options: { 'public-key': { type: 'string' } }, allowPositionals: true, strict: true });
    const parsed = verifyArgs.parse({ positionals, publicKey: values['public-key'] });
    const key = parsed.publicKey;
    return { file: parsed.positionals[0], ...(key === undefined ? {} : { publicKey: existsSync(key) ? readFileSync(key, 'utf8') : key }) };
  });

const projectionsArgs = z.union([
  z.tuple([]).transform(() => ({ command: 'status' as const })),
  z.tuple([z.literal('status')]).transform(() => ({ command: 'status' as const })),
  z.tuple([z.literal('rebuild')]).transform(() => ({ command: 'rebuild' as const })),
  z.tuple([z.literal('rebuild'), z.string().min(1)]).transform(([, name]) => ({ command: 'rebuild' as const, name })),
], { error: 'use: status | rebuild [name]' });

/** `projections [status | rebuild [name]]` (status when no command is given). */
export const parseProjectionsArgs = (argv: readonly string[]): Parsed<{ command: 'status' | 'rebuild'; name?: string }> =>
  attempt(() => projectionsArgs.parse(parseArgs({ args: [...argv], options: {}, allowPositionals: true, strict: true }).positionals));

const retranslateArgs = z.object({
  positionals: z.tuple([], { error: 'takes no arguments, only --dry-run, --no-rebuild and --batch-size <n>' }),
  dryRun: z.boolean(),
  rebuild: z.boolean(),
  batchSize: z.coerce.number({ error: '--batch-size must be a whole number from 1 to 10000' }).int().min(1).max(10_000).optional(),
});

/** `retranslate [--dry-run] [--no-rebuild] [--batch-size <n>]`. */
export const parseRetranslateArgs = (argv: readonly string[]): Parsed<{ dryRun: boolean; rebuild: boolean; batchSize?: number }> =>
  attempt(() => {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: { 'dry-run': { type: 'boolean' }, 'no-rebuild': { type: 'boolean' }, 'batch-size': { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
    const parsed = retranslateArgs.parse({ positionals, dryRun: values['dry-run'] ?? false, rebuild: !values['no-rebuild'], batchSize: values['batch-size'] });
    return { dryRun: parsed.dryRun, rebuild: parsed.rebuild, ...(parsed.batchSize === undefined ? {} : { batchSize: parsed.batchSize }) };
  });
