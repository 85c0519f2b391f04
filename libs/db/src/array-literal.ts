/**
 * An array parameter as PostgreSQL's array literal, written by JSON.stringify instead of by pg. pg serializes each
 * element of an array parameter on its own (prepareValue, then escapeElement's two regular expressions and the
 * quoting), which was about 13 µs of the projector's CPU per event for the call-legs upsert's 35 arrays
 * (bench/profile-notes.md). The text sent is the literal pg would send for the same values, so PostgreSQL parses the
 * same thing: for strings, JSON's escapes of `"` and `\` are the array literal's; `null` unquoted is NULL; numbers and
 * booleans are spelled as pg spells them. What JSON spells otherwise falls back to pg's own path (the array itself):
 * control characters and lone surrogates (JSON writes `\n`, `\uXXXX`, which the literal would read as `n`, `uXXXX`),
 * non-finite numbers (JSON writes null), and any other kind of value (Date, bigint, Buffer, nested arrays, objects).
 */
export const arrayLiteral = <T>(values: readonly T[]): string | readonly T[] => {
  for (const v of values) {
    const t = typeof v;
    if (v === null || v === undefined || t === 'string' || t === 'boolean') continue;
    if (t === 'number' && Number.isFinite(v)) continue;
    return values;
  }
  const json = JSON.stringify(values);
  // A backslash before one of these letters is one of JSON's own escapes (or, harmlessly, an escaped backslash before one).
  if (/\\[bfnrtu]/.test(json)) return values;
  return `{${json.slice(1, -1)}}`;
};
