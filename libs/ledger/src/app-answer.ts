import { lookupTable } from './lookup-table.js';
import { XMLParser } from 'fast-xml-parser';
import type { Provider } from './call-leg.events.js';

/**
 * What an app told the platform, read from its answer to a webhook (tee mode). Facts relied on are in
 * docs/app-answers.md: FreeClimb PerCL is a JSON array of one-key objects (`[{"OutDial": {...}}]`), jambonz
 * answers a JSON array of verbs (`[{"verb": "dial", ...}]`), RCML/TwiML an XML `<Response>` whose children are
 * the verbs. Nothing here invents: an answer that cannot be read is `unparseable`, never guessed at.
 */
export type AnswerDialect = 'percl' | 'jambonz' | 'rcml';

export const dialectOf = (provider: Provider): AnswerDialect =>
  provider === 'freeclimb' ? 'percl' : provider === 'jambonz' ? 'jambonz' : 'rcml';

export interface DialTarget {
  /** phone, sip, user (jambonz registered user / RCML Client), teams, conference. */
  type: string;
  /** The number, SIP URI, user name or conference name dialled. */
  value: string;
}

export interface DialRequest {
  /** Position of the verb in the answer (0-based). */
  index: number;
  /** The verb as the dialect spells it: OutDial, dial, Dial. */
  verb: string;
  targets: DialTarget[];
  /** Every target is rung at once (jambonz, several RCML nouns) or there is one target. */
  mode: 'simultaneous' | 'single';
  /** Ring-no-answer timeout asked for, in seconds; null when the app left the platform's default. */
  ringTimeoutSec: number | null;
  /** The platform's documented default when the app gave none (docs/app-answers.md). */
  defaultRingTimeoutSec: number;
  timeLimitSec: number | null;
  callerId: string | null;
  /** Machine detection as asked: FreeClimb ifMachine, jambonz amd (its object), RCML MachineDetection. */
  amd: unknown;
  record: boolean | null;
  /** Hook name → URL (action, callConnect, statusCallback, confirm, ifMachine...). */
  hooks: Record<string, string>;
}

export interface Redaction {
  /** Where in the answer, e.g. `[1].target[0].auth.password` or `Response.Dial[0].Sip[0]@password`. */
  path: string;
  reason: 'credential';
}

export interface ParsedAnswer {
  /** `ok`: commands read; `empty`: no body (a status callback answered 200); `unparseable`: kept, unread. */
  parse: 'ok' | 'empty' | 'unparseable';
  parseError: string | null;
  /** Verb names in order. */
  instructions: string[];
  dials: DialRequest[];
}

const num = (v: unknown): number | null => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : null;
};
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : null);
const hookUrl = (v: unknown): string | null => str(v) ?? (v && typeof v === 'object' ? str((v as { url?: unknown }).url) : null);
const hooksOf = (o: Record<string, unknown>, names: Record<string, string>): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [field, name] of Object.entries(names)) {
    const url = hookUrl(o[field]);
    if (url) out[name] = url;
  }
  return out;
};

const isText = (body: Buffer): boolean => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(body);
    return true;
  } catch {
    return false;
  }
};

const unparseable = (reason: string): ParsedAnswer => ({ parse: 'unparseable', parseError: reason, instructions: [], dials: [] });

const parsePercl = (doc: unknown): ParsedAnswer => {
  if (!Array.isArray(doc)) return unparseable('PerCL is a JSON array of commands');
  const instructions: string[] = [];
  const dials: DialRequest[] = [];
  for (const [index, cmd] of doc.entries()) {
    if (!cmd || typeof cmd !== 'object' || Array.isArray(cmd) || Object.keys(cmd).length !== 1) {
      return unparseable(`PerCL command ${index} is not an object with one command name`);
    }
    const [verb, attrs] = Object.entries(cmd as Record<string, unknown>)[0]!;
    instructions.push(verb);
    if (verb !== 'OutDial') continue;
    const a = (attrs && typeof attrs === 'object' ? attrs : {}) as Record<string, unknown>;
    const destination = str(a.destination);
    dials.push({
      index,
      verb,
      targets: destination ? [{ type: 'phone', value: destination }] : [],
      mode: 'single',
      ringTimeoutSec: num(a.timeout),
      defaultRingTimeoutSec: 40,
      timeLimitSec: null,
      callerId: str(a.callingNumber),
      amd: a.ifMachine === undefined ? null : { ifMachine: a.ifMachine, ifMachineUrl: a.ifMachineUrl ?? null },
      record: null,
      hooks: hooksOf(a, { actionUrl: 'action', callConnectUrl: 'callConnect', statusCallbackUrl: 'statusCallback', ifMachineUrl: 'ifMachine' }),
    });
  }
  return { parse: 'ok', parseError: null, instructions, dials };
};

