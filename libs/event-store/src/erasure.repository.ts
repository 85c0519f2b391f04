import { createHash } from 'node:crypto';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database, DB } from '@lib/db';
import { PROVIDERS, type Provider } from '@lib/ledger';
import { canonicalJson } from './canonical-json.js';
import { EventStoreRepository } from './event-store.repository.js';
import { verifyStreamChain, type BrokenLink } from './hash-chain.js';
import { eraseSealedFields, keptSealedPaths, sealedPathsHolding } from './personal-seals.js';
import { parseStreamName, streamNamesOfLeg } from './stream-names.js';
import type { WebhookRecord } from './webhook-record.js';

/** The stream that records every erasure request (`SubjectErased`). */
export const ERASURES_STREAM = 'erasures-ledger';
/** The provider name of the receipts an erasure stores (its request, `source: 'admin'`): not a telephony provider. */
export const LEDGER_PROVIDER = 'ledger';

export type ErasureSubject = { kind: 'number'; number: string } | { kind: 'leg' | 'call'; legIds: string[] };

export interface ErasureRequest {
  erasureId: string;
  subject: ErasureSubject;
  reason: string;
  keyName: string;
  requestedAt: Date;
}

export interface ErasureOutcome {
  erasureId: string;
  streams: string[];
  /** Events that lost at least one value. */
  events: number;
  fields: number;
  /** Receipts whose body (and query) were dropped. */
  receipts: number;
  /** Events of chain rules 1 and 2 that hold the subject: hashed in clear, so kept (README). */
  notErasable: number;
  /** Position of the last event the erasure appended (read-your-writes for the projections). */
  position: string | null;
}

/** A chain that no longer verified after the erasure: the transaction was rolled back, nothing was erased. */
export class ErasureBreaksChainError extends Error {
  constructor(readonly broken: BrokenLink[]) {
    super(`the erasure would break ${broken.length} chain(s): ${broken.map((b) => `${b.streamName} at ${b.position}: ${b.reason}`).join('; ')}`);
  }
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Where a number (or SIP user) occurs: as a whole token, with or without its leading `+`, in a URL-encoded query
 * or form too (`%2B`), inside a SIP or tel URI. Not a substring: +1555123000 must not erase +15551230001.
 */
export const subjectPattern = (subject: string): string => {
  const core = escapeRegex(subject.trim().replace(/^\+/, ''));
  return `(^|[^0-9A-Za-z]|%2[Bb])${core}([^0-9A-Za-z]|$)`;
};

interface Candidate {
  position: string;
  receipt_id: string;
  stream_name: string;
  chain_version: number;
  data: unknown;
  metadata: unknown;
  query: string;
  receipt_erased: boolean;
  matched: boolean;
}

/**
 * Erasure by subject (README "Erasure and its proof"): finds the subject's sealed values and the receipts that
 * carry it, and erases them through `ledger_erase` (the one function allowed to change stored rows), records the
 * request in the chain, and verifies every touched chain before committing. A number is searched everywhere
 * (every event's sealed fields, every receipt's query and body: a full scan, as rare as erasures are); a leg or a
 * call is its streams.
 */
export class ErasureRepository {
  constructor(private readonly db: Database) {}

