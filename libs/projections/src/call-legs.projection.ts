import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from '@lib/db';
import { legStreamName } from '@lib/event-store';
import {
  cellKey, cellOf, coarsen, projectCallLeg, rollupDelta, toMs, TALK_BUCKETS, TALK_EDGES, type CallLegRow, type LedgerEvent, type Provider, type RollupCell, type RollupLeg,
} from '@lib/ledger';
import { COLUMNS, compareCursors, cursorOf, notParked, readLegEvents, toLedgerEvent, type Cursor, type EventRow } from './event-reader.js';
import { isDataError, ProjectionDataError, type Executor, type Isolate, type ProjectionDefinition } from './projection.js';

const legs = (g: number) => sql.table(`call_legs_g${g}`);
const recs = (g: number) => sql.table(`recordings_g${g}`);
const hourly = (g: number) => sql.table(`call_leg_hourly_g${g}`);

interface CellColumn {
  name: string;
  type: string;
  nullable: boolean;
  of: (c: RollupCell) => unknown;
}
const HOUR: CellColumn = { name: 'hour', type: 'timestamptz', nullable: true, of: (c) => c.hour };
const PROVIDER: CellColumn = { name: 'provider', type: 'text', nullable: false, of: (c) => c.provider };
const STATUS: CellColumn = { name: 'status', type: 'text', nullable: false, of: (c) => c.status };

/**
 * Two rollups of the same measures: the fine one carries every filter a cell can (account, direction, root or
 * not), the coarse one only the hour, provider and status, so that the common questions (a month by day, by
 * provider, by status) sum a few thousand rows instead of a cell per leg or two.
 */
interface RollupSpec {
  table: (g: number) => string;
  columns: CellColumn[];
}
const FINE: RollupSpec = {
  table: (g) => `call_leg_hourly_g${g}`,
  columns: [
    HOUR, PROVIDER,
    { name: 'account_id', type: 'text', nullable: true, of: (c) => c.accountId },
    { name: 'direction', type: 'text', nullable: true, of: (c) => c.direction },
    STATUS,
    { name: 'is_root', type: 'bool', nullable: false, of: (c) => c.isRoot },
  ],
};
const COARSE: RollupSpec = { table: (g) => `call_provider_hourly_g${g}`, columns: [HOUR, PROVIDER, STATUS] };
const ROLLUPS = [FINE, COARSE];
const names = (spec: RollupSpec, prefix = '') => sql.raw(spec.columns.map((c) => prefix + c.name).join(', '));
/** IS NOT DISTINCT FROM as plain equalities (coalesced value, null flag), which the planner can hash and merge on. */
const sameCell = (spec: RollupSpec, a: string, b: string) =>
  sql.raw(
    spec.columns
      .map((c) =>
        c.nullable
          ? `coalesce(${a}.${c.name}, ${c.type === 'timestamptz' ? "'epoch'" : "''"}) = coalesce(${b}.${c.name}, ${c.type === 'timestamptz' ? "'epoch'" : "''"}) AND (${a}.${c.name} IS NULL) = (${b}.${c.name} IS NULL)`
          : `${a}.${c.name} = ${b}.${c.name}`,
      )
      .join(' AND '),
  );
/** The histogram edges as a SQL array literal, for `width_bucket(seconds, edges)` (same buckets as talkBucket). */
export const TALK_EDGES_SQL = sql.raw(`'{${TALK_EDGES.join(',')}}'::float8[]`);
const streamOf = (provider: string, callId: string) => legStreamName(provider as Provider, callId);
const keyOf = (provider: string, callId: string) => `${provider}\u0000${callId}`;

/**
 * Call legs, their trees and their recordings. For every leg a batch touches, the row is recomputed from
 * all of that leg's events plus the parent-side events that name it (a pure function of the set of events,
 * so delivery order and duplicates cannot change it), then roots and depths are healed for the trees touched.
 */