const jambonzTarget = (t: unknown): DialTarget | null => {
  if (!t || typeof t !== 'object') return null;
  const o = t as Record<string, unknown>;
  const type = str(o.type) ?? 'unknown';
  const value = str(o.number) ?? str(o.sipUri) ?? str(o.name) ?? '';
  return { type, value };
};

const parseJambonz = (doc: unknown): ParsedAnswer => {
  // An app may answer one verb object instead of a list (jambonz accepts both).
  const verbs = Array.isArray(doc) ? doc : doc && typeof doc === 'object' ? [doc] : null;
  if (!verbs) return unparseable('jambonz answers a JSON array of verbs');
  const instructions: string[] = [];
  const dials: DialRequest[] = [];
  for (const [index, v] of verbs.entries()) {
    const verb = v && typeof v === 'object' ? str((v as { verb?: unknown }).verb) : null;
    if (!verb) return unparseable(`jambonz verb ${index} has no "verb"`);
    instructions.push(verb);
    if (verb !== 'dial') continue;
    const a = v as Record<string, unknown>;
    const targets = (Array.isArray(a.target) ? a.target : []).map(jambonzTarget).filter((t): t is DialTarget => t !== null);
    dials.push({
      index,
      verb,
      targets,
      mode: targets.length > 1 ? 'simultaneous' : 'single',
      ringTimeoutSec: num(a.timeout),
      defaultRingTimeoutSec: 60,
      timeLimitSec: num(a.timeLimit),
      callerId: str(a.callerId),
      amd: a.amd ?? null,
      record: null,
      hooks: hooksOf(a, { actionHook: 'action', confirmHook: 'confirm', dtmfHook: 'dtmf', referHook: 'refer' }),
    });
  }
  return { parse: 'ok', parseError: null, instructions, dials };
};

/** RCML/TwiML nouns of <Dial> and the target type each stands for. */
const RCML_NOUNS = lookupTable<string>({ Number: 'phone', Client: 'user', Sip: 'sip', Conference: 'conference', Queue: 'queue' });

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  preserveOrder: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
});

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

const childrenOf = (node: OrderedNode): OrderedNode[] => {
  const name = Object.keys(node).find((k) => k !== ':@')!;
  const c = node[name];
  return Array.isArray(c) ? (c as OrderedNode[]) : [];
};
const nameOf = (node: OrderedNode): string => Object.keys(node).find((k) => k !== ':@')!;
const textOf = (node: OrderedNode): string =>
  childrenOf(node)
    .map((c) => (nameOf(c) === '#text' ? String(c['#text']) : ''))
    .join('')
    .trim();

