import type { Provider } from '@lib/ledger';
import { FreeclimbAdapter } from './freeclimb/freeclimb.adapter.js';
import { JambonzAdapter } from './jambonz/jambonz.adapter.js';
import type { ProviderAdapter } from './provider-adapter.js';
import { RestcommAdapter, TwilioAdapter } from './rcml/rcml.adapter.js';

export interface ProviderSecrets {
  freeclimb: readonly string[];
  jambonz: readonly string[];
  twilio: readonly string[];
  restcomm: readonly string[];
}

export class ProviderRegistry {
  private readonly adapters: Map<Provider, ProviderAdapter>;

  constructor(secrets: ProviderSecrets, publicUrl: string | undefined) {
    this.adapters = new Map<Provider, ProviderAdapter>([
      ['freeclimb', new FreeclimbAdapter(secrets.freeclimb)],
      ['jambonz', new JambonzAdapter(secrets.jambonz)],
      ['twilio', new TwilioAdapter(secrets.twilio, publicUrl)],
      ['restcomm', new RestcommAdapter(secrets.restcomm)],
    ]);
  }

  get(provider: Provider): ProviderAdapter {
    return this.adapters.get(provider)!;
  }

  /** Providers whose deliveries are accepted without authentication: the service warns about each at start. */
  unverified(): Provider[] {
    return [...this.adapters.values()].filter((a) => !a.verifying).map((a) => a.provider);
  }
}
