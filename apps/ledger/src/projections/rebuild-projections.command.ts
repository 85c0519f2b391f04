import { Logger } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { LedgerError } from '@lib/ledger';
import { Projector } from '@lib/projections';

export class RebuildProjectionsCommand extends Command<{ rebuilding: string[] }> {
  constructor(readonly name?: string) {
    super();
  }
}

@CommandHandler(RebuildProjectionsCommand)
export class RebuildProjectionsHandler implements ICommandHandler<RebuildProjectionsCommand> {
  private readonly logger = new Logger('Rebuild');
  constructor(private readonly projector: Projector) {}

  async execute({ name }: RebuildProjectionsCommand): Promise<{ rebuilding: string[] }> {
    const names = this.projector.projections.map((p) => p.name);
    if (name && !names.includes(name)) {
      throw new LedgerError('PROJECTION.NOT_FOUND', `unknown projection "${name}"; known: ${names.join(', ')}`);
    }
    void this.projector.rebuild(name).catch((err: Error) => this.logger.error(`rebuild failed: ${err.message}`));
    return { rebuilding: name ? [name] : names };
  }
}
