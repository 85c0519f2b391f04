import { createHash } from 'node:crypto';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database, DB } from '@lib/db';
import { PROVIDERS, type Provider } from '@lib/ledger';
import { canonicalJson } from './canonical-json.js';
import { planEventErasure, subjectMatcher, subjectPattern, type ErasureSubject, type SubjectMatcher } from './erasure-plan.js';
import { EventStoreRepository } from './event-store.repository.js';
import { verifyStreamChain, type BrokenLink } from './hash-chain.js';
import { RetentionRepository } from './retention.repository.js';
import { parseStreamName, streamNamesOfLeg } from './stream-names.js';
import type { WebhookRecord } from './webhook-record.js';

/** The stream that records every erasure request (`SubjectErased`). */
export const ERASURES_STREAM = 'erasures-ledger';
/** The provider name of the receipts an erasure stores (its request, `source: 'admin'`): not a telephony provider. */
export const LEDGER_PROVIDER = 'ledger';

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
  /** What it erased in months retention archived (their NDJSON rewritten, their manifests signed again). */
  archived: ArchivedCounts;
  /** Position of the last event the erasure appended (read-your-writes for the projections). */
  position: string | null;
}

export interface ArchivedCounts {
  /** Archived months whose files changed. */
  months: number;
  events: number;
  fields: number;
  receipts: number;
  notErasable: number;
}

/** The positions of a stream an erasure changed; `parties`: the leg's parties erased in an archived month. */
export interface StreamChanges {
  positions: string[];
  fields: number;
  parties?: ('from' | 'to')[];
}

/** What the archive part of an erasure prepared: its counts, and the archived positions it changed by stream. */
export interface ArchiveErasureReport extends ArchivedCounts {
  changed: Map<string, StreamChanges>;
}

const NO_ARCHIVE: ArchiveErasureReport = { months: 0, events: 0, fields: 0, receipts: 0, notErasable: 0, changed: new Map() };

/**
 * The archived months' part of an erasure (apps/ledger/src/retention/archive-eraser.ts, the file side), called under
 * the erasure's lock: `prepare` writes each affected month's new files beside the old ones, `commit` makes them the
 * archive's just before the store commits, `abort` throws away what was not committed.
 */
export interface ArchiveErasure {
  prepare(req: ErasureRequest, matcher: SubjectMatcher): Promise<ArchiveErasureReport>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** An erasure that cannot run now (a month retention detached and has not archived yet). Nothing was erased. */
export class ErasureBlockedError extends Error {}

/** What committed after the first pass's snapshot: its events and their receipts. */
interface Tail {
  positions: string[];
  receipts: string[];
}

interface Pass {
  /** Positions read by a pass: the second pass skips them. */
  seen: Set<string>;
  triples: number;
  events: Set<string>;
  receipts: number;
  notErasable: number;
  changed: Map<string, StreamChanges>;
}

/** A chain that no longer verified after the erasure: the transaction was rolled back, nothing was erased. */
export class ErasureBreaksChainError extends Error {
  constructor(readonly broken: BrokenLink[]) {
    super(`the erasure would break ${broken.length} chain(s): ${broken.map((b) => `${b.streamName} at ${b.position}: ${b.reason}`).join('; ')}`);
  }
}

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

