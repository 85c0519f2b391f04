import { z } from 'zod';
import { SCENARIO_KINDS, type ScenarioKind, type SimProvider } from '@lib/simulator';

/** A numeric option: absent gives the default; anything else must be a number of at least `min`. */
const num = (name: string, min: number, fallback: number) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined) return fallback;
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || n < min) {
        ctx.addIssue({ code: 'custom', message: `--${name} must be a number >= ${min}, got "${raw}"` });
        return z.NEVER;
      }
      return n;
    });

const PROVIDER_CHOICES = ['freeclimb', 'jambonz', 'twilio', 'restcomm', 'mixed'] as const;

/**
 * What `simulate.main.ts` accepts, checked after `parseArgs` has split the command line (options it knows, values
 * as strings): numbers, the provider, the scenario kinds and the base time, each refused with a message naming
 * the option.
 */
export const simulateOptionsSchema = z.object({
  provider: z.enum(PROVIDER_CHOICES, { error: (issue) => `unknown --provider "${String(issue.input)}"` }),
  calls: num('calls', 1, 100),
  days: num('days', 0, 7),
  rate: num('rate', 0.001, 20),
  'max-talk': num('max-talk', 1, 300),
  concurrency: num('concurrency', 1, 16),
  lead: num('lead', 0, 240).transform((s) => Math.min(280, s)),
  timeout: num('timeout', 1, 60),
  kinds: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined) return undefined;
      const kinds = raw.split(',').map((k) => k.trim());
      const unknown = kinds.filter((k) => !(SCENARIO_KINDS as readonly string[]).includes(k));
      if (unknown.length > 0) {
        ctx.addIssue({ code: 'custom', message: `unknown scenario kind "${unknown[0]}" (known: ${SCENARIO_KINDS.join(', ')})` });
        return z.NEVER;
      }
      return kinds as ScenarioKind[];
    }),
  'base-time': z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined) return undefined;
      const ms = Date.parse(raw);
      if (Number.isNaN(ms)) {
        ctx.addIssue({ code: 'custom', message: `--base-time is not a date: "${raw}"` });
        return z.NEVER;
      }
      return Math.floor(ms / 1000) * 1000;
    }),
});

export type SimulateOptions = Omit<z.infer<typeof simulateOptionsSchema>, 'provider'> & { provider: SimProvider | 'mixed' };

/** The checked options, or the first problem as a message for the command line. */
export const parseSimulateOptions = (values: Record<string, unknown>): { ok: true; options: SimulateOptions } | { ok: false; error: string } => {
  const r = simulateOptionsSchema.safeParse(values);
  return r.success ? { ok: true, options: r.data } : { ok: false, error: r.error.issues[0]!.message };
};
