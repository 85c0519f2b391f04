import { randomBytes } from 'node:crypto';
import { Migrator, sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrations } from '../../../migrations/index.js';
import { EventStoreRepository } from '@lib/event-store';
import { callLegsProjection, Projector } from '@lib/projections';
import { createTestDatabase, jambonzRecord, legacyAppendShim, type TestDatabase } from '@lib/testing';
import { createDatabase, type DatabaseHandle } from './database.js';
import { APP_ROLE, PROJECTOR_ROLE, urlAsRole } from './database-roles.js';
import { migrateToLatest } from './migrate.js';

/**
 * The service's roles against the real server (the test database is migrated by the owner, as in production):
 * the app role reads and appends through ledger_append and nothing else; the projector owns the read models.
 */
let tdb: TestDatabase;
let app: DatabaseHandle;
let projector: DatabaseHandle;
beforeAll(async () => {
  tdb = await createTestDatabase(2);
  app = createDatabase(tdb.appUrl, 2);
  projector = createDatabase(tdb.projectorUrl, 2);
});
afterAll(async () => {
  await app?.db.destroy();
  await projector?.db.destroy();
  await tdb?.drop();
});

const record = (legId: string) => jambonzRecord(legId);

/** The SQLSTATE a statement fails with (null when it succeeds). */
const failure = async (db: Kysely<any>, statement: ReturnType<typeof sql>): Promise<string | null> =>
  statement.execute(db).then(
    () => null,
    (err: { code?: string }) => err.code ?? 'no code',
  );

const INSUFFICIENT_PRIVILEGE = '42501';

const legIds = async (db: Kysely<any>): Promise<string[]> =>
  (await sql<{ call_id: string }>`SELECT call_id FROM call_legs ORDER BY call_id`.execute(db)).rows.map((r) => r.call_id);