const parseRcml = (text: string): ParsedAnswer => {
  let doc: OrderedNode[];
  try {
    doc = xml.parse(text, true) as OrderedNode[];
  } catch (err) {
    return unparseable(`not XML: ${(err as Error).message}`);
  }
  const response = doc.find((n) => nameOf(n) === 'Response');
  if (!response) return unparseable('RCML/TwiML answers a <Response> document');
  const instructions: string[] = [];
  const dials: DialRequest[] = [];
  for (const [index, verbNode] of childrenOf(response).filter((n) => !nameOf(n).startsWith('#') && nameOf(n) !== '?xml').entries()) {
    const verb = nameOf(verbNode);
    instructions.push(verb);
    if (verb !== 'Dial') continue;
    const a = verbNode[':@'] ?? {};
    const attr = (n: string) => a[`@${n}`];
    const nouns = childrenOf(verbNode).filter((n) => RCML_NOUNS[nameOf(n)] !== undefined);
    // <Dial>+15551234567</Dial>: the text is the number.
    const bare = textOf(verbNode);
    const targets: DialTarget[] = nouns.map((n) => ({ type: RCML_NOUNS[nameOf(n)]!, value: textOf(n) }));
    if (targets.length === 0 && bare) targets.push({ type: 'phone', value: bare });
    dials.push({
      index,
      verb,
      targets,
      mode: targets.length > 1 ? 'simultaneous' : 'single',
      ringTimeoutSec: num(attr('timeout')),
      defaultRingTimeoutSec: 30,
      timeLimitSec: num(attr('timeLimit')),
      callerId: str(attr('callerId')),
      amd: attr('machineDetection') ?? attr('MachineDetection') ?? null,
      record: attr('record') === undefined ? null : attr('record') !== 'false' && attr('record') !== 'do-not-record',
      hooks: hooksOf(a as Record<string, unknown>, { '@action': 'action', '@statusCallback': 'statusCallback', '@referUrl': 'refer' }),
    });
  }
  return { parse: 'ok', parseError: null, instructions, dials };
};

export const parseAppAnswer = (provider: Provider, body: Buffer): ParsedAnswer => {
  if (body.length === 0 || body.toString('utf8').trim() === '') return { parse: 'empty', parseError: null, instructions: [], dials: [] };
  if (!isText(body)) return unparseable('the answer is not UTF-8 text');
  const text = body.toString('utf8');
  const dialect = dialectOf(provider);
  if (dialect === 'rcml') return parseRcml(text);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return unparseable(`not JSON: ${(err as Error).message}`);
  }
  return dialect === 'percl' ? parsePercl(doc) : parseJambonz(doc);
};

const REDACTED = '[redacted]';

/**
 * Credentials the app put in its commands are not kept: jambonz `target[].auth.password` and RCML/TwiML
 * `<Sip password="...">`. The stored body is the answer with only those values replaced; each replacement is
 * listed. JSON is edited through its parse (its text is then re-serialised, which the redaction record
 * says); XML attribute values are replaced in the text so every other byte stays as the app sent it.
 */
export const redactAppAnswer = (provider: Provider, body: Buffer): { body: Buffer; redactions: Redaction[] } => {
  const none = { body, redactions: [] };
  if (body.length === 0 || !isText(body)) return none;
  const text = body.toString('utf8');
  if (dialectOf(provider) === 'rcml') {
    const redactions: Redaction[] = [];
    let sip = 0;
    const out = text.replace(/<Sip\b[^>]*>/g, (tag) => {
      const at = sip++;
      return tag.replace(/(\bpassword\s*=\s*)("[^"]*"|'[^']*')/g, (_m, lead: string, quoted: string) => {
        redactions.push({ path: `Sip[${at}]@password`, reason: 'credential' });
        return `${lead}${quoted[0]}${REDACTED}${quoted[0]}`;
      });
    });
    return redactions.length ? { body: Buffer.from(out, 'utf8'), redactions } : none;
  }
  if (provider !== 'jambonz') return none;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return none;
  }
  const redactions: Redaction[] = [];
  const verbs = Array.isArray(doc) ? doc : [doc];
  verbs.forEach((v, i) => {
    const targets = v && typeof v === 'object' ? (v as { target?: unknown }).target : undefined;
    if (!Array.isArray(targets)) return;
    targets.forEach((t, j) => {
      const auth = t && typeof t === 'object' ? (t as { auth?: Record<string, unknown> }).auth : undefined;
      if (auth && typeof auth === 'object' && 'password' in auth) {
        auth.password = REDACTED;
        redactions.push({ path: `${Array.isArray(doc) ? `[${i}]` : ''}.target[${j}].auth.password`, reason: 'credential' });
      }
    });
  });
  return redactions.length ? { body: Buffer.from(JSON.stringify(doc), 'utf8'), redactions } : none;
};
