import { LedgerError, type Provider } from '@lib/ledger';
import type { StoredLeg } from './call-leg.mapper.js';
import type { CallsRepository } from './calls.repository.js';

/** The one leg among those carrying a call id: 404 when there is none, 409 (listing the providers) when several. */
export const pickLeg = (callId: string, provider: Provider | undefined, legs: readonly StoredLeg[]): StoredLeg => {
  if (legs.length === 0) throw new LedgerError('CALL.NOT_FOUND', `no call leg "${callId}"${provider ? ` for provider ${provider}` : ''}`);
  if (legs.length > 1) {
    const providers = legs.map((l) => l.provider).sort();
    throw new LedgerError('CALL.AMBIGUOUS', `call id "${callId}" is used by several providers (${providers.join(', ')}): pass ?provider=`, { details: { providers } });
  }
  return legs[0]!;
};

/** The one leg a `/v1/calls/{callId}…` route is about. */
export const resolveLeg = async (repo: CallsRepository, callId: string, provider?: Provider): Promise<StoredLeg> =>
  pickLeg(callId, provider, await repo.findLegs(callId, provider));
