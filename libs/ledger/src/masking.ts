/**
 * Masking for support staff (API keys of scope `read-masked`, README "Masking in reads"): every number served is
 * reduced to its last four digits. Pure: the edge (apps/ledger/src/common/masking.hook.ts) applies it.
 */

/** The marker an erasure leaves (libs/event-store personal-seals.ts `ERASED`): nothing left to mask. */
const ERASED = '[erased]';

/**
 * A number or SIP URI as a masked reader sees it: every letter and digit but the last four replaced by `*`,
 * punctuation kept (`+13125550147` → `+*******0147`; `sip:alice@example.com` → `***:*****@*******.*com`).
 */
export const maskNumber = (value: string): string => {
  if (value === ERASED) return value;
  let keep = 4;
  const chars = [...value];
  for (let i = chars.length - 1; i >= 0; i--) {
    if (!/[0-9A-Za-z]/.test(chars[i]!)) continue;
    if (keep > 0) keep -= 1;
    else chars[i] = '*';
  }
  return chars.join('');
};

/**
 * Numbers inside free text (a raw webhook body, JSON or form-encoded): every run of 6 to 15 digits that stands
 * alone (not inside an id such as `CA5f3e…`), with its `+` or `%2B`, keeps its last four digits; the user part of a
 * `sip:`/`tel:` URI is masked as a whole. Long digit runs that are not numbers (epoch seconds) are masked too:
 * over-masking is the safe side for a reader who must not see numbers.
 */
export const maskText = (text: string): string =>
  text
    .replace(/\b(sips?:|tel:)([^@;>"&\s]+)/gi, (_m, scheme: string, user: string) => `${scheme}${maskNumber(user)}`)
    .replace(/(?:(?<=%2[Bb])|(?<![0-9A-Za-z]))\d{6,15}(?![0-9A-Za-z])/g, (digits) => '*'.repeat(digits.length - 4) + digits.slice(-4));

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;
/** Keys whose string values are numbers or SIP URIs wherever they appear in a served document. */
const NUMBER_KEYS = new Set(['from', 'to', 'fromNumber', 'toNumber', 'callerId', 'caller', 'called', 'number']);
/** Keys whose string values are free text that may quote numbers (raw bodies, app answers, speech, digits). */
const TEXT_KEYS = new Set(['body', 'text', 'digits', 'query', 'instructions']);

/**
 * A served JSON document with every number masked: values under number keys, `targets[].value` of a dial, free
 * text under text keys (an unparsed body is text). Anything else is copied as it is.
 */
export const maskDocument = (value: unknown, key?: string): unknown => {
  if (typeof value === 'string') {
    // A window's `from`/`to` is a time, not a number.
    if (key !== undefined && NUMBER_KEYS.has(key)) return ISO_TIME.test(value) ? value : maskNumber(value);
    if (key !== undefined && TEXT_KEYS.has(key)) return maskText(value);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => maskDocument(v, key));
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = key === 'targets' && k === 'value' && typeof v === 'string' ? maskNumber(v) : maskDocument(v, k);
    return out;
  }
  return value;
};