export const callLegsProjection: ProjectionDefinition = {
  name: 'call_legs',
  // 2: hourly rollups for the analytics. 3: the coarse (hour, provider, status) rollup beside them.
  // 4: legs report out-of-bounds numbers (invalid_fields) instead of projecting them, and the rollups keep
  // the talk-time extremes (talk_min_ms, talk_max_ms) that bound the quantile estimates.
  //    Each leg's verification (verified / imported / unverified), from its events' receipts.
  //    Provider dialect rules (issue 11): Twilio `completed` is answered, AMD proves an answer, the dialled leg's
  // SIP code stays on the child, hangup side, end reason detail, AMD detail, time sources, start implied by
  // end - duration, PDD.
  version: 4,

  async createGeneration(db: Executor, g: number) {
    await sql`
      CREATE TABLE IF NOT EXISTS ${legs(g)} (
        provider text NOT NULL,
        call_id text NOT NULL,
        account_id text,
        parent_call_id text,
        root_call_id text NOT NULL,
        depth integer NOT NULL DEFAULT 0,
        direction text,
        from_number text,
        to_number text,
        status text NOT NULL,
        started_at timestamptz,
        answered_at timestamptz,
        ended_at timestamptz,
        ring_duration_sec double precision,
        talk_duration_sec double precision,
        ring_duration_source text,
        talk_duration_source text,
        answered_by text,
        end_reason text,
        sip_status integer,
        conference_ids text[] NOT NULL DEFAULT '{}',
        final boolean NOT NULL,
        event_count integer NOT NULL,
        last_position bigint NOT NULL,
        link_conflict boolean NOT NULL DEFAULT false,
        invalid_fields jsonb NOT NULL DEFAULT '[]',
        verification text NOT NULL,
        answered_by_detail text,
        hangup_by text,
        end_reason_detail text,
        started_at_source text,
        answered_at_source text,
        ended_at_source text,
        pdd_sec double precision,
        PRIMARY KEY (provider, call_id)
      )`.execute(db);
    await sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`call_legs_g${g}_parent`)} ON ${legs(g)} (provider, parent_call_id)`.execute(db);
    await sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`call_legs_g${g}_root`)} ON ${legs(g)} (provider, root_call_id)`.execute(db);
    await sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`call_legs_g${g}_started`)} ON ${legs(g)} (started_at DESC, provider, call_id)`.execute(db);
    // The query API's keyset order (newest first, unknown starts last), unfiltered and per account.
    await sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`call_legs_g${g}_page`)} ON ${legs(g)} (started_at DESC NULLS LAST, provider, call_id)`.execute(db);
    await sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`call_legs_g${g}_account_page`)} ON ${legs(g)} (account_id, started_at DESC NULLS LAST, provider, call_id)`.execute(db);
    await sql`
      CREATE TABLE IF NOT EXISTS ${recs(g)} (
        provider text NOT NULL,
        recording_id text NOT NULL,
        call_id text NOT NULL,
        root_call_id text NOT NULL,
        url text NOT NULL,
        duration_sec double precision,
        scope text NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (provider, call_id, recording_id)
      )`.execute(db);
    await sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`recordings_g${g}_root`)} ON ${recs(g)} (provider, root_call_id)`.execute(db);
    await sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`recordings_g${g}_created`)} ON ${recs(g)} (created_at DESC)`.execute(db);
    // Per rollup: one row per cell (start hour and the spec's dimensions) with integer measures that legs add
    // and take back as they change, and a talk-time histogram for the percentiles (leg-rollup.ts).
    for (const spec of ROLLUPS) {
      const cols = spec.columns.map((c) => `${c.name} ${c.type}${c.nullable ? '' : ' NOT NULL'}`).join(',\n        ');
      await sql`
        CREATE TABLE IF NOT EXISTS ${sql.table(spec.table(g))} (
          ${sql.raw(cols)},
          legs bigint NOT NULL,
          talk_ms bigint NOT NULL,
          ring_ms bigint NOT NULL,
          ring_n bigint NOT NULL,
          machine bigint NOT NULL,
          talk_hist bigint[] NOT NULL,
          talk_min_ms bigint,
          talk_max_ms bigint
        )`.execute(db);
      await sql`CREATE UNIQUE INDEX IF NOT EXISTS ${sql.raw(`${spec.table(g)}_cell`)} ON ${sql.table(spec.table(g))} (${names(spec)}) NULLS NOT DISTINCT`.execute(db);
    }
  },

  async publish(trx: Transaction<DB>, g: number) {
    // Drop and create rather than CREATE OR REPLACE: a new version may drop or reorder columns, which REPLACE
    // refuses. Both happen inside the switch-over transaction, so readers see the old view or the new one.
    const views = [['call_legs', legs(g)], ['recordings', recs(g)], ['call_leg_hourly', hourly(g)], ['call_provider_hourly', sql.table(COARSE.table(g))]] as const;
    for (const [view, table] of views) {
      await sql`DROP VIEW IF EXISTS ${sql.table(view)}`.execute(trx);
      await sql`CREATE VIEW ${sql.table(view)} AS SELECT * FROM ${table}`.execute(trx);
    }
  },

  async dropGeneration(db: Executor, g: number) {
    await sql`DROP TABLE IF EXISTS ${legs(g)}`.execute(db);
    await sql`DROP TABLE IF EXISTS ${recs(g)}`.execute(db);
    for (const spec of ROLLUPS) await sql`DROP TABLE IF EXISTS ${sql.table(spec.table(g))}`.execute(db);
  },

  handle(trx: Transaction<DB>, events: readonly LedgerEvent[], g: number, upTo?: Cursor) {
    return projectLegs(trx, events, g, LIVE, upTo);
  },

  /**
   * Rebuild by stream rather than by position: every leg is computed once from its whole stream, and trees
   * and rollups are derived once at the end instead of after every batch.
   */
  async bulkLoad(db: Kysely<DB>, g: number, belowXid: string, isolate: Isolate) {
    // Pages of streams by name; two workers so that PostgreSQL reads one page while Node folds another.
    let last = '';
    let pages = Promise.resolve<{ first: string; last: string } | null>(null);
    const nextPage = () =>
      (pages = pages.then(async () => {
        const page = await sql<{ stream_name: string }>`
          SELECT stream_name FROM streams WHERE stream_name > ${last} AND stream_name LIKE 'callLeg-%'
          ORDER BY stream_name LIMIT ${BULK_STREAMS}`.execute(db);
        if (page.rows.length === 0) return null;
        const range = { first: page.rows[0]!.stream_name, last: page.rows.at(-1)!.stream_name };
        last = range.last;
        return range;
      }));
    const worker = async () => {
      for (let range = await nextPage(); range; range = await nextPage()) {
        const { first, last: end } = range;
        // A name range rather than a list: one index range scan over the page's streams.
        const read = (trx: Transaction<DB>) => sql<EventRow>`
          SELECT ${COLUMNS} FROM events
          WHERE stream_name >= ${first} AND stream_name <= ${end} AND transaction_id < ${belowXid}::xid8`.execute(trx);
        try {
          await retryOnDeadlock(() =>
            db.transaction().execute(async (trx) => projectLegs(trx, (await read(trx)).rows.map(toLedgerEvent), g, BULK)),
          );
        } catch (err) {
          if (!isDataError(err)) throw err;
          // A poison event in the page: the projector parks what cannot be applied alone. Sub-batches hold part
          // of a stream, so they read the rest of each leg like the live loop does.
          await retryOnDeadlock(() =>
            db.transaction().execute(async (trx) => {
              // In commit order, so that each event is judged with its predecessors (upTo), as the live loop does.
              const events = (await read(trx)).rows.map(toLedgerEvent).sort((a, b) => compareCursors(cursorOf(a)!, cursorOf(b)!));
              await isolate(trx, events, (t, sub, upTo) => projectLegs(t, sub, g, BULK_ISOLATED, upTo));
            }),
          );
        }
      }
    };
    await Promise.all([worker(), worker()]);
    await db.transaction().execute(async (trx) => {
      await healAllTrees(trx, g);
      await rollupsFromScratch(trx, g);
    });
  },
};

const BULK_STREAMS = 2000;

/** Two bulk workers may both write a child leg that its parent's page names; PostgreSQL then aborts one of them. */
const retryOnDeadlock = async (f: () => Promise<void>): Promise<void> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01' || attempt >= 5) throw err;
    }
  }
};

interface Mode {
  /** The batch holds every event of its legs' own streams (bulk load), so they are not read again. */
  completeStreams: boolean;
  /** Heal roots and keep the rollups current after each batch (live), or once at the end (bulk load). */
  incremental: boolean;
}
const LIVE: Mode = { completeStreams: false, incremental: true };
const BULK: Mode = { completeStreams: true, incremental: false };
const BULK_ISOLATED: Mode = { completeStreams: false, incremental: false };

/** The pure fold failing on an event's content is as deterministic as SQL refusing a value: parkable. */
const pure = <T>(what: string, f: () => T): T => {
  try {
    return f();
  } catch (err) {
    throw new ProjectionDataError(`${what}: ${(err as Error).message}`, { cause: err });
  }
};

const projectLegs = async (trx: Transaction<DB>, events: readonly LedgerEvent[], g: number, mode: Mode, upTo?: Cursor) => {
  // Legs touched: the leg of each event, the children a parent-side event names, and the children of a
  // parent that reports machine detection (jambonz reports AMD on the parent).
  const touched = new Map<string, { provider: Provider; callId: string }>();
  const touch = (provider: Provider, callId: string | null | undefined) => {
    if (callId) touched.set(keyOf(provider, callId), { provider, callId });
  };
  const amdParents: { provider: Provider; callId: string }[] = [];
  for (const e of events) {
    if (!e.legId) continue;
    touch(e.provider, e.legId);
    const child = (e.data as { childLegId?: string }).childLegId;
    if (child) touch(e.provider, child);
    if (e.type === 'MachineDetected') amdParents.push({ provider: e.provider, callId: e.legId });
  }
  if (amdParents.length > 0) {
    const kids = await sql<{ provider: Provider; call_id: string }>`
      SELECT provider, call_id FROM ${legs(g)} l
      JOIN unnest(${amdParents.map((p) => p.provider)}::text[], ${amdParents.map((p) => p.callId)}::text[]) AS a(p, c)
        ON l.provider = a.p AND l.parent_call_id = a.c`.execute(trx);
    for (const k of kids.rows) touch(k.provider, k.call_id);
    const named = await sql<{ provider: Provider; child: string }>`
      SELECT metadata->>'provider' AS provider, data->>'childLegId' AS child FROM events
      WHERE stream_name = ANY (${amdParents.map((p) => streamOf(p.provider, p.callId))}::text[]) AND data ? 'childLegId'
        AND ${notParked(callLegsProjection.name, g)}`.execute(trx);
    for (const k of named.rows) touch(k.provider, k.child);
  }
  if (touched.size === 0) return;

  const targets = [...touched.values()];
  // The batch is in hand already; only the touched legs' other events are read.
  const held = mode.completeStreams ? new Set(events.map((e) => keyOf(e.provider, e.legId ?? ''))) : new Set<string>();
  const others = await readLegEvents(
    trx,
    targets.filter((t) => !held.has(keyOf(t.provider, t.callId))).map((t) => streamOf(t.provider, t.callId)),
    targets.map((t) => t.callId),
    events.map((e) => e.position),
    { projection: callLegsProjection.name, generation: g },
    upTo,
  );
  const all = [...events, ...others];
  const own = new Map<string, LedgerEvent[]>();
  const related = new Map<string, LedgerEvent[]>();
  for (const e of all) {
    if (e.legId) (own.get(keyOf(e.provider, e.legId)) ?? own.set(keyOf(e.provider, e.legId), []).get(keyOf(e.provider, e.legId))!).push(e);
    const child = (e.data as { childLegId?: string }).childLegId;
    if (child && e.legId !== child) {
      const k = keyOf(e.provider, child);
      (related.get(k) ?? related.set(k, []).get(k)!).push(e);
    }
  }
  // Parents' machine detection, for the rule that attaches a parent-reported AMD to the dial winner.
  const parentStreams = new Set<string>();
  for (const t of targets) {
    const k = keyOf(t.provider, t.callId);
    for (const e of [...(own.get(k) ?? []), ...(related.get(k) ?? [])]) {
      const parent = e.legId === t.callId ? e.parentLegId : e.legId;
      if (parent) parentStreams.add(streamOf(t.provider, parent));
    }
  }
  if (parentStreams.size > 0) {
    const amd = await sql<Parameters<typeof toLedgerEvent>[0]>`
      SELECT ${COLUMNS}
      FROM events WHERE stream_name = ANY (${[...parentStreams]}::text[]) AND type = 'MachineDetected'
        AND ${notParked(callLegsProjection.name, g)}`.execute(trx);
    const byParent = new Map<string, LedgerEvent[]>();
    for (const r of amd.rows.map(toLedgerEvent)) {
      const k = keyOf(r.provider, r.legId!);
      (byParent.get(k) ?? byParent.set(k, []).get(k)!).push(r);
    }
    for (const t of targets) {
      const k = keyOf(t.provider, t.callId);
      const parents = new Set<string>();
      for (const e of [...(own.get(k) ?? []), ...(related.get(k) ?? [])]) {
        const parent = e.legId === t.callId ? e.parentLegId : e.legId;
        if (parent) parents.add(keyOf(t.provider, parent));
      }
      for (const p of parents) for (const e of byParent.get(p) ?? []) (related.get(k) ?? related.set(k, []).get(k)!).push(e);
    }
  }

  const rows: CallLegRow[] = [];
  for (const t of targets) {
    const k = keyOf(t.provider, t.callId);
    const row = pure(`leg ${t.provider}:${t.callId}`, () =>
      projectCallLeg({ provider: t.provider, callId: t.callId, own: own.get(k) ?? [], related: related.get(k) ?? [] }),
    );
    if (row) rows.push(row);
  }
  if (rows.length === 0) return;
  const before = mode.incremental ? await currentLegs(trx, g, rows) : [];
  await upsertLegs(trx, g, rows);
  if (!mode.incremental) return;
  await healTrees(trx, g, rows);
  const prior = new Map(before.map((b) => [keyOf(b.provider, b.callId), b]));
  const changes = rows.map((r) => ({ before: prior.get(keyOf(r.provider, r.callId)) ?? null, after: r }));
  const delta = pure('rollup delta', () => rollupDelta(changes));
  await applyRollupDelta(trx, g, delta);
  // Talk extremes, kept for completed cells only (what the quantiles read). A completed leg entering a cell can only
  // widen them (least/greatest); one leaving it, or changing its talk, may narrow them, which cannot be taken back
  // like a sum: those cells are recomputed from their legs. Not only cells with a non-zero delta: two legs trading
  // 61 s and 69 s for 62 s and 68 s in one bucket net to zero and still move the max.
  const entered: { cell: RollupCell; ms: number }[] = [];
  const left: RollupCell[] = [];
  for (const { before: b, after: a } of changes) {
    const same = b !== null && b.talkDurationSec === a.talkDurationSec && b.status === a.status && cellKey(cellOf(b)) === cellKey(cellOf(a));
    if (same) continue;
    if (b?.status === 'completed') left.push(cellOf(b));
    if (a.status === 'completed') entered.push({ cell: cellOf(a), ms: toMs(a.talkDurationSec ?? 0) });
  }
  await widenExtremes(trx, g, entered);
  await refreshExtremes(trx, g, left);
};

const upsertLegs = async (trx: Transaction<DB>, g: number, rows: CallLegRow[]) => {
  const col = <T>(f: (r: CallLegRow) => T) => rows.map(f);
  await sql`
    INSERT INTO ${legs(g)} (provider, call_id, account_id, parent_call_id, root_call_id, depth, direction, from_number, to_number,
      status, started_at, answered_at, ended_at, ring_duration_sec, talk_duration_sec, ring_duration_source, talk_duration_source,
      answered_by, end_reason, sip_status, conference_ids, final, event_count, last_position, link_conflict, invalid_fields, verification,
      answered_by_detail, hangup_by, end_reason_detail, started_at_source, answered_at_source, ended_at_source, pdd_sec)
    SELECT t.provider, t.call_id, t.account_id, t.parent_call_id, t.call_id, 0, t.direction, t.from_number, t.to_number,
      t.status, t.started_at, t.answered_at, t.ended_at, t.ring, t.talk, t.ring_src, t.talk_src, t.answered_by, t.end_reason,
      t.sip_status, coalesce(string_to_array(nullif(t.conf, ''), ','), '{}'), t.final, t.event_count, t.last_position, t.link_conflict,
      t.invalid::jsonb, t.verification,
      t.answered_by_detail, t.hangup_by, t.end_reason_detail, t.started_at_source, t.answered_at_source, t.ended_at_source, t.pdd_sec
    FROM unnest(${col((r) => r.provider)}::text[], ${col((r) => r.callId)}::text[], ${col((r) => r.accountId)}::text[],
      ${col((r) => r.parentCallId)}::text[], ${col((r) => r.direction)}::text[], ${col((r) => r.from)}::text[], ${col((r) => r.to)}::text[],
      ${col((r) => r.status)}::text[], ${col((r) => r.startedAt)}::timestamptz[], ${col((r) => r.answeredAt)}::timestamptz[],
      ${col((r) => r.endedAt)}::timestamptz[], ${col((r) => r.ringDurationSec)}::float8[], ${col((r) => r.talkDurationSec)}::float8[],
      ${col((r) => r.ringDurationSource)}::text[], ${col((r) => r.talkDurationSource)}::text[], ${col((r) => r.answeredBy)}::text[],
      ${col((r) => r.endReason)}::text[], ${col((r) => r.sipStatus)}::int[], ${col((r) => r.conferenceIds.join(','))}::text[],
      ${col((r) => r.final)}::bool[], ${col((r) => r.eventCount)}::int[], ${col((r) => r.lastPosition)}::bigint[], ${col((r) => r.linkConflict)}::bool[],
      ${col((r) => JSON.stringify(r.invalidFields))}::text[], ${col((r) => r.verification)}::text[],
      ${col((r) => r.answeredByDetail)}::text[], ${col((r) => r.hangupBy)}::text[], ${col((r) => r.endReasonDetail)}::text[],
      ${col((r) => r.startedAtSource)}::text[], ${col((r) => r.answeredAtSource)}::text[], ${col((r) => r.endedAtSource)}::text[],
      ${col((r) => r.pddSec)}::float8[])
      AS t(provider, call_id, account_id, parent_call_id, direction, from_number, to_number, status, started_at, answered_at, ended_at,
        ring, talk, ring_src, talk_src, answered_by, end_reason, sip_status, conf, final, event_count, last_position, link_conflict, invalid,
        verification, answered_by_detail, hangup_by, end_reason_detail, started_at_source, answered_at_source, ended_at_source, pdd_sec)
    ORDER BY t.provider, t.call_id
    ON CONFLICT (provider, call_id) DO UPDATE SET
      account_id = EXCLUDED.account_id, parent_call_id = EXCLUDED.parent_call_id, direction = EXCLUDED.direction,
      from_number = EXCLUDED.from_number, to_number = EXCLUDED.to_number, status = EXCLUDED.status,
      started_at = EXCLUDED.started_at, answered_at = EXCLUDED.answered_at, ended_at = EXCLUDED.ended_at,
      ring_duration_sec = EXCLUDED.ring_duration_sec, talk_duration_sec = EXCLUDED.talk_duration_sec,
      ring_duration_source = EXCLUDED.ring_duration_source, talk_duration_source = EXCLUDED.talk_duration_source,
      answered_by = EXCLUDED.answered_by, end_reason = EXCLUDED.end_reason, sip_status = EXCLUDED.sip_status,
      conference_ids = EXCLUDED.conference_ids, final = EXCLUDED.final, event_count = EXCLUDED.event_count,
      last_position = EXCLUDED.last_position, link_conflict = EXCLUDED.link_conflict, invalid_fields = EXCLUDED.invalid_fields,
      verification = EXCLUDED.verification,
      answered_by_detail = EXCLUDED.answered_by_detail, hangup_by = EXCLUDED.hangup_by, end_reason_detail = EXCLUDED.end_reason_detail,
      started_at_source = EXCLUDED.started_at_source, answered_at_source = EXCLUDED.answered_at_source,
      ended_at_source = EXCLUDED.ended_at_source, pdd_sec = EXCLUDED.pdd_sec`.execute(trx);

  const recRows = rows.flatMap((r) => r.recordings.map((x) => ({ ...x, provider: r.provider })));
  await sql`
    DELETE FROM ${recs(g)} r USING unnest(${col((r) => r.provider)}::text[], ${col((r) => r.callId)}::text[]) AS t(p, c)
    WHERE r.provider = t.p AND r.call_id = t.c`.execute(trx);
  if (recRows.length > 0) {
    await sql`
      INSERT INTO ${recs(g)} (provider, recording_id, call_id, root_call_id, url, duration_sec, scope, created_at)
      SELECT t.p, t.rid, t.c, t.c, t.url, t.d, t.s, t.at
      FROM unnest(${recRows.map((r) => r.provider)}::text[], ${recRows.map((r) => r.recordingId)}::text[], ${recRows.map((r) => r.callId)}::text[],
        ${recRows.map((r) => r.url)}::text[], ${recRows.map((r) => r.durationSec)}::float8[], ${recRows.map((r) => r.scope)}::text[],
        ${recRows.map((r) => r.createdAt)}::timestamptz[]) AS t(p, rid, c, url, d, s, at)
      ON CONFLICT DO NOTHING`.execute(trx);
  }
};

/**
 * Root = topmost known ancestor. Walk up from every touched leg, then down from each root so that a parent
 * arriving after its children (or a late link) re-roots the whole subtree. Hop limits break cycles.
 */
const healTrees = async (trx: Transaction<DB>, g: number, rows: readonly { provider: Provider; callId: string }[]) => {
  const T = legs(g);
  await sql`
    WITH RECURSIVE up AS (
      SELECT l.provider, l.call_id, l.parent_call_id, l.call_id AS start, 0 AS hops
      FROM ${T} l JOIN unnest(${rows.map((r) => r.provider)}::text[], ${rows.map((r) => r.callId)}::text[]) AS t(p, c)
        ON l.provider = t.p AND l.call_id = t.c
      UNION ALL
      SELECT l.provider, l.call_id, l.parent_call_id, up.start, up.hops + 1
      FROM ${T} l JOIN up ON l.provider = up.provider AND l.call_id = up.parent_call_id
      WHERE up.hops < 32
    ), roots AS (
      SELECT DISTINCT ON (provider, start) provider, call_id AS root FROM up ORDER BY provider, start, hops DESC, call_id
    ), down AS (
      SELECT l.provider, l.call_id, l.call_id AS root, 0 AS depth
      FROM ${T} l JOIN (SELECT DISTINCT provider, root FROM roots) r ON l.provider = r.provider AND l.call_id = r.root
      UNION ALL
      SELECT l.provider, l.call_id, down.root, down.depth + 1
      FROM ${T} l JOIN down ON l.provider = down.provider AND l.parent_call_id = down.call_id AND l.call_id <> down.root
      WHERE down.depth < 32
    ), best AS (
      SELECT DISTINCT ON (provider, call_id) provider, call_id, root, depth FROM down ORDER BY provider, call_id, depth DESC
    ), moved AS (
      UPDATE ${T} l SET root_call_id = best.root, depth = best.depth FROM best
      WHERE l.provider = best.provider AND l.call_id = best.call_id
        AND (l.root_call_id IS DISTINCT FROM best.root OR l.depth IS DISTINCT FROM best.depth)
      RETURNING l.provider, l.call_id, best.root
    )
    UPDATE ${recs(g)} r SET root_call_id = moved.root FROM moved
    WHERE r.provider = moved.provider AND r.call_id = moved.call_id AND r.root_call_id IS DISTINCT FROM moved.root`.execute(trx);
  // Recordings of legs whose root did not move but whose recordings were just rewritten start at their own id.
  await sql`
    UPDATE ${recs(g)} r SET root_call_id = l.root_call_id FROM ${T} l
    JOIN unnest(${rows.map((x) => x.provider)}::text[], ${rows.map((x) => x.callId)}::text[]) AS t(p, c) ON l.provider = t.p AND l.call_id = t.c
    WHERE r.provider = l.provider AND r.call_id = l.call_id AND r.root_call_id IS DISTINCT FROM l.root_call_id`.execute(trx);
};

/** The legs as stored before this batch rewrites them: what their rollup contribution was. */
const currentLegs = async (trx: Transaction<DB>, g: number, rows: CallLegRow[]): Promise<(RollupLeg & { callId: string })[]> => {
  const r = await sql<{
    provider: Provider; call_id: string; account_id: string | null; parent_call_id: string | null; direction: RollupLeg['direction'];
    status: RollupLeg['status']; started_at: Date | null; talk_duration_sec: number | null;
    ring_duration_sec: number | null; answered_by: RollupLeg['answeredBy'];
  }>`
    SELECT l.provider, l.call_id, l.account_id, l.parent_call_id, l.direction, l.status, l.started_at,
      l.talk_duration_sec, l.ring_duration_sec, l.answered_by
    FROM ${legs(g)} l JOIN unnest(${rows.map((x) => x.provider)}::text[], ${rows.map((x) => x.callId)}::text[]) AS t(p, c)
      ON l.provider = t.p AND l.call_id = t.c`.execute(trx);
  return r.rows.map((x) => ({
    provider: x.provider, callId: x.call_id, accountId: x.account_id, parentCallId: x.parent_call_id, direction: x.direction,
    status: x.status, startedAt: x.started_at?.toISOString() ?? null,
    talkDurationSec: x.talk_duration_sec, ringDurationSec: x.ring_duration_sec, answeredBy: x.answered_by,
  }));
};

/** Adds the net change per cell; a cell left with no legs is removed, so live rollups equal rebuilt ones row for row. */
const applyRollupDelta = async (trx: Transaction<DB>, g: number, fine: ReturnType<typeof rollupDelta>) => {
  for (const spec of ROLLUPS) {
    const cells = spec === FINE ? fine : coarsen(fine, spec.columns.map((c) => c.of));
    if (cells.length === 0) continue;
    const T = sql.table(spec.table(g));
    const col = <T>(f: (c: (typeof cells)[number]) => T) => cells.map(f);
    const keys = sql.join(spec.columns.map((c) => sql`${col((x) => c.of(x.cell))}::${sql.raw(c.type)}[]`));
    const order = sql.raw(spec.columns.map((_, i) => String(i + 1)).join(', '));
    await sql`
      INSERT INTO ${T} AS h (${names(spec)}, legs, talk_ms, ring_ms, ring_n, machine, talk_hist)
      SELECT ${names(spec, 't.')}, t.legs, t.talk_ms, t.ring_ms, t.ring_n, t.machine, t.hist::bigint[]
      FROM unnest(${keys}, ${col((c) => c.delta.legs)}::bigint[], ${col((c) => c.delta.talkMs)}::bigint[], ${col((c) => c.delta.ringMs)}::bigint[],
        ${col((c) => c.delta.ringN)}::bigint[], ${col((c) => c.delta.machine)}::bigint[], ${col((c) => `{${c.delta.talkHistogram.join(',')}}`)}::text[])
        AS t(${names(spec)}, legs, talk_ms, ring_ms, ring_n, machine, hist)
      ORDER BY ${order}
      ON CONFLICT (${names(spec)}) DO UPDATE SET
        legs = h.legs + EXCLUDED.legs, talk_ms = h.talk_ms + EXCLUDED.talk_ms, ring_ms = h.ring_ms + EXCLUDED.ring_ms,
        ring_n = h.ring_n + EXCLUDED.ring_n, machine = h.machine + EXCLUDED.machine,
        talk_hist = ARRAY(SELECT a + b FROM unnest(h.talk_hist, EXCLUDED.talk_hist) AS u(a, b))`.execute(trx);
    await sql`
      DELETE FROM ${T} h USING unnest(${keys}) AS t(${names(spec)})
      WHERE h.legs = 0 AND ${sql.raw(spec.columns.map((c) => `h.${c.name} IS NOT DISTINCT FROM t.${c.name}`).join(' AND '))}`.execute(trx);
  }
};

/** Completed legs entering cells: the extremes take their talk in (least/greatest ignore the nulls of a new cell). */
const widenExtremes = async (trx: Transaction<DB>, g: number, entered: readonly { cell: RollupCell; ms: number }[]) => {
  if (entered.length === 0) return;
  for (const spec of ROLLUPS) {
    const byCell = new Map<string, { cell: RollupCell; mn: number; mx: number }>();
    for (const { cell, ms } of entered) {
      const k = JSON.stringify(spec.columns.map((c) => c.of(cell)));
      const e = byCell.get(k);
      if (e) {
        e.mn = Math.min(e.mn, ms);
        e.mx = Math.max(e.mx, ms);
      } else byCell.set(k, { cell, mn: ms, mx: ms });
    }
    const cells = [...byCell.values()];
    const keys = sql.join(spec.columns.map((c) => sql`${cells.map((x) => c.of(x.cell))}::${sql.raw(c.type)}[]`));
    await sql`
      UPDATE ${sql.table(spec.table(g))} h SET talk_min_ms = least(h.talk_min_ms, t.mn), talk_max_ms = greatest(h.talk_max_ms, t.mx)
      FROM unnest(${keys}, ${cells.map((c) => c.mn)}::bigint[], ${cells.map((c) => c.mx)}::bigint[]) AS t(${names(spec)}, mn, mx)
      WHERE ${sameCell(spec, 'h', 't')}
        AND (h.talk_min_ms IS DISTINCT FROM least(h.talk_min_ms, t.mn) OR h.talk_max_ms IS DISTINCT FROM greatest(h.talk_max_ms, t.mx))`.execute(trx);
  }
};

/**
 * talk_min_ms / talk_max_ms of the given cells, from the legs in them (same rounding as talk_ms). One lookup per
 * cell through the start-time index: an hour's range for a cell with an hour, `started_at IS NULL` for the cell of
 * legs with no start (an OR of the two in one join made PostgreSQL scan every leg for every batch).
 */
const refreshExtremes = async (trx: Transaction<DB>, g: number, fine: readonly RollupCell[]) => {
  if (fine.length === 0) return;
  for (const spec of ROLLUPS) {
    const unique = new Map(fine.map((c) => [JSON.stringify(spec.columns.map((col) => col.of(c))), c]));
    const cells = [...unique.values()];
    const keys = sql.join(spec.columns.map((c) => sql`${cells.map((x) => c.of(x))}::${sql.raw(c.type)}[]`));
    const others = spec.columns
      .filter((c) => c.name !== 'hour')
      .map((c) => (c.name === 'is_root' ? `(l.parent_call_id IS NULL) = t.is_root` : c.nullable ? `l.${c.name} IS NOT DISTINCT FROM t.${c.name}` : `l.${c.name} = t.${c.name}`))
      .join(' AND ');
    // An aggregate answers one row even when nothing matches: each cell goes through exactly one of the two branches.
    const extremes = (cells: string, hour: string) => sql`
      SELECT ${names(spec, 't.')}, m.mn, m.mx FROM unnest(${keys}) AS t(${names(spec)})
      CROSS JOIN LATERAL (
        SELECT min(floor(coalesce(l.talk_duration_sec, 0) * 1000 + 0.5))::bigint AS mn, max(floor(coalesce(l.talk_duration_sec, 0) * 1000 + 0.5))::bigint AS mx
        FROM ${legs(g)} l WHERE ${sql.raw(hour)} AND ${sql.raw(others)}
      ) m
      WHERE ${sql.raw(cells)}`;
    await sql`
      UPDATE ${sql.table(spec.table(g))} h SET talk_min_ms = x.mn, talk_max_ms = x.mx
      FROM (
        SELECT * FROM (${extremes('t.hour IS NOT NULL', `l.started_at >= t.hour AND l.started_at < t.hour + interval '1 hour'`)}) a
        UNION ALL
        SELECT * FROM (${extremes('t.hour IS NULL', 'l.started_at IS NULL')}) b
      ) x
      WHERE ${sameCell(spec, 'h', 'x')} AND (h.talk_min_ms IS DISTINCT FROM x.mn OR h.talk_max_ms IS DISTINCT FROM x.mx)`.execute(trx);
  }
};

/**
 * The rollups of a whole generation in one statement (end of a bulk load). Must agree with addLeg in
 * libs/ledger/src/leg-rollup.ts: same millisecond rounding, same histogram buckets.
 * The cell join spells IS NOT DISTINCT FROM as equalities (coalesced value, null flag): the planner can hash or
 * merge only on equalities, and with the nullable columns left to a join filter, a merge join on provider, status
 * and is_root compared every pair of cells in those groups (88 s of a 110 s rebuild at 60,000 legs, quadratic).
 */
const rollupsFromScratch = async (trx: Transaction<DB>, g: number) => {
  for (const spec of ROLLUPS) {
    const cell = names(spec);
    await sql`
      WITH l AS (
        SELECT date_trunc('hour', started_at, 'UTC') AS hour, provider, account_id, direction, status, parent_call_id IS NULL AS is_root,
          coalesce(talk_duration_sec, 0) AS talk, ring_duration_sec AS ring, answered_by
        FROM ${legs(g)}
      ), hist AS (
        SELECT ${cell}, jsonb_object_agg(b, n) AS j FROM (
          SELECT ${cell}, width_bucket(talk, ${TALK_EDGES_SQL}) AS b, count(*) AS n FROM l GROUP BY ${cell}, width_bucket(talk, ${TALK_EDGES_SQL})
        ) x GROUP BY ${cell}
      ), m AS (
        SELECT ${cell}, count(*) AS legs, sum(floor(talk * 1000 + 0.5))::bigint AS talk_ms,
          coalesce(sum(floor(ring * 1000 + 0.5)), 0)::bigint AS ring_ms, count(ring) AS ring_n,
          count(*) FILTER (WHERE answered_by IN ('machine', 'fax')) AS machine,
          min(floor(talk * 1000 + 0.5)) FILTER (WHERE status = 'completed')::bigint AS talk_min_ms,
          max(floor(talk * 1000 + 0.5)) FILTER (WHERE status = 'completed')::bigint AS talk_max_ms
        FROM l GROUP BY ${cell}
      )
      INSERT INTO ${sql.table(spec.table(g))} (${cell}, legs, talk_ms, ring_ms, ring_n, machine, talk_hist, talk_min_ms, talk_max_ms)
      SELECT ${names(spec, 'm.')}, m.legs, m.talk_ms, m.ring_ms, m.ring_n, m.machine,
        ARRAY(SELECT coalesce((hist.j ->> i::text)::bigint, 0) FROM generate_series(0, ${TALK_BUCKETS - 1}::int) AS i),
        m.talk_min_ms, m.talk_max_ms
      FROM m LEFT JOIN hist ON ${sameCell(spec, 'hist', 'm')}`.execute(trx);
  }
};

/**
 * Roots and depths of a whole generation: down from every leg with no (known) parent. Legs that walk finds
 * nothing for (parent links that form a cycle) go through the incremental rule, as they would live.
 */
const healAllTrees = async (trx: Transaction<DB>, g: number) => {
  const T = legs(g);
  // Legs are inserted as their own root at depth 0, which is already right for every root and for every leg
  // whose parent is unknown; so the walk starts only from roots that have children, and only rewrites
  // descendants. Each leg has one parent, so the walk reaches a leg at most once and needs no de-duplication.
  await sql`
    WITH RECURSIVE down AS (
      SELECT l.provider, l.call_id, l.call_id AS root, 0 AS depth FROM ${T} l
      WHERE (l.parent_call_id IS NULL
          OR NOT EXISTS (SELECT 1 FROM ${T} p WHERE p.provider = l.provider AND p.call_id = l.parent_call_id))
        AND EXISTS (SELECT 1 FROM ${T} c WHERE c.provider = l.provider AND c.parent_call_id = l.call_id AND c.call_id <> l.call_id)
      UNION ALL
      SELECT l.provider, l.call_id, down.root, down.depth + 1
      FROM ${T} l JOIN down ON l.provider = down.provider AND l.parent_call_id = down.call_id AND l.call_id <> down.root
      WHERE down.depth < 32
    )
    UPDATE ${T} l SET root_call_id = down.root, depth = down.depth FROM down
    WHERE down.depth > 0 AND l.provider = down.provider AND l.call_id = down.call_id
      AND (l.root_call_id IS DISTINCT FROM down.root OR l.depth IS DISTINCT FROM down.depth)`.execute(trx);
  const cyclic = await sql<{ provider: Provider; call_id: string }>`
    SELECT l.provider, l.call_id FROM ${T} l
    WHERE l.depth = 0 AND l.parent_call_id IS NOT NULL AND l.parent_call_id <> l.call_id
      AND EXISTS (SELECT 1 FROM ${T} p WHERE p.provider = l.provider AND p.call_id = l.parent_call_id)`.execute(trx);
  if (cyclic.rows.length > 0) await healTrees(trx, g, cyclic.rows.map((r) => ({ provider: r.provider, callId: r.call_id })));
  await sql`
    UPDATE ${recs(g)} r SET root_call_id = l.root_call_id FROM ${T} l
    WHERE r.provider = l.provider AND r.call_id = l.call_id AND r.root_call_id IS DISTINCT FROM l.root_call_id`.execute(trx);
};
