import { Body, Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { z } from 'zod';
import { badRequest } from '@lib/ledger';
import { ApiKeyGuard, RequireScope, type AuthenticatedRequest } from '../common/api-key.guard.js';
import { ApiRoute } from '../common/api-route.decorator.js';
import { position } from '../common/api-schema.js';
import { EraseSubjectCommand, type ErasureTarget } from './erase-subject.command.js';

/** E.164 (with or without `+`), or a SIP user of at least three characters (shorter would match too much). */
const NUMBER = /^(\+?[0-9]{6,15}|[A-Za-z0-9._~-]{3,64})$/;
const ID = z.string().min(1).max(200);
const reason = z.string().trim().min(3).max(500).describe('why (a ticket, the legal basis); kept in the chain: never write the number here');
const erasureBody = z.union([
  z.strictObject({ number: z.string().regex(NUMBER, 'an E.164 number or a SIP user').describe('E.164 number (or SIP user) to erase everywhere'), reason }),
  z.strictObject({ legId: ID.describe('one leg (provider call id)'), reason }),
  z.strictObject({ callId: ID.describe('a call: every leg of its tree'), reason }),
]);

const erasureSchema = z
  .object({
    erasureId: z.string(),
    subject: z.enum(['number', 'leg', 'call']),
    streams: z.array(z.string()).describe('the chains that lost values or receipt bodies'),
    events: z.number().int().describe('events that lost at least one value'),
    fields: z.number().int().describe('values erased'),
    receipts: z.number().int().describe('receipts whose raw body (and query) were dropped, their sha256 kept'),
    notErasable: z.number().int().describe('events of chain rules 1 and 2 holding the subject: hashed in clear, so kept'),
    archived: z
      .object({
        months: z.number().int().describe('archived months whose files were rewritten and manifests signed again'),
        events: z.number().int(),
        fields: z.number().int(),
        receipts: z.number().int(),
        notErasable: z.number().int(),
      })
      .describe('the same counts in the months retention archived (LEDGER_ARCHIVE_DIR)'),
    position: position.nullable().describe('pass as minPosition to read the projections after the erasure'),
  })
  .meta({ id: 'Erasure' });

@Controller('v1/admin/erasures')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class ErasuresController {
  constructor(private readonly commandBus: CommandBus) {}

  @Post()
  @HttpCode(201)
  @ApiRoute({
    tag: 'admin',
    summary: 'Erase a number, a leg or a call everywhere; every chain keeps verifying',
    description: 'README "Erasure and its proof". Recorded in the chain (SubjectErased) and in GET /v1/admin/actions.',
    body: { contentTypes: ['application/json'], schema: erasureBody, required: true },
    responses: [{ status: 201, schema: erasureSchema }],
    errors: [400, 409],
  })
  async erase(@Body() body: unknown, @Req() req: AuthenticatedRequest): Promise<z.infer<typeof erasureSchema>> {
    const parsed = erasureBody.safeParse(body);
    if (!parsed.success) {
      throw badRequest('REQUEST.INVALID_BODY', `body must be {"number"|"legId"|"callId": ..., "reason": "..."}: ${parsed.error.issues[0]?.message}`);
    }
    const { reason: why, ...target } = parsed.data;
    return this.commandBus.execute(new EraseSubjectCommand(target as ErasureTarget, why, req.actor!.name));
  }
}
