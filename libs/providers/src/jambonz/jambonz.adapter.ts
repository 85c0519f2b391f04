import type { TranslatedEvent, TranslationContext } from '@lib/ledger';
import { TRANSLATOR_VERSIONS } from '../translator-versions.js';
import { headerValue, type ProviderAdapter, type SignatureInput, type SignatureVerdict } from '../provider-adapter.js';
import { verifyTimestampedHmac } from '../shared/timestamped-hmac.js';
import { translateJambonzWebhook } from './jambonz.translate.js';

export class JambonzAdapter implements ProviderAdapter {
  readonly provider = 'jambonz' as const;
  readonly translatorVersion = TRANSLATOR_VERSIONS.jambonz;
  constructor(private readonly webhookSecrets: readonly string[]) {}

  get verifying(): boolean {
    return this.webhookSecrets.length > 0;
  }

  verify(input: SignatureInput): SignatureVerdict {
    if (!this.verifying) return { status: 'unverified' };
    const r = verifyTimestampedHmac(headerValue(input.headers, 'jambonz-signature'), input.rawBody, this.webhookSecrets, input.nowSec);
    return r.ok ? { status: 'verified', timestamp: r.timestamp } : { status: 'rejected', reason: `Jambonz-Signature: ${r.reason}` };
  }

  translate(rawBody: Buffer, ctx: TranslationContext): TranslatedEvent[] {
    return translateJambonzWebhook(rawBody, ctx);
  }
}
