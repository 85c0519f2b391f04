import { sql } from 'kysely';
import { isDataError, type Database } from '@lib/db';
import { PROVIDERS, type Provider, type TranslatedEvent } from '@lib/ledger';
import { canonicalJson } from './canonical-json.js';
import { RetranslationRepository, storedStream, type CurrentEvent, type Retranslated, type StoredDelivery } from './retranslation.repository.js';

export interface RetranslateOptions {
  /** Each provider's current translator version (libs/providers TRANSLATOR_VERSIONS). */
  versions: Readonly<Record<Provider, number>>;
  /** The current translator, run over a stored delivery exactly as at ingest. */
  translate: (d: StoredDelivery) => TranslatedEvent[];
  /** Reads and compares only: nothing is appended and no progress is recorded. */
  dryRun?: boolean;
  /** Receipts read, translated and appended per transaction. */
  batchSize?: number;
  log?: (message: string) => void;
  /** Asked between batches: a run stopped early resumes where it stopped at the next start. */
  stopped?: () => boolean;
  lockPollMs?: number;
}

export interface ProviderReport {
  provider: Provider;
  /** The version the store was at, and the one it is brought to. */
  from: number;
  to: number;
  /** Receipts read (those already at `to` are counted but not translated). */
  scanned: number;
  /** Receipts whose translation changed: appended, or (dry run) that would be. */
  changed: number;
  /** Changes by kind: `<old event types> -> <new event types>`, with their counts. */
  changes: Record<string, number>;
  /** Receipts whose new translation the database refused (a value it cannot hold): they keep the old one. */
  refused: string[];
}

export interface RetranslateReport {
  dryRun: boolean;
  providers: ProviderReport[];
  /** Receipts that got a new translation in this run (0 in a dry run). */
  appended: number;
}

const LOCK = sql`hashtext('ledger-retranslate')`;

/** Providers whose stored receipts are not yet translated by their current translator version. */
export const providersBehind = async (db: Database, versions: Readonly<Record<Provider, number>>): Promise<Provider[]> => {
  const repo = new RetranslationRepository(db);
  const behind: Provider[] = [];
  for (const p of PROVIDERS) {
    const progress = await repo.progress(p);
    if (!progress || progress.version < versions[p] || (progress.version === versions[p] && !progress.done)) behind.push(p);
  }
  return behind;
};

/**
 * Re-translates the stored receipts of every provider whose translator is newer than the store
 * (docs/providers.md, "Translator versions and re-translation"). Append-only: for each receipt whose newest translation is older than
 * the current version, the current translator reads the stored body, path, query and content type; when its events
 * differ from the receipt's current ones, they are appended to the chains as a new translation of the same receipt,
 * which supersedes the old one for every reader. In batches, resumable (`translation_progress`), and one process at
 * a time (an advisory lock; a second process waits, then finds the work done). Ingest is not blocked: live
 * deliveries are translated by the current translators already.
 */
