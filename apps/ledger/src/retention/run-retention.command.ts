import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { RetentionService, type RetentionRunReport } from './retention.service.js';

/** One retention run on demand, by an admin key (recorded by name with each month it drops). */
export class RunRetentionCommand extends Command<RetentionRunReport & { enabled: boolean }> {
  constructor(readonly keyName: string) {
    super();
  }
}

@CommandHandler(RunRetentionCommand)
export class RunRetentionHandler implements ICommandHandler<RunRetentionCommand> {
  constructor(private readonly retention: RetentionService) {}

  async execute({ keyName }: RunRetentionCommand): Promise<RetentionRunReport & { enabled: boolean }> {
    return { enabled: this.retention.enabled, ...(await this.retention.run(keyName)) };
  }
}
