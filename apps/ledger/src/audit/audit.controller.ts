import { Controller, Get, HttpCode, Post, Req, StreamableFile, UseGuards, UseInterceptors } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { PROVIDERS } from '@lib/ledger';
import type { CheckpointRecord } from '@lib/event-store';

import { ApiKeyGuard, NotForMaskedKeys, RequireScope, type AuthenticatedRequest } from '../common/api-key.guard.js';
import { AuditActionsRepository } from '../common/audit-actions.repository.js';
import { ApiRoute, queryParams, ValidQuery } from '../common/api-route.decorator.js';
import { position } from '../common/api-schema.js';
import { ReadYourWritesInterceptor } from '../projections/read-your-writes.interceptor.js';
import { AuditExportService } from './audit-export.service.js';
import { CheckpointService } from './checkpoint.service.js';
import { VerifyAuditQuery, type AuditReport } from './verify-audit.query.js';

export const verifyAuditQuerySchema = queryParams({
  since: z.iso.datetime({ offset: true }).optional().describe('streams that received an event at or after this time'),
  until: z.iso.datetime({ offset: true }).optional().describe('streams that received an event before this time'),
  callId: z.string().min(1).max(200).optional().describe("only this leg's stream"),
  provider: z.enum(PROVIDERS).optional(),
});

const checkpointSchema = z
  .object({
    seq: z.number().int(),
    createdAt: z.string(),
    fromXmin: z.string().describe('the window: events of transactions with ids in [fromXmin, toXmin)'),
    toXmin: z.string(),
    position,
    streamCount: z.number().int(),
    headCount: z.number().int().describe('streams that changed in the window; their heads are signed'),
    headsSha256: z.string(),
    prevDigest: z.string().nullable(),
    digest: z.string().describe('sha256 of the signed message'),
    signature: z.string().nullable().describe('Ed25519 signature of the message, base64; null when no signing key is configured'),
  })
  .meta({ id: 'AuditCheckpoint' });

export const auditReportSchema = z
  .object({
    streamsChecked: z.number().int(),
    eventsChecked: z.number().int(),
    valid: z.boolean(),
    broken: z.array(
      z.object({
        callId: z.string().nullable().describe('null for a stream of unrecognized deliveries'),
        provider: z.string().nullable(),
        streamName: z.string(),
        position,
        reason: z.string(),
      }),
    ),
    checkpoints: z.object({
      checked: z.number().int(),
      signed: z.number().int(),
      unsigned: z.number().int(),
      signaturesChecked: z.boolean().describe('false when no signing key is configured: signatures were not checked'),
      latest: z.object({ seq: z.number().int(), createdAt: z.string(), position, digest: z.string() }).nullable(),
      problems: z.array(z.object({ seq: z.number().int(), reason: z.string() })),
    }),
  })
  .meta({ id: 'AuditReport' });

const auditExportLineSchema = z
  .looseObject({ kind: z.enum(['header', 'checkpoint', 'stream', 'event']) })
  .describe('header first, then checkpoints, then each stream followed by its events')
  .meta({ id: 'AuditExportLine' });

const publicKeySchema = z
  .object({
    publicKey: z.string().nullable().describe('SPKI PEM of the Ed25519 key that signs checkpoints; null: checkpoints are unsigned'),
    publicKeySha256: z.string().nullable(),
  })
  .meta({ id: 'AuditPublicKey' });

@Controller()
@UseGuards(ApiKeyGuard)
export class AuditController {
  constructor(
    private readonly queryBus: QueryBus,
    private readonly checkpoints: CheckpointService,
    private readonly exporter: AuditExportService,
    private readonly actions: AuditActionsRepository,
  ) {}

  @Get('v1/audit/verify')
  @RequireScope('read')
  @UseInterceptors(ReadYourWritesInterceptor)
  @ApiRoute({
    tag: 'audit',
    summary: 'Recompute the hash chains of the stored events and check the signed checkpoints',
    description:
      'Each selected stream is checked from its first event (a chain cannot be checked from the middle) and against its ' +
      'head row. Without parameters every stream is checked. A stream reports its first broken link only: what follows it ' +
      'is unverifiable. Every checkpoint is checked (sequence, digest, signature with the configured key) and the heads it ' +
      'signed are compared with the events of its window.',
    query: verifyAuditQuerySchema,
    responses: [{ schema: auditReportSchema }],
  })
  verify(@ValidQuery(verifyAuditQuerySchema) q: z.output<typeof verifyAuditQuerySchema>): Promise<AuditReport> {
    const { minPosition: _m, ...scope } = q;
    return this.queryBus.execute(
      new VerifyAuditQuery({
        ...scope,
        since: scope.since ? new Date(scope.since).toISOString() : undefined,
        until: scope.until ? new Date(scope.until).toISOString() : undefined,
      }),
    );
  }

  @Get('v1/audit/public-key')
  @RequireScope('read')
  @ApiRoute({ tag: 'audit', summary: 'The public key that checks checkpoint signatures', responses: [{ schema: publicKeySchema }] })
  publicKey(): z.infer<typeof publicKeySchema> {
    const s = this.checkpoints.signer;
    return { publicKey: s?.publicKeyPem ?? null, publicKeySha256: s?.publicKeySha256.toString('hex') ?? null };
  }

  @Get('v1/audit/export')
  @RequireScope('read')
  // What is hashed must be exported as it is: masked values would not verify.
  @NotForMaskedKeys()
  @ApiRoute({
    tag: 'audit',
    summary: 'Stream the evidence for offline verification (NDJSON)',
    description:
      'Lines: a header (format, public key), every checkpoint with its signature and signed heads, then per stream its head ' +
      'row and its events (chain links, hashed receipt metadata, body sha256). Check it with `npm run verify -- <file>`.',
    responses: [{ contentType: 'application/x-ndjson', schema: auditExportLineSchema, description: 'the schema is that of each line' }],
  })
  async export(@Req() req: AuthenticatedRequest): Promise<StreamableFile> {
    // It carries every kept value with its nonce: a copy an erasure cannot reach, so it is recorded.
    await this.actions.record(req.actor?.name ?? 'unknown', 'export.audit', {});
    return new StreamableFile(Readable.from(this.exporter.lines(), { objectMode: false }), {
      type: 'application/x-ndjson; charset=utf-8',
      disposition: 'attachment; filename="audit.ndjson"',
    });
  }

  @Post('v1/admin/checkpoints')
  @RequireScope('admin')
  @HttpCode(201)
  @ApiRoute({
    tag: 'admin',
    summary: 'Take a checkpoint of the stream heads now',
    description: 'Signs (when a key is configured) the heads of every stream that changed since the last checkpoint.',
    responses: [{ status: 201, schema: checkpointSchema }],
  })
  async checkpoint(): Promise<CheckpointRecord> {
    return (await this.checkpoints.create(false))!;
  }
}
