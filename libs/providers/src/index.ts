export * from './provider-adapter.js';
export * from './provider-registry.js';
export { translateFreeclimbWebhook } from './freeclimb/freeclimb.translate.js';
export { translateJambonzWebhook } from './jambonz/jambonz.translate.js';
export { translateRcmlWebhook } from './rcml/rcml.translate.js';
export { computeTwilioSignature } from './rcml/twilio.signature.js';
export { signTimestampedHmac, computeTimestampedHmac, SIGNATURE_TOLERANCE_SEC } from './shared/timestamped-hmac.js';
export { constantTimeEqual, matchesAny } from './shared/constant-time.js';
export { TwilioAdapter, formPairs } from './rcml/rcml.adapter.js';