  /**
   * @param archive the archived months' part (the service passes it; absent: the live store only)
   * @param probe a way into the window the fence closes, between the first pass and the fence (tests, the probe)
   */
  async erase(req: ErasureRequest, archive?: ArchiveErasure, probe: { afterFirstPass?: () => Promise<void> } = {}): Promise<ErasureOutcome> {
    return this.db.transaction().execute(async (trx) => {
      // One erasure at a time: two erasing the same receipt would each compute commitments from the other's values.
      // Retention holds the same lock while a month is detached, archived and dropped (RetentionRepository.withErasuresHeld).
      await sql`SELECT pg_advisory_xact_lock(hashtext('ledger_erase'))`.execute(trx);
      const waiting = await sql<{ month: string }>`
        SELECT to_char(l.month, 'YYYY-MM') AS month FROM ledger_retention_log l
        WHERE l.state = 'detached' AND l.id = (SELECT max(x.id) FROM ledger_retention_log x WHERE x.month = l.month)`.execute(trx);
      if (waiting.rows.length > 0) {
        // Its rows are neither in the store nor in an archive yet: an erasure now would miss them.
        throw new ErasureBlockedError(`month ${waiting.rows.map((r) => r.month).join(', ')} was detached by retention and is not archived yet; run retention (POST /v1/admin/retention) first`);
      }
      const m = subjectMatcher(req.subject);
      let archived: ArchiveErasureReport = NO_ARCHIVE;
      try {
        // The archived months are read and their new files written aside (nothing visible yet) before this transaction
        // writes anything: until its first write it has no transaction id, so it holds back neither the projector's
        // cursor nor the checkpoints however long the archive takes to read.
        if (archive) archived = await archive.prepare(req, m);
        // What committed before this snapshot is read by the first pass; what commits after it, by the second.
        const snapshot = (await sql<{ s: string; xmin: string }>`SELECT s::text AS s, pg_snapshot_xmin(s)::text AS xmin FROM pg_current_snapshot() AS s`.execute(trx)).rows[0]!;
        const acc: Pass = { seen: new Set(), triples: 0, events: new Set(), receipts: 0, notErasable: 0, changed: new Map() };
        await this.erasePass(trx, req.subject, m, acc, null);
        await probe.afterFirstPass?.();
        // The fence: appends wait from here to the commit, so a delivery of the subject that committed during the first
        // pass is found by the second (it reads only what committed after the snapshot), and none can slip in after.
        await sql`SELECT ledger_erasure_fence()`.execute(trx);
        await this.erasePass(trx, req.subject, m, acc, snapshot);

        for (const [stream, c] of archived.changed) {
          const mine = acc.changed.get(stream) ?? acc.changed.set(stream, { positions: [], fields: 0 }).get(stream)!;
          mine.positions.push(...c.positions);
          mine.fields += c.fields;
          if (c.parties?.length) mine.parties = [...new Set([...(mine.parties ?? []), ...c.parties])].sort();
        }
        const streams = [...acc.changed.keys()].sort();
        const outcome: ErasureOutcome = {
          erasureId: req.erasureId,
          streams,
          events: acc.events.size,
          fields: acc.triples,
          receipts: acc.receipts,
          notErasable: acc.notErasable,
          archived: { months: archived.months, events: archived.events, fields: archived.fields, receipts: archived.receipts, notErasable: archived.notErasable },
          position: null,
        };
        // The record is appended on the erasing transaction (a Transaction is a Kysely, not the Nest token class).
        const store = new EventStoreRepository(trx as unknown as Database);
        const appended = await store.appendBatch(erasureRecords(req, outcome, acc.changed));
        outcome.position = appended.map((a) => a.position).filter((p): p is string => p !== null).sort((a, b) => Number(BigInt(a) - BigInt(b))).at(-1) ?? null;

        // The proof, before the commit: every touched chain (and the erasures stream) still verifies to its head.
        const check = [...streams, ERASURES_STREAM];
        const links = await store.readChainLinks({ streamNames: check });
        const heads = await store.readStreamHeads(check);
        const runs = await new RetentionRepository(trx as unknown as Database).archivedRuns(check);
        const byStream = new Map<string, typeof links>();
        for (const l of links) (byStream.get(l.streamName) ?? byStream.set(l.streamName, []).get(l.streamName)!).push(l);
        const broken: BrokenLink[] = [];
        for (const name of check) {
          const b = verifyStreamChain(byStream.get(name) ?? [], heads.get(name), runs.get(name));
          if (b) broken.push(b);
        }
        if (broken.length > 0) throw new ErasureBreaksChainError(broken);
        // The archive's new files become its files just before the commit (README: a crash between the two leaves
        // the archive erased and the store not; asking again completes it).
        if (archive) await archive.commit();
        return outcome;
      } catch (err) {
        await archive?.abort();
        throw err;
      }
    });
  }

