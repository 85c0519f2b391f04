/**
 * Retention of raw deliveries (README "Partitions and retention"). `LEDGER_RETENTION` is a comma-separated list of
 * rules, most specific first-class:
 *
 *   raw=400d                      every provider and account (the default rule)
 *   raw:twilio=90d                one provider's receipts and events
 *   raw:twilio:AC123=30d          one account of one provider
 *   raw:jambonz:acct-7=keep       never dropped
 *
 * The most specific rule that matches a delivery's (provider, account) applies; without one (and no `raw=`) its data
 * is kept. What is dropped is whole months of the partitioned store, and one month holds every provider and account:
 * a month is dropped once the SHORTEST retention among the (provider, account) pairs present in it has passed since
 * the month's end (a limit on how long data may be kept is met for everyone). Data under longer rules leaves the live
 * store with it and stays in the month's archive, whose manifest says until when each pair must be kept.
 */
export type RetentionDays = number | 'keep';

export interface RetentionPolicy {
  /** The `raw=` rule; undefined: data no rule names is kept. */
  defaultDays?: RetentionDays;
  providers: Record<string, RetentionDays>;
  /** Key: `${provider}:${accountId}`. */
  accounts: Record<string, RetentionDays>;
}

const DAY_MS = 86_400_000;

/** Parses LEDGER_RETENTION; throws with the offending rule on a bad one. Empty text: no rule (everything kept). */
export const parseRetentionPolicy = (text: string): RetentionPolicy => {
  const policy: RetentionPolicy = { providers: {}, accounts: {} };
  for (const raw of text.split(',')) {
    const rule = raw.trim();
    if (rule === '') continue;
    const m = /^raw(?::([a-z0-9_-]+)(?::([^=:\s]+))?)?\s*=\s*(?:(\d{1,6})d|(keep))$/i.exec(rule);
    if (!m) throw new Error(`LEDGER_RETENTION: "${rule}" is not raw[:<provider>[:<account>]]=<days>d|keep`);
    const [, provider, account, days, keep] = m;
    const value: RetentionDays = keep ? 'keep' : Number(days);
    if (value === 0) throw new Error(`LEDGER_RETENTION: "${rule}": a retention of 0 days would drop the month being written`);
    if (provider && account) policy.accounts[`${provider.toLowerCase()}:${account}`] = value;
    else if (provider) policy.providers[provider.toLowerCase()] = value;
    else policy.defaultDays = value;
  }
  return policy;
};

export const hasRetention = (p: RetentionPolicy): boolean =>
  typeof p.defaultDays === 'number' || [...Object.values(p.providers), ...Object.values(p.accounts)].some((d) => typeof d === 'number');

/** The rule that applies to one (provider, account): the account's, else the provider's, else the default, else keep. */
export const retentionFor = (p: RetentionPolicy, provider: string, accountId: string | null): RetentionDays => {
  const prov = provider.toLowerCase();
  if (accountId !== null) {
    const a = p.accounts[`${prov}:${accountId}`];
    if (a !== undefined) return a;
  }
  return p.providers[prov] ?? p.defaultDays ?? 'keep';
};

export interface MonthScope {
  provider: string;
  accountId: string | null;
}

export interface MonthRetention {
  /** May the month's partitions be dropped now? */
  expired: boolean;
  /** When it may be dropped (the shortest rule's end), or null when every pair present is kept. */
  dropAt: Date | null;
  /** Each pair's rule and until when its data must be kept (in the archive once the month is dropped). */
  pairs: { provider: string; accountId: string | null; days: RetentionDays; keepUntil: string | null }[];
}

/**
 * The decision for one month [monthStart, next month) holding the given (provider, account) pairs. A month with no
 * pair (no event) follows the default rule. The month's end is its first instant after it, in UTC.
 */
export const monthRetention = (p: RetentionPolicy, monthStart: Date, scopes: readonly MonthScope[], now: Date): MonthRetention => {
  const end = Date.UTC(monthStart.getUTCFullYear(), monthStart.getUTCMonth() + 1, 1);
  const pairs = (scopes.length ? scopes : [{ provider: '', accountId: null }]).map((s) => {
    const days = s.provider === '' ? (p.defaultDays ?? 'keep') : retentionFor(p, s.provider, s.accountId);
    return { provider: s.provider, accountId: s.accountId, days, keepUntil: days === 'keep' ? null : new Date(end + days * DAY_MS).toISOString() };
  });
  const numeric = pairs.flatMap((x) => (x.days === 'keep' ? [] : [x.days]));
  if (numeric.length === 0) return { expired: false, dropAt: null, pairs };
  const dropAt = new Date(end + Math.min(...numeric) * DAY_MS);
  return { expired: dropAt.getTime() <= now.getTime(), dropAt, pairs };
};
