import type { TranslatedEvent, TranslationContext } from '@lib/ledger';
import { TRANSLATOR_VERSIONS } from '../translator-versions.js';
import { headerValue, type ProviderAdapter, type SignatureInput, type SignatureVerdict } from '../provider-adapter.js';
import { translateRcmlWebhook } from './rcml.translate.js';
import { verifyRestcommToken, verifyTwilioSignature } from './twilio.signature.js';

export const formPairs = (raw: Buffer): Array<[string, string]> => [...new URLSearchParams(raw.toString('utf8')).entries()];

/**
 * Twilio signs the URL it called plus the sorted form parameters (HMAC-SHA1), so the URL must be rebuilt
 * as the platform saw it: LEDGER_PUBLIC_URL when set (behind proxies the Host header lies), else the
 * forwarded or direct Host.
 */
export class TwilioAdapter implements ProviderAdapter {
  readonly provider = 'twilio' as const;
  readonly translatorVersion = TRANSLATOR_VERSIONS.twilio;
  constructor(
    private readonly authTokens: readonly string[],
    private readonly publicUrl: string | undefined,
  ) {}

  get verifying(): boolean {
    return this.authTokens.length > 0;
  }

  verify(input: SignatureInput): SignatureVerdict {
    if (!this.verifying) return { status: 'unverified' };
    const r = verifyTwilioSignature(headerValue(input.headers, 'x-twilio-signature'), this.signedUrl(input), formPairs(input.rawBody), this.authTokens);
    return r.ok ? { status: 'verified', timestamp: null } : { status: 'rejected', reason: `X-Twilio-Signature: ${r.reason}` };
  }

  /**
   * The token a delivery was signed with, or null: tee mode signs the request it forwards to the app with the
   * same token, for the app's URL (each token is checked on its own, in constant time).
   */
  signingToken(input: SignatureInput): string | null {
    const header = headerValue(input.headers, 'x-twilio-signature');
    const params = formPairs(input.rawBody);
    return this.authTokens.find((token) => verifyTwilioSignature(header, this.signedUrl(input), params, [token]).ok) ?? null;
  }

  private signedUrl(input: SignatureInput): string {
    const base =
      this.publicUrl ??
      `${headerValue(input.headers, 'x-forwarded-proto') ?? 'http'}://${headerValue(input.headers, 'x-forwarded-host') ?? headerValue(input.headers, 'host') ?? 'localhost'}`;
    return base + input.url;
  }

  translate(rawBody: Buffer, ctx: TranslationContext): TranslatedEvent[] {
    return translateRcmlWebhook(rawBody, ctx);
  }
}

/** Restcomm does not sign; a shared token in `?token=` or the Basic-auth password stands in for a signature. */
export class RestcommAdapter implements ProviderAdapter {
  readonly provider = 'restcomm' as const;
  readonly translatorVersion = TRANSLATOR_VERSIONS.restcomm;
  constructor(private readonly tokens: readonly string[]) {}

  get verifying(): boolean {
    return this.tokens.length > 0;
  }

  verify(input: SignatureInput): SignatureVerdict {
    if (!this.verifying) return { status: 'unverified' };
    const q = input.url.indexOf('?');
    const query = new URLSearchParams(q >= 0 ? input.url.slice(q + 1) : '');
    const r = verifyRestcommToken(query, headerValue(input.headers, 'authorization'), this.tokens);
    return r.ok ? { status: 'verified', timestamp: null } : { status: 'rejected', reason: `Restcomm token: ${r.reason}` };
  }

  translate(rawBody: Buffer, ctx: TranslationContext): TranslatedEvent[] {
    return translateRcmlWebhook(rawBody, ctx);
  }
}
