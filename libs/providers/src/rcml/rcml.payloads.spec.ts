import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { rcmlWebhookSchema } from './rcml.payloads.js';

/**
 * The translator reads a form's fields as they are (rcml.translate.ts), not through rcmlWebhookSchema.safeParse:
 * that is only the same while every declared parameter is an optional string with no check or transform.
 */
describe('rcmlWebhookSchema', () => {
  it('declares every parameter an optional string, with no check or transform', () => {
    for (const [name, schema] of Object.entries(rcmlWebhookSchema.shape)) {
      expect(schema, name).toBeInstanceOf(z.ZodOptional);
      const inner = (schema as z.ZodOptional<z.ZodType>).unwrap();
      expect(inner, name).toBeInstanceOf(z.ZodString);
      expect((inner as z.ZodString)._zod.def.checks ?? [], name).toEqual([]);
    }
  });

  it('parses any record of strings to the same value for every parameter, and fails on none', () => {
    const names = [...Object.keys(rcmlWebhookSchema.shape), 'SipHeader_X-Foo', 'Called', 'toString', 'constructor'];
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...names), fc.string({ unit: 'binary' })), (record) => {
        const fields = Object.assign(Object.create(null) as Record<string, string>, record);
        const parsed = rcmlWebhookSchema.safeParse(fields);
        expect(parsed.success).toBe(true);
        for (const name of Object.keys(rcmlWebhookSchema.shape)) {
          expect((parsed.data as Record<string, unknown>)[name]).toBe(fields[name]);
          expect(Object.prototype.hasOwnProperty.call(parsed.data, name)).toBe(Object.prototype.hasOwnProperty.call(fields, name));
        }
      }),
    );
  });
});
