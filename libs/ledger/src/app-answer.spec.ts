import { describe, expect, it } from 'vitest';
import { parseAppAnswer, redactAppAnswer } from './app-answer.js';

const b = (s: string) => Buffer.from(s, 'utf8');

describe('parseAppAnswer', () => {
  it('reads FreeClimb PerCL: command names in order, OutDial as a dial request with its documented default ring timeout', () => {
    const p = parseAppAnswer('freeclimb', b(JSON.stringify([{ Say: { text: 'hi' } }, { OutDial: { destination: '+18475722071', callingNumber: '+17113334444', callConnectUrl: 'https://a/c', actionUrl: 'https://a/a', statusCallbackUrl: 'https://a/s' } }])));
    expect(p).toMatchObject({ parse: 'ok', instructions: ['Say', 'OutDial'] });
    expect(p.dials[0]).toMatchObject({ index: 1, targets: [{ type: 'phone', value: '+18475722071' }], ringTimeoutSec: null, defaultRingTimeoutSec: 40, hooks: { action: 'https://a/a', callConnect: 'https://a/c', statusCallback: 'https://a/s' } });
  });

  it('reads jambonz verbs, a lone verb object too, and dial with several targets as simultaneous', () => {
    const p = parseAppAnswer('jambonz', b(JSON.stringify({ verb: 'dial', timeLimit: 3600, amd: { actionHook: '/amd' }, target: [{ type: 'phone', number: '+1' }, { type: 'teams', number: '+2' }], actionHook: { url: '/a', method: 'GET' } })));
    expect(p.instructions).toEqual(['dial']);
    expect(p.dials[0]).toMatchObject({ mode: 'simultaneous', timeLimitSec: 3600, amd: { actionHook: '/amd' }, defaultRingTimeoutSec: 60, hooks: { action: '/a' } });
  });

  it('reads RCML/TwiML with a maintained XML parser: verbs in order, nouns, a bare number, attributes', () => {
    const p = parseAppAnswer('twilio', b('<Response><Gather input="dtmf"><Say>x</Say></Gather><Dial callerId="+1" timeout="15">+15551230000</Dial><Dial><Conference>room &amp; board</Conference><Client>bob</Client></Dial><Hangup/></Response>'));
    expect(p.instructions).toEqual(['Gather', 'Dial', 'Dial', 'Hangup']);
    expect(p.dials[0]).toMatchObject({ index: 1, targets: [{ type: 'phone', value: '+15551230000' }], ringTimeoutSec: 15, callerId: '+1', mode: 'single', defaultRingTimeoutSec: 30 });
    expect(p.dials[1]!.targets).toEqual([{ type: 'conference', value: 'room & board' }, { type: 'user', value: 'bob' }]);
  });

  it('marks what it cannot read, and an empty answer as empty, never guessing', () => {
    expect(parseAppAnswer('freeclimb', b('{"Say":{}}'))).toMatchObject({ parse: 'unparseable', instructions: [], dials: [] });
    expect(parseAppAnswer('jambonz', b('[{"say": 1}]')).parse).toBe('unparseable');
    expect(parseAppAnswer('restcomm', b('<Response><Dial>')).parse).toBe('unparseable');
    expect(parseAppAnswer('twilio', b('<Other/>')).parse).toBe('unparseable');
    expect(parseAppAnswer('twilio', Buffer.from([0xff, 0xfe]))).toMatchObject({ parse: 'unparseable', parseError: 'the answer is not UTF-8 text' });
    expect(parseAppAnswer('freeclimb', b(''))).toMatchObject({ parse: 'empty' });
  });
});

describe('redactAppAnswer', () => {
  it('replaces jambonz target auth passwords and lists where', () => {
    const r = redactAppAnswer('jambonz', b(JSON.stringify([{ verb: 'say' }, { verb: 'dial', target: [{ type: 'phone', number: '+1' }, { type: 'sip', sipUri: 'sip:a@b', auth: { user: 'u', password: 'pw-123' } }] }])));
    expect(r.body.toString()).not.toContain('pw-123');
    expect(r.body.toString()).toContain('"user":"u"');
    expect(r.redactions).toEqual([{ path: '[1].target[1].auth.password', reason: 'credential' }]);
  });

  it('replaces <Sip password> in RCML, leaving every other byte as sent', () => {
    const xml = "<Response>\n  <Dial><Sip username='u' password='p1'>sip:a@b</Sip><Sip password=\"p2\">sip:c@d</Sip></Dial>\n</Response>";
    const r = redactAppAnswer('restcomm', b(xml));
    expect(r.body.toString()).toBe("<Response>\n  <Dial><Sip username='u' password='[redacted]'>sip:a@b</Sip><Sip password=\"[redacted]\">sip:c@d</Sip></Dial>\n</Response>");
    expect(r.redactions.map((x) => x.path)).toEqual(['Sip[0]@password', 'Sip[1]@password']);
  });

  it('leaves an answer without credentials untouched (same buffer)', () => {
    const body = b('[{"OutDial":{"destination":"+1"}}]');
    expect(redactAppAnswer('freeclimb', body)).toEqual({ body, redactions: [] });
  });
});
