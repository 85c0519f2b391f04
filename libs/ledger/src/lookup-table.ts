/**
 * A table looked up by text that came from a provider or an app. A plain object literal answers for keys it
 * inherits: `ANSWERED_BY['toString']` is a function, not undefined, so a webhook carrying `AnsweredBy=toString`
 * was read as a machine-detection result (found by the translator property test). A null prototype leaves
 * only the table's own keys.
 */
export const lookupTable = <T>(entries: Record<string, T>): Readonly<Partial<Record<string, T>>> =>
  Object.freeze(Object.assign(Object.create(null) as Record<string, T>, entries));
