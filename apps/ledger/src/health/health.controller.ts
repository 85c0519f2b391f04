import { Controller, Get, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import { sql } from 'kysely';
import { Database } from '@lib/db';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { ApiRoute } from '../common/api-route.decorator.js';
import { SCHEMA_STATE, type SchemaState } from '../common/tokens.js';
import { ProjectorLifecycle } from '../projections/projector.lifecycle.js';
import { ReadReplicaService } from '../replica/read-replica.service.js';

const indicators = z.record(z.string(), z.looseObject({ status: z.string() }));
const healthSchema = z
  .object({ status: z.enum(['ok', 'error', 'shutting_down']), info: indicators.optional(), error: indicators.optional(), details: indicators })
  .meta({ id: 'Health' });

/**
 * Ready (200) once the database answers and every migration is applied; 503 otherwise. With DATABASE_READ_URL,
 * `readReplica` reports the replica (state, where reads go, lag) and is always `up`: a replica that is down does
 * not make the instance unready, since ingest does not need it and reads fall back (or answer 503 themselves).
 * `projector` says how the projector runs (worker, inline, off) and, in a worker thread, whether that thread is up
 * or being restarted after a crash: always `up` too, for the same reason (ingest goes on; reads lag).
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly db: Database,
    @Inject(SCHEMA_STATE) private readonly schema: SchemaState,
    private readonly replica: ReadReplicaService,
    private readonly projector: ProjectorLifecycle,
  ) {}

  @Get()
  @ApiRoute({
    tag: 'health',
    summary: 'Readiness: the database answers and every migration is applied',
    auth: 'none',
    responses: [
      { schema: healthSchema, description: 'ready' },
      { status: 503, schema: healthSchema, description: 'not ready (Retry-After)' },
    ],
  })
  async check(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult> {
    try {
      return await this.health.check([
        async () =>
          await this.indicators
            .check('database')
            .attempt(async () => {
              await sql`SELECT 1`.execute(this.db);
              return {};
            })
            .withTimeout(1500),
        () => (this.schema.migrated ? this.indicators.check('migrations').up() : this.indicators.check('migrations').down({ message: this.schema.lastError ?? 'migrations not applied yet' })),
        () => this.indicators.check('projector').up({ ...this.projector.health() }),
        ...(this.replica.configured ? [() => this.indicators.check('readReplica').up({ ...this.replica.status() })] : []),
      ]);
    } catch (err) {
      if (err instanceof ServiceUnavailableException) {
        void reply.status(503).header('retry-after', '1');
        return err.getResponse() as HealthCheckResult;
      }
      throw err;
    }
  }
}
