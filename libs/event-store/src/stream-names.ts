import { isProvider, type Provider } from '@lib/ledger';

/**
 * The one spelling of stream names: `<category>-<provider>:<id>` (Message DB's convention: only the first `-`
 * separates the category, so ids may hold any character, `-` and `:` included).
 * - `callLeg-<provider>:<legId>`: a leg's own events, folded by the leg projections;
 * - `appAnswers-<provider>:<legId>` (`-` when the leg is unknown): the app's answers on that leg (tee mode),
 *   beside the leg's stream so that the leg projections never fold them;
 * - `unrecognized-<provider>`: deliveries whose call id could not be read.
 */
export type StreamName =
  | { category: 'callLeg'; provider: Provider; legId: string }
  | { category: 'appAnswers'; provider: Provider; legId: string | null }
  | { category: 'unrecognized'; provider: Provider };

export const streamNameOf = (s: StreamName): string =>
  s.category === 'unrecognized' ? `unrecognized-${s.provider}` : `${s.category}-${s.provider}:${s.legId ?? '-'}`;

export const legStreamName = (provider: Provider, legId: string): string => streamNameOf({ category: 'callLeg', provider, legId });
export const appAnswersStreamName = (provider: Provider, legId: string | null): string => streamNameOf({ category: 'appAnswers', provider, legId });
export const unrecognizedStreamName = (provider: Provider): string => streamNameOf({ category: 'unrecognized', provider });

/** The inverse of `streamNameOf`; null for a name of no known category or provider. */
export const parseStreamName = (name: string): StreamName | null => {
  const dash = name.indexOf('-');
  if (dash < 0) return null;
  const category = name.slice(0, dash);
  const rest = name.slice(dash + 1);
  if (category === 'unrecognized') return isProvider(rest) ? { category, provider: rest } : null;
  if (category !== 'callLeg' && category !== 'appAnswers') return null;
  const colon = rest.indexOf(':');
  const provider = colon < 0 ? '' : rest.slice(0, colon);
  if (!isProvider(provider)) return null;
  const id = rest.slice(colon + 1);
  if (category === 'callLeg') return id === '' ? null : { category, provider, legId: id };
  return { category, provider, legId: id === '-' ? null : id };
};

/** The leg a stream is about (its own events or the app's answers on it); null for the others. */
export const legOfStreamName = (name: string): { provider: Provider; legId: string } | null => {
  const s = parseStreamName(name);
  return s && s.category !== 'unrecognized' && s.legId !== null ? { provider: s.provider, legId: s.legId } : null;
};

/** Whether a stream is one of `provider`'s (its legs, its apps' answers, its unrecognized deliveries). */
export const isStreamOfProvider = (name: string, provider: Provider): boolean => parseStreamName(name)?.provider === provider;

/** The names of the streams about one leg id, for each provider given: its own, and its app answers'. */
export const streamNamesOfLeg = (providers: readonly Provider[], legId: string): string[] =>
  providers.flatMap((p) => [legStreamName(p, legId), appAnswersStreamName(p, legId)]);

/** `LIKE` patterns of a category's streams (`_` and `%` in a provider name cannot occur: providers are a fixed list). */
export const streamNameLikeOf = (category: 'callLeg' | 'appAnswers', provider?: Provider): string => `${category}-${provider ? `${provider}:` : ''}%`;
