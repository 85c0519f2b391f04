import { storableText } from './canonical-json.js';

/**
 * The key a distributed store shards on (docs/scaling.md, "The distribution key"): `<provider>:<account id>`, the
 * account as the provider's translator read it from the delivery (FreeClimb accountId, Twilio/Restcomm AccountSid,
 * jambonz account_sid; an app's answer carries its delivery's), or `<provider>:` when no event names one (an
 * unreadable body, a body without an account, an erasure's record). The first event that names an account decides,
 * in the delivery's event order: the rule the migration 20261204000100 backfills stored receipts by, from their
 * events' `metadata.accountId` in position order, so that a store written before and after it agrees.
 *
 * Stored text (NUL and lone surrogates replaced, as canonicalJson stores the metadata the backfill reads); never
 * hashed. A stream keeps the key of the delivery that made it, and its events carry the stream's (ledger_append).
 */
export const accountKeyOf = (provider: string, events: readonly { accountId: string | null }[]): string => {
  const named = events.find((e) => typeof e.accountId === 'string' && e.accountId !== '');
  return storableText(`${provider}:${named?.accountId ?? ''}`);
};
