/**
 * `npm run simulate -- [options]`: generates CPaaS call traffic (README, "Simulator"), posts it live or writes an
 * import file, writes the expected outcome, and checks a running ledger against it.
 */
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { expectIntent, formatDifference, importLine, simulate, type ExpectedOutcome } from '@lib/simulator';
import { runCheck } from './check-runner.js';
import { parseSimulateOptions } from './simulate.args.js';
import { sendLive } from './live-sender.js';
import { startTeeApp } from './tee-app.js';

const HELP = `Usage: npm run simulate -- [options]

Generate calls (seeded, deterministic) and their provider webhooks:
  --provider P       freeclimb | jambonz | twilio | restcomm | mixed (default mixed)
  --calls N          number of calls (default 100)
  --seed S           PRNG seed; same seed + same base time = same traffic (default 1)
  --base-time ISO    live: start of the traffic (default now); --out: end of the --days window
                     (default today 00:00 UTC). Pass it for output that is identical across days.
  --days D           --out only: spread calls over D days before the base time (default 7)
  --rate R           live only: mean new calls per second (default 20)
  --max-talk SEC     longest talk time of a leg (default 300)
  --kinds K,K        only these scenario kinds (default all; see README)

Deliver (one of):
  --target URL       post live to URL/v1/webhooks/<provider>/..., signed as each provider signs
  --out FILE         write NDJSON lines for POST /v1/import (with --target --api-key --import: upload it too)
  --backfill         --out only: every line's receivedAt is the import time (now, or --import-time), while
                     the calls keep their own past: only clocks in the bodies can date them
  --import-time ISO  --backfill: the receivedAt of the first line (1 ms more per line; default now)
  --public-url URL   the URL Twilio signs (default = --target)
  --concurrency C    requests in flight (default 16)
  --lead SEC         live: send up to SEC seconds before the simulated send time (default 240, max 280)
  --tee              live only: post to URL/v1/tee/<provider>/... and run the app behind the ledger here: it
                     checks each delivery's signature and answers with dial commands (PerCL OutDial, jambonz
                     dial, RCML/TwiML <Dial>) that lead to the scenario's child legs. The ledger must have
                     LEDGER_TEE_<PROVIDER>_URL=http://127.0.0.1:<app port>/<provider> (printed at start).
                     The expectation then holds each call's intent, which --check compares with the tree
  --app-port N       --tee: port of the app (default 8090)
  --freeclimb-secret, --jambonz-secret, --twilio-token, --restcomm-token
                     secrets to sign with (default: the first value of FREECLIMB_SIGNING_SECRET,
                     JAMBONZ_WEBHOOK_SECRET, TWILIO_AUTH_TOKEN, RESTCOMM_WEBHOOK_TOKEN)

Expect and check:
  --expect FILE      write (or, with --check, read) the expected outcome, JSON
  --check            compare a running ledger (--target, --api-key) with --expect; exit 1 on any difference
  --api-key KEY      Bearer key for /v1/import, /v1/calls, /v1/analytics (default: first of LEDGER_API_KEYS)
  --timeout SEC      --check: wait at most SEC for projections to catch up (default 60)
  -h, --help         this text
`;

const fail = (message: string): never => {
  process.stderr.write(`simulate: ${message}\n`);
  process.exit(2);
};

