import { z } from 'zod';

/** Numbers arrive as strings in some webhooks (callDuration, recordingSize): accept both, keep them loose. */
const numeric = z.union([z.number(), z.string()]).nullish();
const str = z.string().nullish();

/**
 * Common shape of every FreeClimb voice webhook (docs/providers.md, "FreeClimb requests"). Unknown keys are kept: the SDK models
 * are incomplete (docs/providers.md, "FreeClimb quirks"), so the raw body stays the source of truth and this schema only types what we read.
 */
export const freeclimbWebhookSchema = z.looseObject({
  requestType: z.string().min(1),
  accountId: str,
  callId: str,
  parentCallId: str,
  dialCallId: str,
  from: str,
  to: str,
  callStatus: str,
  dialCallStatus: str,
  direction: str,
  conferenceId: str,
  queueId: str,
  callEndedReason: str,
  callDuration: numeric,
  recordingId: str,
  recordingUrl: str,
  recordingDurationSec: numeric,
  recordingDurationMs: numeric,
  machineType: str,
  status: str,
  digits: str,
  reason: str,
  recognitionResult: str,
  confidence: numeric,
  transcript: str,
  queueResult: str,
  queueTime: numeric,
});

export type FreeclimbWebhook = z.infer<typeof freeclimbWebhookSchema>;