describe('the app role (ledger_app)', () => {
  it('appends through ledger_append (SECURITY DEFINER) and reads the store', async () => {
    const [outcome] = await new EventStoreRepository(app.db).appendBatch([record('roles-1')]);
    expect(outcome).toMatchObject({ duplicate: false, events: ['CallRinging'] });
    const who = await sql<{ u: string }>`SELECT current_user AS u`.execute(app.db);
    expect(who.rows[0]!.u).toBe('ledger_app');
    const row = await app.db.selectFrom('events').select(['stream_name', 'receipt_id']).where('global_position', '=', outcome!.position).executeTakeFirstOrThrow();
    expect(row.stream_name).toBe('callLeg-jambonz:roles-1');
    expect(await failure(app.db, sql`SELECT count(*) FROM webhook_receipts, streams`)).toBeNull();
  });

  it('cannot write the store directly, change its schema or create anything', async () => {
    const statements = {
      'INSERT INTO events': sql`INSERT INTO events (event_id, stream_name, stream_version, type, data, metadata, receipt_id, received_at, hash)
        SELECT gen_random_uuid(), 'x', 99, 'Forged', '{}', '{}', id, now(), '\\x00' FROM webhook_receipts LIMIT 1`,
      'INSERT INTO webhook_receipts': sql`INSERT INTO webhook_receipts (provider, body_sha256, body, path, query, headers, received_at, source, signature_status)
        VALUES ('jambonz', '\\x01', '\\x01', '', '', '{}', now(), 'live', 'verified')`,
      'UPDATE webhook_receipts': sql`UPDATE webhook_receipts SET path = 'forged'`,
      'UPDATE streams': sql`UPDATE streams SET version = 0`,
      'DELETE FROM streams': sql`DELETE FROM streams`,
      'DELETE FROM events': sql`DELETE FROM events`,
      'TRUNCATE events': sql`TRUNCATE events`,
      'ALTER TABLE events': sql`ALTER TABLE events DISABLE TRIGGER USER`,
      'DROP TABLE events': sql`DROP TABLE events`,
      // Each signature of it: deliveries, and a receipt's re-translation (20261202000100_retranslation).
      'DROP FUNCTION ledger_append': sql`DROP FUNCTION ledger_append(text[], bytea[], bytea[], bytea[], text[], text[], text[], text[], text[], timestamptz[], text[], text[],
        timestamptz[], int[], text[], uuid[], text[], text[], text[], timestamptz[], text[], smallint, text[])`,
      'DROP FUNCTION ledger_append (re-translation)': sql`DROP FUNCTION ledger_append(text, smallint, bigint, bigint, boolean, bigint[], int[], text[], uuid[], text[],
        text[], text[], timestamptz[], text[], smallint)`,
      'CREATE TABLE': sql`CREATE TABLE forged (id int)`,
      'CREATE FUNCTION': sql`CREATE FUNCTION forged() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
      'INSERT INTO projection_checkpoints': sql`INSERT INTO projection_checkpoints (name, version) VALUES ('forged', 1)`,
      'ledger_apply_roles()': sql`SELECT ledger_apply_roles()`,
    };
    const results: Record<string, string | null> = {};
    for (const [name, statement] of Object.entries(statements)) results[name] = await failure(app.db, statement);
    expect(results).toEqual(Object.fromEntries(Object.keys(statements).map((k) => [k, INSUFFICIENT_PRIVILEGE])));
    // Nothing slipped through as the superuser sees it.
    expect((await sql<{ n: string }>`SELECT count(*)::text AS n FROM pg_tables WHERE tablename = 'forged'`.execute(tdb.db)).rows[0]!.n).toBe('0');
  });

  it('cannot call ledger_append with a search_path of its own making (pinned)', async () => {
    const config = await sql<{ cfg: string[] | null; secdef: boolean }>`
      SELECT proconfig AS cfg, prosecdef AS secdef FROM pg_proc WHERE proname = 'ledger_append'`.execute(tdb.db);
    expect(config.rows.length).toBeGreaterThan(0);
    for (const r of config.rows) {
      expect(r.secdef).toBe(true);
      expect(r.cfg).toContain('search_path=public, pg_temp');
    }
  });
});

describe('the projector role (ledger_projector)', () => {
  it('creates and maintains the read models, which the app can read but not write, and cannot write the store', async () => {
    const p = new Projector(projector.db, [callLegsProjection]);
    await p.init();
    await p.runUntilCaughtUp();
    expect(await legIds(app.db)).toContain('roles-1');
    const owner = await sql<{ owner: string }>`SELECT tableowner AS owner FROM pg_tables WHERE tablename = 'call_legs_g1'`.execute(tdb.db);
    expect(owner.rows[0]!.owner).toBe('ledger_projector');
    expect(await failure(app.db, sql`DELETE FROM call_legs_g1`)).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await failure(app.db, sql`DROP VIEW call_legs`)).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await failure(projector.db, sql`DELETE FROM streams`)).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await failure(projector.db, sql`INSERT INTO streams (stream_name) VALUES ('forged')`)).toBe(INSUFFICIENT_PRIVILEGE);
    expect(await failure(projector.db, sql`ALTER TABLE events DISABLE TRIGGER USER`)).toBe(INSUFFICIENT_PRIVILEGE);
    // A rebuild makes new generation tables: still readable by the app (default privileges).
    await p.rebuild();
    expect(await legIds(app.db)).toContain('roles-1');
  });

  it('a table a later migration creates (as the owner) is readable by both roles without a grant of its own', async () => {
    await sql`CREATE TABLE roles_later_table (id int)`.execute(tdb.db);
    expect(await failure(app.db, sql`SELECT * FROM roles_later_table`)).toBeNull();
    expect(await failure(projector.db, sql`SELECT * FROM roles_later_table`)).toBeNull();
    expect(await failure(app.db, sql`INSERT INTO roles_later_table VALUES (1)`)).toBe(INSUFFICIENT_PRIVILEGE);
  });
});

describe('a store made before the roles existed', () => {
  it('is upgraded by the migration: the read models the owner made pass to the projector, and the service roles work on it', async () => {
    const serverUrl = inject('pgServerUrl');
    const name = `ledger_old_${randomBytes(5).toString('hex')}`;
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    const owner = createDatabase(url.toString(), 2);
    let oldApp: DatabaseHandle | null = null;
    let oldProjector: DatabaseHandle | null = null;
    try {
      const result = await new Migrator({ db: owner.db, provider: { getMigrations: async () => migrations } }).migrateTo('20261201000200_tamper_evidence');
      expect(result.error).toBeUndefined();
      // The old service: everything as the owner, read models included.
      await legacyAppendShim(owner.db, 'create');
      await new EventStoreRepository(owner.db).appendBatch([record('old-1')]);
      await legacyAppendShim(owner.db, 'drop');
      // Its read model tables, made by the owner. (Today's projector cannot read that schema: it reads each receipt's
      // newest translation, whose table a later migration adds; the legs are projected after the migration below.)
      const before = new Projector(owner.db, [callLegsProjection]);
      await before.init();

      await migrateToLatest(owner.db);
      const owners = await sql<{ name: string; owner: string }>`
        SELECT c.relname AS name, pg_get_userbyid(c.relowner) AS owner FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1`.execute(owner.db);
      const byName = Object.fromEntries(owners.rows.map((r) => [r.name, r.owner]));
      expect(byName).toMatchObject({ call_legs: PROJECTOR_ROLE, call_legs_g1: PROJECTOR_ROLE, projection_checkpoints: PROJECTOR_ROLE, projection_failures: PROJECTOR_ROLE });
      expect(byName.events).not.toBe(PROJECTOR_ROLE);

      const passwords = inject('pgRolePasswords');
      oldApp = createDatabase(urlAsRole(url.toString(), APP_ROLE, passwords.app), 2);
      oldProjector = createDatabase(urlAsRole(url.toString(), PROJECTOR_ROLE, passwords.projector), 2);
      await new EventStoreRepository(oldApp.db).appendBatch([record('old-2')]);
      const after = new Projector(oldProjector.db, [callLegsProjection]);
      await after.init();
      await after.runUntilCaughtUp();
      expect(await legIds(oldApp.db)).toEqual(['old-1', 'old-2']);
    } finally {
      await oldApp?.db.destroy();
      await oldProjector?.db.destroy();
      await owner.db.destroy();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});

describe('roles made after the migrations (SELECT ledger_apply_roles() as the owner)', () => {
  // Every right the migrations gave the service roles on this store's functions and tables, as (object, grantee,
  // privilege): what an operator who creates the roles by hand afterwards must get back from ledger_apply_roles().
  const grants = async (): Promise<string[]> =>
    (
      await sql<{ g: string }>`
        SELECT format('%s|%s|%s', o.name, pg_get_userbyid(a.grantee), a.privilege_type) AS g
        FROM (
          SELECT p.oid::regprocedure::text AS name, p.proacl AS acl, p.proowner AS owner FROM pg_proc p
          WHERE p.pronamespace = current_schema()::regnamespace
          UNION ALL
          SELECT c.relname::text, c.relacl, c.relowner FROM pg_class c
          WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v')
        ) o, aclexplode(o.acl) a
        WHERE a.grantee <> o.owner AND pg_get_userbyid(a.grantee) IN (${APP_ROLE}, ${PROJECTOR_ROLE})
        ORDER BY 1`.execute(tdb.db)
    ).rows.map((r) => r.g);

  it('gives back every grant the migrations made: functions the service calls and tables it adds rows to', async () => {
    const before = await grants();
    // The service's own calls are among them (a list that would be empty would prove nothing).
    expect(before).toEqual(expect.arrayContaining([
      expect.stringMatching(/^ledger_append_staged\(uuid, ?smallint\)\|ledger_app\|EXECUTE$/),
      expect.stringMatching(/^ledger_erasure_fence\(\)\|ledger_app\|EXECUTE$/),
      expect.stringMatching(/^ledger_detach_month\(date\)\|ledger_app\|EXECUTE$/),
      'audit_actions|ledger_app|INSERT',
      'import_staged_events|ledger_app|INSERT',
    ]));
    for (const g of before) {
      const [object, grantee, privilege] = g.split('|') as [string, string, string];
      const isFunction = object.includes('(');
      await sql.raw(`REVOKE ${privilege} ON ${isFunction ? `FUNCTION ${object}` : `TABLE "${object}"`} FROM ${grantee}`).execute(tdb.db);
    }
    expect(await grants()).toEqual([]);

    await sql`SELECT ledger_apply_roles()`.execute(tdb.db);
    expect(await grants()).toEqual(before);
  });
});
