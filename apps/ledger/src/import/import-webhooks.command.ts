import { Command } from '@nestjs/cqrs';

export interface ImportResult {
  imported: number;
  duplicates: number;
  rejected: { line: number; error: string }[];
  /** Rejected lines beyond the ones listed (the list is capped so that the answer stays small). */
  rejectedNotListed: number;
}

/** Where an upload stands while it runs (logged, and streamed to a caller that asks for progress). */
export interface ImportProgress {
  /** Lines read so far (blank ones included), and the upload's bytes read. */
  linesRead: number;
  bytesRead: number;
  /** The upload's size when the client declared it (Content-Length), else null. */
  bytesTotal: number | null;
  /** Lines still to come, estimated from the bytes left and the mean line so far; null without bytesTotal. */
  linesLeft: number | null;
  imported: number;
  duplicates: number;
  rejected: number;
  /** Lines read per second since the upload started. */
  linesPerSec: number;
  elapsedSec: number;
}

export class ImportWebhooksCommand extends Command<ImportResult> {
  constructor(
    readonly body: NodeJS.ReadableStream,
    /** Name of the API key that uploads (never the key): recorded in audit_actions with the outcome. */
    readonly actor: string,
    readonly options: { bytesTotal?: number | null; onProgress?: (progress: ImportProgress) => void } = {},
  ) {
    super();
  }
}
