import { sql, type Kysely } from 'kysely';
import { rewriteFunction } from './rewrite-function.js';

const FUNCTIONS_BEFORE = "p.proname IN ('ledger_append', 'ledger_erase')";
const FUNCTIONS_AFTER =
  "p.proname IN ('ledger_append', 'ledger_erase', 'ledger_append_staged', 'ledger_ensure_partitions', 'ledger_detach_month', 'ledger_drop_month', 'ledger_erasure_fence')";
const INSERTS_ANCHOR = "EXECUTE 'REVOKE ALL ON FUNCTION ledger_apply_roles() FROM PUBLIC';";
const INSERTS = `${INSERTS_ANCHOR}
      -- Tables the service adds rows to, never changes (made by later migrations, which grant it too when the roles exist).
      FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = s::regnamespace AND c.relkind IN ('r', 'p')
        AND c.relname IN ('audit_actions', 'import_staged_receipts', 'import_staged_events') LOOP
        EXECUTE format('GRANT INSERT ON %I.%I TO ledger_app', s, r.relname);
      END LOOP;`;

/**
 * `ledger_apply_roles()` is what an operator runs after creating the roles by hand when the migrating role could not
 * (README "Database roles"). Until now it granted only `ledger_append` and `ledger_erase`: the service functions
 * and tables that later migrations grant directly when the roles already exist (the import's staged append and
 * staging tables, making months ahead, retention's detach and drop, the erasure fence, the admin audit log) stayed
 * ungranted on such a store, so imports, retention and erasures failed with permission errors there. It now grants
 * them all, with the same SECURITY DEFINER and pinned search_path that those functions already have.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await rewriteFunction('ledger_apply_roles()', [
    [FUNCTIONS_BEFORE, FUNCTIONS_AFTER],
    [INSERTS_ANCHOR, INSERTS],
  ]).execute(db);
  await sql`SELECT ledger_apply_roles()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rewriteFunction('ledger_apply_roles()', [
    [INSERTS, INSERTS_ANCHOR],
    [FUNCTIONS_AFTER, FUNCTIONS_BEFORE],
  ]).execute(db);
}
