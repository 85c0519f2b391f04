import { describe, expect, it } from 'vitest';
import { PROVIDERS } from '@lib/ledger';
import {
  appAnswersStreamName,
  isStreamOfProvider,
  legOfStreamName,
  legStreamName,
  parseStreamName,
  streamNameOf,
  streamNamesOfLeg,
  unrecognizedStreamName,
  type StreamName,
} from './stream-names.js';

describe('stream names', () => {
  it('keep the spelling stored streams have (callLeg-, appAnswers-, unrecognized-)', () => {
    expect(legStreamName('twilio', 'CA1')).toBe('callLeg-twilio:CA1');
    expect(appAnswersStreamName('jambonz', 'x-1')).toBe('appAnswers-jambonz:x-1');
    expect(appAnswersStreamName('jambonz', null)).toBe('appAnswers-jambonz:-');
    expect(unrecognizedStreamName('restcomm')).toBe('unrecognized-restcomm');
  });

  it('parse back what they format, ids with "-" and ":" included', () => {
    const names: StreamName[] = PROVIDERS.flatMap((provider) => [
      { category: 'callLeg', provider, legId: 'a-b:c:d' },
      { category: 'appAnswers', provider, legId: 'sip:+1@x' },
      { category: 'appAnswers', provider, legId: null },
      { category: 'unrecognized', provider },
    ]);
    for (const n of names) expect(parseStreamName(streamNameOf(n))).toEqual(n);
  });

  it('refuse names of no known category or provider', () => {
    for (const name of ['', 'callLeg', 'callLeg-', 'callLeg-twilio:', 'callLeg-skype:1', 'orders-twilio:1', 'unrecognized-', 'unrecognized-twilio:x', 'callLeg-twilio']) {
      expect(parseStreamName(name), name).toBeNull();
    }
  });

  it('name the leg of a leg or answers stream, the provider of every stream', () => {
    expect(legOfStreamName('callLeg-freeclimb:CA-9')).toEqual({ provider: 'freeclimb', legId: 'CA-9' });
    expect(legOfStreamName('appAnswers-freeclimb:CA-9')).toEqual({ provider: 'freeclimb', legId: 'CA-9' });
    expect(legOfStreamName('appAnswers-freeclimb:-')).toBeNull();
    expect(legOfStreamName('unrecognized-freeclimb')).toBeNull();
    expect(['callLeg-twilio:1', 'appAnswers-twilio:1', 'unrecognized-twilio'].every((n) => isStreamOfProvider(n, 'twilio'))).toBe(true);
    expect(isStreamOfProvider('callLeg-restcomm:1', 'twilio')).toBe(false);
    expect(streamNamesOfLeg(['twilio', 'restcomm'], 'CA1')).toEqual(['callLeg-twilio:CA1', 'appAnswers-twilio:CA1', 'callLeg-restcomm:CA1', 'appAnswers-restcomm:CA1']);
  });
});