  /** One pass over the store: `since` null reads everything, a snapshot only what committed after it. */
  private async erasePass(trx: Kysely<DB>, subject: ErasureSubject, m: SubjectMatcher, acc: Pass, since: { s: string; xmin: string } | null): Promise<void> {
    let tail: Tail | null = null;
    if (since) {
      // What the snapshot did not see: a range of the transaction-id index (the projector's cursor index), usually empty.
      const r = await sql<{ p: string; r: string }>`SELECT global_position::text AS p, receipt_id::text AS r FROM events
        WHERE transaction_id >= ${since.xmin}::xid8 AND NOT pg_visible_in_snapshot(transaction_id, ${since.s}::pg_snapshot)`.execute(trx);
      const rows = r.rows.filter((x) => !acc.seen.has(x.p));
      if (rows.length === 0) return;
      tail = { positions: rows.map((x) => x.p), receipts: [...new Set(rows.map((x) => x.r))] };
    }
    const candidates = (await this.candidates(trx, subject, tail)).filter((c) => !acc.seen.has(c.position));
    for (const c of candidates) acc.seen.add(c.position);
    // Receipts that go: those that matched (query, body) or whose events matched; for a leg, its events' receipts.
    const receipts = new Set<string>();
    for (const c of candidates) if (c.matched && !c.receipt_erased) receipts.add(c.receipt_id);
    const triples: { pos: string; path: string; commit: string }[] = [];
    for (const c of candidates) {
      const plan = planEventErasure(m, { chainVersion: c.chain_version, data: c.data, metadata: c.metadata, receipt: { query: c.query } }, c.matched, receipts.has(c.receipt_id));
      if (plan.notErasable) acc.notErasable += 1;
      for (const e of plan.erased) triples.push({ pos: c.position, path: e.path, commit: e.commitment });
      // Every event the erasure changes (values, or its receipt's body) is named by its stream's PersonalDataErased:
      // the verifier reports an erased link that no record names.
      if (plan.touched) {
        const changed = acc.changed.get(c.stream_name) ?? acc.changed.set(c.stream_name, { positions: [], fields: 0 }).get(c.stream_name)!;
        changed.positions.push(c.position);
        changed.fields += plan.erased.length;
      }
    }
    if (triples.length === 0 && receipts.size === 0) return;
    await sql`SELECT * FROM ledger_erase(${triples.map((t) => t.pos)}::bigint[], ${triples.map((t) => t.path)}::text[],
      ${triples.map((t) => t.commit)}::text[], ${[...receipts]}::bigint[])`.execute(trx);
    acc.triples += triples.length;
    for (const t of triples) acc.events.add(t.pos);
    acc.receipts += receipts.size;
  }

  /** `only`: the events of the second pass (what committed after the first pass's snapshot); null: every event. */
  private async candidates(trx: Kysely<DB>, subject: ErasureSubject, only: Tail | null): Promise<Candidate[]> {
    const tail = (alias: string) => (only === null ? sql`true` : sql`${sql.ref(`${alias}.global_position`)} = ANY (${only.positions}::bigint[])`);
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
      // The second pass reads only the new receipts (by id: a semi-join let the planner scan every body first).
      const scope = only === null ? sql`true` : sql`w2.id = ANY (${only.receipts}::bigint[])`;
      receipts = sql`SELECT w2.id FROM webhook_receipts w2 WHERE w2.erased_at IS NULL AND ${scope} AND (w2.query ~ ${p} OR encode(w2.body, 'escape') ~ ${p})
        UNION SELECT e.receipt_id AS id FROM events e WHERE ${matched} AND ${tail('e')}`;
    } else {
      const names = subject.legIds.flatMap((id) => streamNamesOfLeg(PROVIDERS as unknown as Provider[], id));
      matched = sql`e.stream_name = ANY (${names}::text[])`;
      receipts = sql`SELECT e.receipt_id AS id FROM events e WHERE ${matched} AND ${tail('e')}`;
    }
    // The subject's events, and every event of a receipt that goes (its query seal changes with the receipt).
    const rows = await sql<Omit<Candidate, 'matched'> & { matched: boolean }>`
      WITH r AS (${receipts})
      SELECT ${cols}, ${matched} AS matched
      FROM events e JOIN webhook_receipts w ON w.id = e.receipt_id
      WHERE (${matched} OR e.receipt_id IN (SELECT id FROM r)) AND ${tail('e')}
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
const erasureRecords = (req: ErasureRequest, outcome: ErasureOutcome, changedByStream: Map<string, StreamChanges>): WebhookRecord[] => {
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
    const { positions, fields, parties } = changedByStream.get(streamName) ?? { positions: [], fields: 0 };
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
      data: { erasureId: req.erasureId, positions, fields, ...(parties?.length ? { parties } : {}) },
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
          archived: outcome.archived,
        },
      },
    ],
  });
  return records;
};
