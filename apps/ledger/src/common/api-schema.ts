import { z } from 'zod';

/** JSON Schema (draft 2020-12, as OpenAPI 3.1 uses it) of a zod schema, with named sub-schemas as components. */
export type JsonSchema = Record<string, unknown>;

/**
 * Schemas that carry `.meta({ id })` become `#/components/schemas/<id>`; every conversion adds what it found
 * here, and the OpenAPI setup publishes the lot, so a route's docs and its validation come from one zod value.
 */
export const componentSchemas: Record<string, JsonSchema> = {};

const DEFS = '#/$defs/';
const COMPONENTS = '#/components/schemas/';

const rewriteRefs = (node: unknown): unknown => {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === '$ref' && typeof v === 'string' && v.startsWith(DEFS) ? COMPONENTS + v.slice(DEFS.length) : rewriteRefs(v);
  }
  return out;
};

/**
 * `io: 'input'` for what clients send (query strings before coercion), `'output'` for what we answer.
 * A root schema that has an id is answered as a `$ref` to its component, which also keeps recursive
 * schemas (the call tree) valid outside their own document.
 */
export const toOpenApiSchema = (schema: z.ZodType, io: 'input' | 'output' = 'output'): JsonSchema => {
  const { $schema: _s, $defs, ...root } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema & { $defs?: Record<string, JsonSchema> };
  for (const [id, def] of Object.entries($defs ?? {})) componentSchemas[id] = rewriteRefs(def) as JsonSchema;
  return rewriteRefs(root) as JsonSchema;
};

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().describe('stable machine-readable code, e.g. QUERY.INVALID_PARAMETER'),
      message: z.string().describe('human-readable; for a bad parameter it names the parameter'),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: 'Error', description: 'Every error the API answers with.' });

export const isoDateTime = z.iso.datetime().describe('ISO-8601 UTC');
/** int8's largest value: a position above it cannot exist, and PostgreSQL refuses to cast it (a 500 before). */
export const MAX_POSITION = 9223372036854775807n;
export const isPositionText = (raw: unknown): raw is string => typeof raw === 'string' && /^\d{1,19}$/.test(raw) && BigInt(raw) <= MAX_POSITION;

export const position = z.string().regex(/^\d+$/).describe('global position in the event store (int8 as a decimal string)');
