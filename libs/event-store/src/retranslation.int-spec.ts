import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_TIMEOUTS, createDatabase, type DatabaseHandle } from '@lib/db';
import { ProviderRegistry, TRANSLATOR_VERSIONS, translateDelivery } from '@lib/providers';
import { callLegsProjection, Projector } from '@lib/projections';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { oldStore } from '../../../test/support/old-store.js';
import { EventStoreRepository } from './event-store.repository.js';
import { verifyStreamChain } from './hash-chain.js';
import { retranslateStore, type RetranslateOptions } from './retranslation.js';

/**
 * Issue 11's closing condition: a store filled by the translators before the fix holds their events (Twilio AMD
 * and conference callbacks as UnrecognizedWebhook, jambonz and RCML hooks without their call state...). Replaying
 * those events cannot correct the legs; re-translating the kept raw bodies can. The store here holds, for every body
 * of the corpus, exactly what the old translators wrote (test/fixtures/retranslate/old-translations.json).
 */
const registry = new ProviderRegistry({ freeclimb: [], jambonz: [], twilio: [], restcomm: [] }, undefined);
const options = (extra: Partial<RetranslateOptions> = {}): RetranslateOptions => ({
  versions: TRANSLATOR_VERSIONS,
  translate: (d) => translateDelivery(registry.get(d.provider), d),
  batchSize: 7,
  ...extra,
});
const RECEIVED = new Date('2026-11-30T10:00:00.000Z');

/** The legs as the read model holds them, without what depends on positions. */
const legs = async (db: TestDatabase) =>
  (
    await sql<Record<string, unknown>>`SELECT * FROM call_legs ORDER BY provider, call_id`.execute(db.db)
  ).rows.map(({ last_position: _p, ...rest }) => rest);

const verifyAll = async (db: TestDatabase) => {
  const store = new EventStoreRepository(db.db);
  const links = await store.readChainLinks({});
  const byStream = new Map<string, typeof links>();
  for (const l of links) byStream.set(l.streamName, [...(byStream.get(l.streamName) ?? []), l]);
  const heads = await store.readStreamHeads([...byStream.keys()]);
  return [...byStream].map(([name, l]) => verifyStreamChain(l, heads.get(name))).filter((b) => b !== null);
};

let old: TestDatabase;
let app: DatabaseHandle;
let fresh: TestDatabase;

beforeAll(async () => {
  [old, fresh] = await Promise.all([createTestDatabase(4), createTestDatabase(4)]);
  // Re-translation runs as the service does: as ledger_app, which writes the store only through ledger_append.
  app = createDatabase(old.appUrl, 4, APP_TIMEOUTS);
});
afterAll(async () => {
  await app?.db.destroy();
  await Promise.all([old?.drop(), fresh?.drop()]);
});

