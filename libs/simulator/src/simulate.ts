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

/** Scenario -> deliveries -> expectation, all pure: the same options give byte-identical output. */
export function simulate(opts: GenerateOptions): SimulationRun {
  const calls = generateCalls(opts);
  const deliveries = calls.flatMap((c) => renderCall(c, opts.seed)).sort(byArrival);
  const expected = expectOutcome({ seed: opts.seed, mode: opts.mode, baseTimeMs: opts.baseTimeMs, calls, deliveries });
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
