import { z } from 'zod';
import type { WebhookRecord } from '@lib/event-store';
import { PROVIDERS } from '@lib/ledger';
import type { ProviderRegistry } from '@lib/providers';
import { buildWebhookRecord, pickHeaders } from '../webhooks/webhook-record.factory.js';

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

/**
 * One NDJSON line to the record live ingest would have built for the same delivery (no signature check, source
 * `import`), or why the line is refused. Pure CPU work, kept out of the handler so that it can be measured alone
 * (bench/import-node.probe.ts).
 */
export const importLineRecord = (raw: string, maxBodyBytes: number, providers: ProviderRegistry): { record: WebhookRecord } | { error: string } => {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    return { error: `not valid JSON: ${(err as Error).message}` };
  }
  const parsed = importLineSchema.safeParse(json);
  if (!parsed.success) return { error: parsed.error.issues.map((i) => `${i.path.join('.') || 'line'}: ${i.message}`).join('; ') };
  const line = parsed.data;
  const rawBody = Buffer.from(line.body, 'utf8');
  if (rawBody.length > maxBodyBytes) return { error: `body exceeds ${maxBodyBytes} bytes` };
  const headers = pickHeaders(Object.fromEntries(Object.entries(line.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])));
  return {
    record: buildWebhookRecord(
      {
        provider: line.provider,
        rawBody,
        contentType: line.contentType ?? headers['content-type'] ?? null,
        path: line.path,
        query: line.query ?? '',
        headers,
        remoteAddr: null,
        receivedAt: new Date(line.receivedAt),
        signature: { status: 'not-checked', timestamp: null },
        source: 'import',
      },
      providers,
    ),
  };
};