  async erase(req: ErasureRequest): Promise<ErasureOutcome> {
    return this.db.transaction().execute(async (trx) => {
      // One erasure at a time: two erasing the same receipt would each compute commitments from the other's values.
      await sql`SELECT pg_advisory_xact_lock(hashtext('ledger_erase'))`.execute(trx);
      const candidates = await this.candidates(trx, req.subject);
      const pattern = req.subject.kind === 'number' ? new RegExp(subjectPattern(req.subject.number)) : null;
      const holds = (v: unknown) => pattern !== null && v !== null && v !== undefined && pattern.test(typeof v === 'string' ? v : JSON.stringify(v));

      // Receipts that go: those that matched (query, body) or whose events matched; for a leg, its events' receipts.
      const receipts = new Set<string>();
      for (const c of candidates) if (c.matched && !c.receipt_erased) receipts.add(c.receipt_id);

      const triples: { pos: string; path: string; commit: string }[] = [];
      const touchedStreams = new Set<string>();
      const changedByStream = new Map<string, { positions: string[]; fields: number }>();
      let notErasable = 0;
      // Every event the erasure changes (values, or its receipt's body) is named by its stream's PersonalDataErased:
      // the verifier reports an erased link that no record names.
      const note = (stream: string, position: string, fields: number) => {
        const changed = changedByStream.get(stream) ?? changedByStream.set(stream, { positions: [], fields: 0 }).get(stream)!;
        changed.positions.push(position);
        changed.fields += fields;
      };
      for (const c of candidates) {
        if (c.chain_version < 3) {
          // Hashed in clear: kept (and counted when it holds something personal); its receipt's body may still go.
          if (c.matched && (pattern ? [c.data, c.metadata, c.query].some((d) => holds(d)) : true)) notErasable += 1;
          if (receipts.has(c.receipt_id)) {
            note(c.stream_name, c.position, 0);
            touchedStreams.add(c.stream_name);
          }
          continue;
        }
        const docs = { data: c.data, metadata: c.metadata, receipt: { query: c.query } };
        const paths = pattern ? sealedPathsHolding(docs, holds) : c.matched ? keptSealedPaths(c.metadata) : [];
        if (receipts.has(c.receipt_id) && keptSealedPaths(c.metadata).includes('receipt.query')) paths.push('receipt.query');
        const { erased } = eraseSealedFields(docs, paths);
        for (const e of erased) triples.push({ pos: c.position, path: e.path, commit: e.commitment });
        if (erased.length > 0 || receipts.has(c.receipt_id)) {
          note(c.stream_name, c.position, erased.length);
          touchedStreams.add(c.stream_name);
        }
      }

      await sql`SELECT * FROM ledger_erase(${triples.map((t) => t.pos)}::bigint[], ${triples.map((t) => t.path)}::text[],
        ${triples.map((t) => t.commit)}::text[], ${[...receipts]}::bigint[])`.execute(trx);

      const streams = [...touchedStreams].sort();
      const outcome: ErasureOutcome = {
        erasureId: req.erasureId,
        streams,
        events: new Set(triples.map((t) => t.pos)).size,
        fields: triples.length,
        receipts: receipts.size,
        notErasable,
        position: null,
      };
      // The record is appended on the erasing transaction (a Transaction is a Kysely, not the Nest token class).
      const store = new EventStoreRepository(trx as unknown as Database);
      const appended = await store.appendBatch(erasureRecords(req, outcome, changedByStream));
      outcome.position = appended.map((a) => a.position).filter((p): p is string => p !== null).sort((a, b) => Number(BigInt(a) - BigInt(b))).at(-1) ?? null;

      // The proof, before the commit: every touched chain (and the erasures stream) still verifies to its head.
      const check = [...streams, ERASURES_STREAM];
      const links = await store.readChainLinks({ streamNames: check });
      const heads = await store.readStreamHeads(check);
      const broken: BrokenLink[] = [];
      for (const name of check) {
        const b = verifyStreamChain(links.filter((l) => l.streamName === name), heads.get(name));
        if (b) broken.push(b);
      }
      if (broken.length > 0) throw new ErasureBreaksChainError(broken);
      return outcome;
    });
  }

