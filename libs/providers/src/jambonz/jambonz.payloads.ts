import { z } from 'zod';

/** jambonz numbers are JSON numbers, but proxies and test rigs re-encode them as strings: accept both. */
const numeric = z.union([z.number(), z.string()]).nullish();
const str = z.string().nullish();
/** DTMF sequences look numeric ("1234"), so a re-encoder may have turned them into numbers. */
const digits = z.union([z.string(), z.number()]).nullish();

/**
 * CallInfo as serialised by jambonz (docs/providers.md, "jambonz requests"), snake-cased except `customerData`, `sip`, `env_vars`
 * (docs/providers.md, "jambonz quirks"). Every hook carries it; unknown keys are kept because the raw body, not this schema, is the record.
 */
export const jambonzCallInfoSchema = z.looseObject({
  call_sid: str,
  parent_call_sid: str,
  account_sid: str,
  direction: str,
  from: str,
  to: str,
  call_status: str,
  sip_status: numeric,
  sip_reason: str,
  call_termination_by: str,
  duration: numeric,
  customerData: z.unknown().optional(),
});

/** Dial actionHook: `dial_call_status` in code and on the wire, `dial_status` in the docs (docs/providers.md, "jambonz quirks"). */
export const jambonzDialActionSchema = jambonzCallInfoSchema.extend({
  dial_call_status: str,
  dial_status: str,
  dial_sip_status: numeric,
  dial_call_sid: str,
  dial_sbc_callid: str,
});

/** AMD actionHook: the CallInfo is the parent's in dial scenarios (docs/providers.md, "jambonz quirks"). */
export const jambonzAmdSchema = jambonzCallInfoSchema.extend({
  type: z.string(),
  reason: str,
  hint: str,
  greeting: str,
  language: str,
  frequency: numeric,
  variance: numeric,
});

/** Dial dtmfHook: CallInfo of the leg that pressed the keys + the matched `dtmfCapture` sequence. */
export const jambonzDtmfSchema = jambonzCallInfoSchema.extend({ dtmf: digits });

const speechAlternative = z.looseObject({ transcript: str, confidence: numeric });
export const jambonzSpeechSchema = z.looseObject({ is_final: z.boolean().nullish(), alternatives: z.array(speechAlternative).nullish() });

/** Gather actionHook. */
export const jambonzGatherSchema = jambonzCallInfoSchema.extend({
  reason: z.string(),
  digits,
  speech: z.union([z.string(), jambonzSpeechSchema]).nullish(),
});

/** Conference statusHook: `time` is ISO-8601, `duration` float seconds since conference start (docs/providers.md, "jambonz quirks"). */
export const jambonzConferenceSchema = jambonzCallInfoSchema.extend({
  event: z.string(),
  conference_sid: z.string(),
  friendly_name: str,
  time: str,
  members: numeric,
});

/** call_hook (session:new): CallInfo own properties plus the INVITE (docs/providers.md, "jambonz quirks"). */
export const jambonzCallHookSchema = jambonzCallInfoSchema.extend({
  caller_name: str,
  local_sip_address: str,
  sip: z.unknown().optional(),
});

export type JambonzCallInfo = z.infer<typeof jambonzCallInfoSchema>;
export type JambonzDialAction = z.infer<typeof jambonzDialActionSchema>;
export type JambonzAmd = z.infer<typeof jambonzAmdSchema>;
export type JambonzDtmf = z.infer<typeof jambonzDtmfSchema>;
export type JambonzGather = z.infer<typeof jambonzGatherSchema>;
export type JambonzConference = z.infer<typeof jambonzConferenceSchema>;
export type JambonzCallHook = z.infer<typeof jambonzCallHookSchema>;
