import { z } from 'zod';
import { PROVIDERS } from '@lib/ledger';

/** One historical webhook per NDJSON line; the body is the raw request body as a string. */
export const importLineSchema = z.strictObject({
  provider: z.enum(PROVIDERS),
  receivedAt: z.iso.datetime({ offset: true }),
  contentType: z.string().max(200).nullish(),
  body: z.string(),
  path: z
    .string()
    .max(500)
    .optional()
    .transform((p) => (p ?? '').replace(/^\/+/, '')),
  query: z.string().max(2000).optional(),
  headers: z.record(z.string(), z.string()).optional(),
});

export type ImportLine = z.infer<typeof importLineSchema>;