  private async candidates(trx: Kysely<DB>, subject: ErasureSubject): Promise<Candidate[]> {
    const cols = sql`e.global_position::text AS position, e.receipt_id::text AS receipt_id, e.stream_name, e.chain_version, e.data, e.metadata,
      w.query, w.erased_at IS NOT NULL AS receipt_erased`;
    let matched: RawBuilder<unknown>;
    let receipts: RawBuilder<unknown>;
    if (subject.kind === 'number') {
      const p = subjectPattern(subject.number);
      matched = sql`((e.data->>'from') ~ ${p} OR (e.data->>'to') ~ ${p} OR (e.data->>'callerId') ~ ${p} OR (e.data->'targets')::text ~ ${p}
        OR (e.data->>'digits') ~ ${p} OR (e.data->>'text') ~ ${p}
        OR (e.metadata->'party'->>'from') ~ ${p} OR (e.metadata->'party'->>'to') ~ ${p})`;
      // The receipts that carry the number in their query or body (read as escaped text: bodies need not be UTF-8).
      receipts = sql`SELECT w2.id FROM webhook_receipts w2 WHERE w2.erased_at IS NULL AND (w2.query ~ ${p} OR encode(w2.body, 'escape') ~ ${p})
        UNION SELECT e.receipt_id AS id FROM events e WHERE ${matched}`;
    } else {
      const names = subject.legIds.flatMap((id) => streamNamesOfLeg(PROVIDERS as unknown as Provider[], id));
      matched = sql`e.stream_name = ANY (${names}::text[])`;
      receipts = sql`SELECT e.receipt_id AS id FROM events e WHERE ${matched}`;
    }
    // The subject's events, and every event of a receipt that goes (its query seal changes with the receipt).
    const rows = await sql<Omit<Candidate, 'matched'> & { matched: boolean }>`
      WITH r AS (${receipts})
      SELECT ${cols}, ${matched} AS matched
      FROM events e JOIN webhook_receipts w ON w.id = e.receipt_id
      WHERE ${matched} OR e.receipt_id IN (SELECT id FROM r)
      ORDER BY e.global_position`.execute(trx);
    // A receipt matched by its query or body marks its events as matched (the receipt goes).
    const byReceipt = new Set((await sql<{ id: string }>`WITH r AS (${receipts}) SELECT id::text AS id FROM r`.execute(trx)).rows.map((r) => r.id));
    return rows.rows.map((r) => ({ ...r, matched: r.matched || (subject.kind === 'number' && byReceipt.has(r.receipt_id)) }));
  }
}

/**
 * The erasure as deliveries of its own (`source: 'admin'`): one receipt per provider whose streams it touched,
 * with a `PersonalDataErased` at the end of each touched stream (metadata naming the leg, so that the leg
 * projections fold it again), and one with the `SubjectErased` summary on the erasures stream. The body says
 * what was asked, never the value.
 */
const erasureRecords = (req: ErasureRequest, outcome: ErasureOutcome, changedByStream: Map<string, { positions: string[]; fields: number }>): WebhookRecord[] => {
  const hint = req.subject.kind === 'number' ? req.subject.number.slice(-2) : req.subject.legIds.join(',').slice(-2);
  const receipt = (provider: string, part: unknown): WebhookRecord['receipt'] => {
    const body = Buffer.from(canonicalJson({ kind: 'erasure', erasureId: req.erasureId, requestedAt: req.requestedAt.toISOString(), keyName: req.keyName, part }), 'utf8');
    return {
      provider: provider as Provider,
      body,
      bodySha256: createHash('sha256').update(body).digest(),
      contentType: 'application/vnd.call-ledger.erasure+json',
      path: 'admin/erasures',
      query: '',
      headers: {},
      remoteAddr: null,
      receivedAt: req.requestedAt,
      source: 'admin',
      signatureStatus: 'not-checked',
      signatureTimestamp: null,
    };
  };
  const byProvider = new Map<string, WebhookRecord['events']>();
  for (const streamName of outcome.streams) {
    const s = parseStreamName(streamName);
    if (!s) continue;
    const legId = s.category === 'unrecognized' ? null : s.legId;
    const { positions, fields } = changedByStream.get(streamName) ?? { positions: [], fields: 0 };
    const events = byProvider.get(s.provider) ?? byProvider.set(s.provider, []).get(s.provider)!;
    events.push({
      type: 'PersonalDataErased',
      streamName,
      // On a leg's own stream the event is about the leg (the projection folds it again); elsewhere about none.
      legId: s.category === 'callLeg' ? legId : null,
      accountId: null,
      parentLegId: null,
      occurredAt: req.requestedAt.toISOString(),
      providerSeq: null,
      party: null,
      data: { erasureId: req.erasureId, positions, fields },
    });
  }
  const records: WebhookRecord[] = [...byProvider].map(([provider, events]) => ({ receipt: receipt(provider, { provider, streams: events.length }), events }));
  records.push({
    receipt: receipt(LEDGER_PROVIDER, { subject: req.subject.kind, hint, reason: req.reason }),
    events: [
      {
        type: 'SubjectErased',
        streamName: ERASURES_STREAM,
        legId: null,
        accountId: null,
        parentLegId: null,
        occurredAt: req.requestedAt.toISOString(),
        providerSeq: null,
        party: null,
        data: {
          erasureId: req.erasureId,
          subject: req.subject.kind,
          hint,
          reason: req.reason,
          keyName: req.keyName,
          streams: outcome.streams,
          events: outcome.events,
          fields: outcome.fields,
          receipts: outcome.receipts,
          notErasable: outcome.notErasable,
        },
      },
    ],
  });
  return records;
};