const firstOf = (value: string | undefined): string | undefined => value?.split(',')[0]?.trim() || undefined;
/** The key of the first LEDGER_API_KEYS entry, plain (`<key>`) or named (`<name>:<scopes>:<key>`). */
const firstApiKey = (value: string | undefined): string | undefined => {
  const entry = firstOf(value);
  return entry ? (/^[A-Za-z0-9_.-]{1,64}:[a-z+]+:(.*)$/s.exec(entry)?.[1] ?? entry) : undefined;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      provider: { type: 'string', default: 'mixed' },
      calls: { type: 'string' },
      seed: { type: 'string', default: '1' },
      'base-time': { type: 'string' },
      days: { type: 'string' },
      rate: { type: 'string' },
      'max-talk': { type: 'string' },
      kinds: { type: 'string' },
      target: { type: 'string' },
      out: { type: 'string' },
      import: { type: 'boolean', default: false },
      backfill: { type: 'boolean', default: false },
      'import-time': { type: 'string' },
      'public-url': { type: 'string' },
      concurrency: { type: 'string' },
      lead: { type: 'string' },
      'freeclimb-secret': { type: 'string' },
      'jambonz-secret': { type: 'string' },
      'twilio-token': { type: 'string' },
      'restcomm-token': { type: 'string' },
      expect: { type: 'string' },
      check: { type: 'boolean', default: false },
      'api-key': { type: 'string' },
      timeout: { type: 'string' },
      tee: { type: 'boolean', default: false },
      'app-port': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const parsed = parseSimulateOptions(values);
  if (!parsed.ok) return fail(parsed.error);
  const opts = parsed.options;
  const apiKey = values['api-key'] ?? firstApiKey(process.env.LEDGER_API_KEYS);
  const concurrency = opts.concurrency;
  const progress = (line: string) => process.stderr.write(`${line}\n`);

  if (values.check) {
    if (!values.target || !values.expect || !apiKey) fail('--check needs --target, --expect and --api-key');
    const expected = JSON.parse(await readFile(values.expect!, 'utf8')) as ExpectedOutcome;
    const started = Date.now();
    const result = await runCheck(expected, { target: values.target!, apiKey: apiKey!, concurrency, timeoutMs: opts.timeout * 1000, progress });
    for (const e of result.errors) process.stdout.write(`error: ${e}\n`);
    for (const d of result.differences) process.stdout.write(`difference: ${formatDifference(d)}\n`);
    process.stdout.write(`checked ${result.callsChecked} calls and the KPIs in ${Date.now() - started} ms: ${result.differences.length} differences, ${result.errors.length} errors\n`);
    process.exitCode = result.differences.length + result.errors.length > 0 ? 1 : 0;
    return;
  }

  if (!values.target && !values.out) fail('give --target (post live) or --out (import file); see --help');
  if (values.target && values.out && !values.import) fail('--target and --out together only with --import (upload the file); see --help');
  const mode = values.out ? 'import' : 'live';
  const { provider, kinds } = opts;
  let baseTimeMs: number;
  if (opts['base-time'] !== undefined) {
    baseTimeMs = opts['base-time'];
  } else {
    // The default is the only wall-clock read; it is written to the expectation so the run can be replayed.
    const now = Date.now();
    baseTimeMs = mode === 'live' ? Math.floor(now / 1000) * 1000 : Math.floor(now / 86_400_000) * 86_400_000;
  }

  if ((values.backfill || values['import-time']) && mode !== 'import') fail('--backfill and --import-time need --out (an import file)');
  if (values['import-time'] && !values.backfill) fail('--import-time only with --backfill');
  let importedAtMs: number | undefined;
  if (values.backfill) {
    importedAtMs = values['import-time'] ? Date.parse(values['import-time']) : Date.now();
    if (Number.isNaN(importedAtMs)) fail(`--import-time is not a date: "${values['import-time']}"`);
  }

  const t0 = Date.now();
  const run = simulate({
    importedAtMs,
    seed: values.seed!,
    calls: opts.calls,
    provider,
    baseTimeMs,
    mode,
    days: opts.days,
    rate: opts.rate,
    maxTalkSec: opts['max-talk'],
    kinds,
  });
  const legs = run.expected.calls.reduce((s, c) => s + c.legs.length, 0);
  progress(`generated ${run.calls.length} calls, ${legs} legs, ${run.deliveries.length} deliveries (${run.expected.retries} retries) in ${Date.now() - t0} ms`);

  const secrets = {
    freeclimb: values['freeclimb-secret'] ?? firstOf(process.env.FREECLIMB_SIGNING_SECRET),
    jambonz: values['jambonz-secret'] ?? firstOf(process.env.JAMBONZ_WEBHOOK_SECRET),
    twilio: values['twilio-token'] ?? firstOf(process.env.TWILIO_AUTH_TOKEN),
    restcomm: values['restcomm-token'] ?? firstOf(process.env.RESTCOMM_WEBHOOK_TOKEN),
  };

  if (values.tee && mode !== 'live') fail('--tee only posts live (give --target, not --out)');
  const appPort = values['app-port'] === undefined ? 8090 : Number(values['app-port']);
  if (!Number.isInteger(appPort) || appPort < 0 || appPort > 65_535) fail(`--app-port must be a port number, got "${values['app-port']}"`);
  const teeApp = values.tee ? await startTeeApp(run.calls, secrets, appPort) : null;
  if (teeApp) {
    for (const c of run.expected.calls) {
      const intent = expectIntent(run.calls.find((x) => x.index === c.index)!);
      if (intent.length > 0) c.intent = intent;
    }
    const used = [...new Set(run.calls.map((c) => c.provider))];
    progress(`tee: the app listens on ${teeApp.base}; the ledger needs ${used.map((p) => `LEDGER_TEE_${p.toUpperCase()}_URL=${teeApp.base}/${p}`).join(' ')}`);
  }

  if (mode === 'live') {
    const leadSec = opts.lead;
    const result = await sendLive(run.deliveries, {
      route: teeApp ? 'tee' : 'webhooks',
      target: values.target!,
      publicUrl: values['public-url'] ?? values.target!,
      secrets,
      concurrency,
      leadMs: leadSec * 1000,
      now: () => Date.now(),
      progress,
    });
    for (const e of result.firstErrors) progress(`error: ${e}`);
    progress(`sent ${result.sent} deliveries in ${(result.elapsedMs / 1000).toFixed(1)} s: ${result.ok} ok (${result.duplicates} duplicates), ${result.errors} errors; max position ${result.maxPosition}`);
    if (result.maxPosition) run.expected.maxPosition = result.maxPosition;
    if (result.errors > 0) process.exitCode = 1;
    if (teeApp) {
      await teeApp.close();
      const s = teeApp.stats;
      for (const r of s.firstRefusals) progress(`tee: the app refused ${r}`);
      progress(`tee: the app got ${s.requests} deliveries, ${s.verified} with a signature that verified, ${s.refused} refused`);
      if (s.refused > 0 || s.requests !== result.sent) process.exitCode = 1;
    }
  } else {
    const t1 = Date.now();
    const file = createWriteStream(values.out!);
    for (const d of run.deliveries) if (!file.write(`${importLine(d)}\n`)) await once(file, 'drain');
    file.end();
    await once(file, 'finish');
    progress(`wrote ${run.deliveries.length} import lines to ${values.out} in ${Date.now() - t1} ms`);
    if (values.import) {
      if (!values.target || !apiKey) fail('--import needs --target and --api-key');
      const res = await fetch(`${values.target!.replace(/\/+$/, '')}/v1/import`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/x-ndjson' },
        body: await readFile(values.out!),
      });
      const text = await res.text();
      progress(`POST /v1/import answered ${res.status}: ${text.slice(0, 300)}`);
      if (res.status !== 200) process.exitCode = 1;
    }
  }

  if (values.expect) {
    await writeFile(values.expect, `${JSON.stringify(run.expected, null, 1)}\n`);
    progress(`wrote the expected outcome (${run.expected.calls.length} calls, ${legs} legs) to ${values.expect}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`simulate: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