describe('re-translation of a store filled by the old translators', () => {
  it('appends the new translations, and a rebuild gives the legs the current translators give', async () => {
    const entries = oldStore(RECEIVED);
    await new EventStoreRepository(old.db).appendBatch(entries.map((e) => e.record));
    const projector = new Projector(old.db, [callLegsProjection]);
    await projector.init();
    await projector.runUntilCaughtUp();
    const before = await legs(old);
    // The old rules' legs: the async AMD callback was kept as unrecognized on its leg, which shows no answer.
    expect(before.find((l) => l.call_id === 'CA1111aaaa2222bbbb3333cccc4444dddd')).toMatchObject({ answered_by: null, status: 'initiated' });

    const report = await retranslateStore(app.db, options());
    const twilio = report.providers.find((p) => p.provider === 'twilio')!;
    expect(twilio).toMatchObject({ from: 0, to: TRANSLATOR_VERSIONS.twilio, scanned: 12, refused: [] });
    // https://www.twilio.com/docs/voice/answering-machine-detection#webhook-parameters: the AsyncAmdStatusCallback.
    expect(twilio.changes['UnrecognizedWebhook -> MachineDetected']).toBe(1);
    // https://www.twilio.com/docs/voice/api/conference-resource#statuscallbackevent: participant-join and conference-end.
    expect(twilio.changes['UnrecognizedWebhook -> ConferenceJoined']).toBe(1);
    expect(report.appended).toBe(report.providers.reduce((n, p) => n + p.changed, 0));
    expect(report.appended).toBeGreaterThanOrEqual(8);

    // Append-only: the old events are all still there, each receipt's newest translation beside them.
    const rows = await sql<{ n: string }>`SELECT count(*)::text AS n FROM events WHERE metadata ? 'translation'`.execute(old.db);
    expect(Number(rows.rows[0]!.n)).toBeGreaterThan(0);
    expect(await verifyAll(old)).toEqual([]);
    // The live projector over the new translations, before the rebuild: a leg given new events is folded again
    // from its current ones (the incremental fold's state held the superseded events).
    await projector.runUntilCaughtUp();
    const live = await legs(old);

    await projector.rebuild('call_legs');
    // The same bodies ingested by today's translators into an empty store: the legs must be the same.
    await new EventStoreRepository(fresh.db).appendBatch(
      entries.map((e) => ({ ...e.record, events: translateDelivery(registry.get(e.provider), { ...e.record.receipt }), translation: TRANSLATOR_VERSIONS[e.provider] })),
    );
    const reference = new Projector(fresh.db, [callLegsProjection]);
    await reference.init();
    await reference.runUntilCaughtUp();
    expect(await legs(old)).toEqual(await legs(fresh));
    const amd = (await legs(old)).find((l) => l.call_id === 'CA1111aaaa2222bbbb3333cccc4444dddd');
    expect(amd).toMatchObject({ answered_by: 'machine', answered_by_detail: 'machine_end_beep', status: 'in-progress' });
    expect(live.find((l) => l.call_id === amd!.call_id)).toEqual(amd);
  });

  it('appends nothing the second time, nor when two processes start at once', async () => {
    const count = async () => (await sql<{ n: string }>`SELECT count(*)::text AS n FROM events`.execute(old.db)).rows[0]!.n;
    const n = await count();
    const again = await retranslateStore(app.db, options());
    expect(again).toMatchObject({ appended: 0, providers: [] });
    expect(await count()).toBe(n);

    // A store at version 0 again (a new bump in code): two processes race; the lock and the (receipt, version)
    // key let only one append each receipt.
    const bumped = { ...TRANSLATOR_VERSIONS, jambonz: TRANSLATOR_VERSIONS.jambonz + 1 };
    const mark = (d: Parameters<RetranslateOptions['translate']>[0]) => {
      const events = translateDelivery(registry.get(d.provider), d);
      // The bumped translator reads one more thing: the path of each hook as the AppHook kind.
      return d.provider === 'jambonz' ? [...events, { ...events[0]!, type: 'AppHook' as const, data: { kind: `path:${d.path}` } }] : events;
    };
    const other = createDatabase(old.appUrl, 4, APP_TIMEOUTS);
    try {
      const [a, b] = await Promise.all([
        retranslateStore(app.db, options({ versions: bumped, translate: mark, lockPollMs: 10 })),
        retranslateStore(other.db, options({ versions: bumped, translate: mark, lockPollMs: 10 })),
      ]);
      expect(a.appended + b.appended).toBe(6);
      const kept = await sql<{ n: string }>`SELECT count(*)::text AS n FROM receipt_translations WHERE version = ${bumped.jambonz}`.execute(old.db);
      expect(kept.rows[0]!.n).toBe('6');
    } finally {
      await other.db.destroy();
    }
    expect(await verifyAll(old)).toEqual([]);
  });

  it('a dry run lists what would change and appends nothing', async () => {
    const n = (await sql<{ n: string }>`SELECT count(*)::text AS n FROM events`.execute(old.db)).rows[0]!.n;
    const bumped = { ...TRANSLATOR_VERSIONS, twilio: TRANSLATOR_VERSIONS.twilio + 5 };
    const dry = await retranslateStore(app.db, options({ versions: bumped, dryRun: true, translate: () => [] }));
    expect(dry.providers.find((p) => p.provider === 'twilio')).toMatchObject({ scanned: 12, changed: 12 });
    expect(dry.appended).toBe(0);
    expect((await sql<{ n: string }>`SELECT count(*)::text AS n FROM events`.execute(old.db)).rows[0]!.n).toBe(n);
    const progress = await sql<{ version: number }>`SELECT version FROM translation_progress WHERE provider = 'twilio'`.execute(old.db);
    expect(progress.rows[0]!.version).toBe(TRANSLATOR_VERSIONS.twilio);
  });
});
