import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byteaArrayLiteral, intArrayLiteral, textArrayLiteral } from './array-literal.js';

/** node-postgres' own encoding of a JS array parameter: the literals must be exactly what it would send. */
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (v: unknown) => unknown };

describe('array literals', () => {
  it('texts are encoded as node-postgres encodes them: quotes, backslashes, braces, commas, NULL, unicode', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('"', '\\', '{}', ',', 'NULL', ' ', '\\"x"\\')), { nil: null })), (values) => {
        expect(textArrayLiteral(values)).toBe(prepareValue(values));
      }),
    );
    expect(textArrayLiteral(['a"b\\c', null, '{x,y}'])).toBe('{"a\\"b\\\\c",NULL,"{x,y}"}');
  });

  it('byte strings and integers too', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.uint8Array(), { nil: null })), (values) => {
        const buffers = values.map((v) => (v === null ? null : Buffer.from(v)));
        expect(byteaArrayLiteral(buffers)).toBe(prepareValue(buffers));
      }),
    );
    // The driver quotes integers ('{"1"}'); PostgreSQL reads the unquoted form alike (the store's int-specs run it).
    expect(intArrayLiteral([1, -2, 30])).toBe('{1,-2,30}');
    expect(textArrayLiteral([])).toBe('{}');
  });
});
