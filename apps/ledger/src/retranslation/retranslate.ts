import type { Database } from '@lib/db';
import { retranslateStore, type RetranslateOptions, type RetranslateReport } from '@lib/event-store';
import { TRANSLATOR_VERSIONS, translateDelivery, type ProviderRegistry } from '@lib/providers';

/**
 * Re-translation with the adapters this process ingests with (the service at start, `npm run retranslate`): the
 * stored body, path, query and content type go through the same translator and number bounds as at ingest. The
 * signature is not checked again: the receipt keeps the verdict it got.
 */
export const retranslateWithAdapters = (
  db: Database,
  providers: ProviderRegistry,
  options: Omit<RetranslateOptions, 'versions' | 'translate'> = {},
): Promise<RetranslateReport> =>
  retranslateStore(db, {
    ...options,
    versions: TRANSLATOR_VERSIONS,
    translate: (d) => translateDelivery(providers.get(d.provider), d),
  });
