import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProjectionsArgs, parseRetranslateArgs, parseVerifyArgs } from './cli-args.js';

describe('verify CLI arguments', () => {
  it('takes the file and the key in either order and in either option form, reading a key file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'verify-args-'));
    writeFileSync(join(dir, 'key.pem'), 'PEM TEXT');
    expect(parseVerifyArgs(['a.ndjson'])).toEqual({ ok: true, value: { file: 'a.ndjson' } });
    expect(parseVerifyArgs(['a.ndjson', '--public-key', 'MCowBQ'])).toEqual({ ok: true, value: { file: 'a.ndjson', publicKey: 'MCowBQ' } });
    const pem = '-----BEGIN PUBLIC KEY-----\nMCowBQ\n-----END PUBLIC KEY-----';
    expect(parseVerifyArgs(['a.ndjson', '--public-key', pem])).toEqual({ ok: true, value: { file: 'a.ndjson', publicKey: pem } });
    expect(parseVerifyArgs([`--public-key=${join(dir, 'key.pem')}`, 'a.ndjson'])).toEqual({ ok: true, value: { file: 'a.ndjson', publicKey: 'PEM TEXT' } });
  });

  it('refuses unknown options, a missing value, no file and two files, saying why', () => {
    for (const [argv, why] of [
      [['a.ndjson', '--public-kee', 'x'], /public-kee/],
      [['a.ndjson', '--public-key'], /public-key/],
      [[], /export file/],
      [['a.ndjson', 'b.ndjson'], /export file/],
    ] as const) {
      const r = parseVerifyArgs(argv);
      expect(r.ok, argv.join(' ')).toBe(false);
      if (!r.ok) expect(r.error).toMatch(why);
    }
  });
});

describe('projections CLI arguments', () => {
  it('defaults to status, and takes rebuild with or without a name', () => {
    expect(parseProjectionsArgs([])).toEqual({ ok: true, value: { command: 'status' } });
    expect(parseProjectionsArgs(['status'])).toEqual({ ok: true, value: { command: 'status' } });
    expect(parseProjectionsArgs(['rebuild'])).toEqual({ ok: true, value: { command: 'rebuild' } });
    expect(parseProjectionsArgs(['rebuild', 'call_legs'])).toEqual({ ok: true, value: { command: 'rebuild', name: 'call_legs' } });
  });

  it('refuses an unknown command, an extra argument and any option instead of ignoring them', () => {
    for (const argv of [['rebuil'], ['status', 'x'], ['rebuild', 'a', 'b'], ['--force'], ['rebuild', '--all']]) {
      expect(parseProjectionsArgs(argv).ok, argv.join(' ')).toBe(false);
    }
  });
});

describe('retranslate CLI arguments', () => {
  it('re-translates and rebuilds by default; --dry-run, --no-rebuild and --batch-size change that', () => {
    expect(parseRetranslateArgs([])).toEqual({ ok: true, value: { dryRun: false, rebuild: true } });
    expect(parseRetranslateArgs(['--dry-run'])).toEqual({ ok: true, value: { dryRun: true, rebuild: true } });
    expect(parseRetranslateArgs(['--no-rebuild', '--batch-size=50'])).toEqual({ ok: true, value: { dryRun: false, rebuild: false, batchSize: 50 } });
    expect(parseRetranslateArgs(['--batch-size', '7'])).toEqual({ ok: true, value: { dryRun: false, rebuild: true, batchSize: 7 } });
  });

  it('refuses arguments, unknown options and a bad batch size, saying why', () => {
    for (const argv of [['now'], ['--dryrun'], ['--batch-size'], ['--batch-size', '0'], ['--batch-size', 'x'], ['--batch-size', '2.5']]) {
      const r = parseRetranslateArgs(argv);
      expect(r.ok, argv.join(' ')).toBe(false);
      if (!r.ok) expect(r.error).toMatch(/\S/);
    }
  });
});
