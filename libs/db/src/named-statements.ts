import { createHash } from 'node:crypto';
import pg from 'pg';
import type { CompiledQuery, Kysely, QueryResult, RawBuilder } from 'kysely';
import type { DB } from './database.types.js';

/**
 * Named (prepared) statements for the few texts that the projector runs at every live batch. Kysely sends every
 * statement unnamed, so PostgreSQL parses and plans it again at each call; over the month-partitioned store tables
 * (events, webhook_receipts: a partition per month, each with its indexes) that planning was 27–30 % of the
 * projector's statement time (bench/profile-notes.md, issue 14). A text registered here goes out under a name
 * derived from it, so each connection parses it once and keeps its plan (see lockProjectionBatch for the generic
 * plan the live batches ask for).
 *
 * Only texts a caller registers are named, never every statement: a text that varies with its input (an IN list of
 * n parameters) would leave a prepared statement per variant on every connection. The registry is bounded too.
 *
 * What qualifies: a fixed text whose plan does not hinge on the sizes of the tables it reads. PostgreSQL (plan_cache_mode
 * auto) plans a named statement afresh five times, then keeps a generic plan when it is not dearer, and replans only
 * when a table's statistics or shape change (ANALYZE, DDL, a new partition). The store reads qualify (index-driven
 * predicates, index scans even on an empty partition); the legs upsert does (a sort of the unnested rows, the conflict
 * checks on the unique indexes). The tree heal did not: a generic plan made while the legs table was small kept its
 * scans as it grew (27 ms a call against 2.6 ms planned each time, ingest compare with pg_stat_statements), so the
 * statements that join or scan a read model's tables stay unnamed.
 */
const names = new Map<string, string>();
/** Far above the fixed texts the code registers (a few per generation); past it, texts go out unnamed. */
const MAX_NAMED = 256;

const nameOf = (text: string): string | undefined => {
  const known = names.get(text);
  if (known !== undefined || names.size >= MAX_NAMED) return known;
  // A hash of the text: the same text gets the same name on every connection and in every process, and two texts
  // never share one (pg refuses a name reused with another text).
  const name = `ledger_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
  names.set(text, name);
  return name;
};

/** Runs `query` as a named statement (its compiled text registered, so that the pool's client names it). */
export const executeNamed = <R>(db: Kysely<DB>, query: RawBuilder<R>): Promise<QueryResult<R>> => {
  const compiled: CompiledQuery<R> = query.compile(db);
  nameOf(compiled.sql);
  return db.executeQuery(compiled);
};

const plainQuery = pg.Client.prototype.query as (this: pg.Client, ...args: unknown[]) => unknown;

/**
 * The pool's client: a plain-text query whose text is registered goes out as `{ name, text, values }`. Kysely's
 * pg driver calls `client.query(text, values)`, so nothing else changes.
 */
export class NamingClient extends pg.Client {}
// Patched on the prototype rather than overridden: pg's query() has a dozen overloads that an override would have to
// restate, and this only looks at the (text, values) form Kysely uses.
(NamingClient.prototype as unknown as { query: (this: pg.Client, ...args: unknown[]) => unknown }).query = function (this: pg.Client, ...args: unknown[]) {
  const [text, values] = args;
  if (args.length === 2 && typeof text === 'string' && Array.isArray(values)) {
    const name = names.get(text);
    if (name !== undefined) return plainQuery.call(this, { name, text, values });
  }
  return plainQuery.apply(this, args);
};
