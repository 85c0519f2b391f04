import type { TranslatedEvent, TranslationContext } from '@lib/ledger';
import { TRANSLATOR_VERSIONS } from '../translator-versions.js';
import { headerValue, type ProviderAdapter, type SignatureInput, type SignatureVerdict } from '../provider-adapter.js';
import { verifyTimestampedHmac } from '../shared/timestamped-hmac.js';
import { translateFreeclimbWebhook } from './freeclimb.translate.js';

export class FreeclimbAdapter implements ProviderAdapter {
  readonly provider = 'freeclimb' as const;
  readonly translatorVersion = TRANSLATOR_VERSIONS.freeclimb;
  constructor(private readonly signingSecrets: readonly string[]) {}

  get verifying(): boolean {
    return this.signingSecrets.length > 0;
  }

  verify(input: SignatureInput): SignatureVerdict {
    if (!this.verifying) return { status: 'unverified' };
    const r = verifyTimestampedHmac(headerValue(input.headers, 'freeclimb-signature'), input.rawBody, this.signingSecrets, input.nowSec);
    return r.ok ? { status: 'verified', timestamp: r.timestamp } : { status: 'rejected', reason: `FreeClimb-Signature: ${r.reason}` };
  }

  translate(rawBody: Buffer, ctx: TranslationContext): TranslatedEvent[] {
    return translateFreeclimbWebhook(rawBody, ctx);
  }
}
