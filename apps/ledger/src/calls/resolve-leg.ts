import { LedgerError, type Provider } from '@lib/ledger';
import type { StoredLeg } from './call-leg.mapper.js';
import type { CallsRepository } from './calls.repository.js';

/** The one leg a `/v1/calls/{callId}…` route is about: 404 when unknown, 409 when the id is not unique across providers. */
export const resolveLeg = async (repo: CallsRepository, callId: string, provider?: Provider): Promise<StoredLeg> => {
  const legs = await repo.findLegs(callId, provider);
  if (legs.length === 0) throw new LedgerError('CALL.NOT_FOUND', 404, `no call leg "${callId}"${provider ? ` for provider ${provider}` : ''}`);
  if (legs.length > 1) {
    const providers = legs.map((l) => l.provider);
    throw new LedgerError('CALL.AMBIGUOUS', 409, `call id "${callId}" is used by several providers (${providers.join(', ')}): pass ?provider=`, {}, { providers });
  }
  return legs[0]!;
};