export const retranslateStore = async (db: Database, options: RetranslateOptions): Promise<RetranslateReport> => {
  const log = options.log ?? (() => undefined);
  const report: RetranslateReport = { dryRun: options.dryRun ?? false, providers: [], appended: 0 };
  if ((await providersBehind(db, options.versions)).length === 0) return report;
  if (options.dryRun) {
    for (const p of PROVIDERS) report.providers.push(await runProvider(db, p, options, report, log));
    return report;
  }
  await db.connection().execute(async (conn) => {
    for (let tries = 0; ; tries++) {
      const got = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${LOCK}) AS ok`.execute(conn);
      if (got.rows[0]?.ok) break;
      if (options.stopped?.()) return;
      if (tries === 0) log('another process is re-translating the store; waiting for it');
      await new Promise((r) => setTimeout(r, options.lockPollMs ?? 250));
    }
    try {
      for (const p of PROVIDERS) {
        if (options.stopped?.()) break;
        report.providers.push(await runProvider(db, p, options, report, log));
      }
    } finally {
      await sql`SELECT pg_advisory_unlock(${LOCK})`.execute(conn).catch(() => undefined);
    }
  });
  return report;
};

const runProvider = async (db: Database, provider: Provider, options: RetranslateOptions, report: RetranslateReport, log: (m: string) => void): Promise<ProviderReport> => {
  const repo = new RetranslationRepository(db);
  const to = options.versions[provider];
  const progress = await repo.progress(provider);
  const from = progress ? (progress.version === to && !progress.done ? to - 1 : progress.version) : 0;
  const out: ProviderReport = { provider, from, to, scanned: 0, changed: 0, changes: {}, refused: [] };
  if (progress && progress.version >= to && progress.done) return out;
  // A run of this version that stopped resumes after its last batch; receipts stored after the run began were
  // translated by the current translators at ingest.
  const resume = progress && progress.version === to && !progress.done;
  let after = resume ? progress.throughReceipt : '0';
  const until = resume ? progress.untilReceipt : await repo.lastReceipt(provider);
  log(`re-translating ${provider} receipts to translator version ${to}${resume ? ` (resuming after receipt ${after})` : ''}, up to receipt ${until}${options.dryRun ? ' (dry run)' : ''}`);
  const batchSize = options.batchSize ?? 500;
  for (;;) {
    if (options.stopped?.()) return out;
    const batch = await repo.deliveries(provider, after, until, batchSize);
    const items: Retranslated[] = [];
    for (const d of batch) {
      out.scanned += 1;
      if (d.newestVersion >= to) continue;
      // An erased receipt has no body left: translating the empty bytes would supersede its events with noise.
      if (d.erased) continue;
      const events = options.translate(d);
      if (sameTranslation(provider, d.current, events)) continue;
      items.push({ delivery: d, events });
      const kind = `${typesOf(d.current.map((e) => e.type))} -> ${typesOf(events.map((e) => e.type))}`;
      out.changes[kind] = (out.changes[kind] ?? 0) + 1;
      out.changed += 1;
    }
    const last = batch.at(-1)?.receiptId ?? until;
    const done = batch.length < batchSize;
    if (!options.dryRun) report.appended += await appendOrIsolate(repo, provider, to, items, { through: last, until, done }, out, log);
    after = last;
    if (batch.length > 0) log(`re-translated ${provider} up to receipt ${last} of ${until}: ${out.scanned} read, ${out.changed} with a new translation`);
    if (done) break;
  }
  log(
    options.dryRun
      ? `${provider}: ${out.scanned} receipts read, ${out.changed} would get a new translation at version ${to} (dry run, nothing written)`
      : `${provider} receipts are at translator version ${to}: ${out.scanned} read, ${out.changed} with a new translation`,
  );
  return out;
};

/** A new translation the database refuses (a value it cannot hold) is left out alone; the old one stays current. */
const appendOrIsolate = async (
  repo: RetranslationRepository,
  provider: Provider,
  version: number,
  items: Retranslated[],
  progress: { through: string; until: string; done: boolean },
  out: ProviderReport,
  log: (m: string) => void,
): Promise<number> => {
  try {
    return (await repo.append(provider, version, items, progress)).length;
  } catch (err) {
    if (!isDataError(err)) throw err;
  }
  let appended = 0;
  for (const item of items) {
    try {
      appended += (await repo.append(provider, version, [item], { ...progress, through: item.delivery.receiptId, done: false })).length;
    } catch (err) {
      if (!isDataError(err)) throw err;
      out.refused.push(item.delivery.receiptId);
      log(`receipt ${item.delivery.receiptId}: its new translation could not be stored (${(err as Error).message}); it keeps the old one`);
    }
  }
  await repo.append(provider, version, [], progress);
  return appended;
};

const typesOf = (types: string[]): string => (types.length ? types.join('+') : '(none)');

/** What a translator decides of an event, as the store keeps it. */
const fingerprint = (e: Omit<CurrentEvent, 'translation'>): string =>
  canonicalJson([e.stream, e.type, e.data, e.occurredAt, e.legId, e.accountId, e.parentLegId, e.party, e.providerSeq]);

const isoOrNull = (value: string | null): string | null => {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
};

/** Same events in the same order: then the receipt keeps its stored translation and nothing is appended. */
export const sameTranslation = (provider: Provider, current: readonly CurrentEvent[], next: readonly TranslatedEvent[]): boolean =>
  current.length === next.length &&
  current.every(
    (c, i) =>
      fingerprint(c) ===
      fingerprint({
        stream: storedStream(provider, next[i]!),
        type: next[i]!.type,
        data: next[i]!.data,
        occurredAt: isoOrNull(next[i]!.occurredAt),
        legId: next[i]!.legId,
        accountId: next[i]!.accountId,
        parentLegId: next[i]!.parentLegId,
        party: next[i]!.party,
        providerSeq: next[i]!.providerSeq,
      }),
  );
