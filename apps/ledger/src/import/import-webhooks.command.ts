import { Command } from '@nestjs/cqrs';

export interface ImportResult {
  imported: number;
  duplicates: number;
  rejected: { line: number; error: string }[];
  /** Rejected lines beyond the ones listed (the list is capped so that the answer stays small). */
  rejectedNotListed: number;
}

export class ImportWebhooksCommand extends Command<ImportResult> {
  constructor(
    readonly body: NodeJS.ReadableStream,
    /** Name of the API key that uploads (never the key): recorded in audit_actions with the outcome. */
    readonly actor: string,
  ) {
    super();
  }
}
