import { byArrival, type Delivery } from './delivery.js';
import { expectOutcome, type ExpectedOutcome } from './expected-outcome.js';
import { renderFreeclimb } from './render/freeclimb.renderer.js';
import { renderJambonz } from './render/jambonz.renderer.js';
import { renderRcml } from './render/rcml.renderer.js';
import { generateCalls, type GenerateOptions, type SimCall } from './scenario.js';

export interface SimulationRun {
  calls: SimCall[];
  /** Every delivery, retries included, in arrival order. */
  deliveries: Delivery[];
  expected: ExpectedOutcome;
}

export const renderCall = (call: SimCall, seed: string): Delivery[] => {
  switch (call.provider) {
    case 'freeclimb':
      return renderFreeclimb(call, seed);
    case 'jambonz':
      return renderJambonz(call, seed);
    case 'twilio':
    case 'restcomm':
      return renderRcml(call, seed);
  }
};

export interface SimulateOptions extends GenerateOptions {
  /**
   * Import only, a backfill: every line is received at this time (epoch ms), 1 ms apart in arrival order, while the
   * calls keep their own past. Only the clocks in the bodies then date them: Restcomm's CallTimestamp and Timestamp,
   * Twilio's Timestamp and the start implied by end − duration. An import carries no signature, so FreeClimb and
   * jambonz calls (whose only clock is the signed `t`) are dated by the import (docs/providers.md, clocks).
   */
  importedAtMs?: number;
}

/** Scenario -> deliveries -> expectation, all pure: the same options give byte-identical output. */
export function simulate(opts: SimulateOptions): SimulationRun {
  const calls = generateCalls(opts);
  const deliveries = calls.flatMap((c) => renderCall(c, opts.seed)).sort(byArrival);
  const importedAtMs = opts.mode === 'import' ? opts.importedAtMs : undefined;
  if (importedAtMs !== undefined) deliveries.forEach((d, i) => (d.receivedAtMs = importedAtMs + i));
  const expected = expectOutcome({ seed: opts.seed, mode: opts.mode, baseTimeMs: opts.baseTimeMs, calls, deliveries, importedAtMs });
  return { calls, deliveries, expected };
}

/** One `/v1/import` NDJSON line (apps/ledger/src/import/import-line.schema.ts). */
export const importLine = (d: Delivery): string =>
  JSON.stringify({
    provider: d.provider,
    receivedAt: new Date(d.receivedAtMs).toISOString(),
    contentType: d.contentType,
    body: d.body,
    path: d.path,
    ...(d.query ? { query: d.query } : {}),
  });
