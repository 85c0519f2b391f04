import { sql, type Kysely } from 'kysely';

/**
 * Projection version 5 adds a read model, the daily rollup (`call_provider_daily`, `call_provider_daily_g<N>`).
 * `ledger_apply_roles()` passes the read models an owner made before the roles existed to `ledger_projector` by
 * name; this restates it with the daily rollup among those names (the body is otherwise 20261201000400's) and runs it
 * again, so that a daily rollup made by the owner is the projector's too. Read models the projector makes are its
 * own already.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE OR REPLACE FUNCTION ledger_apply_roles() RETURNS void LANGUAGE plpgsql AS $fn$
    DECLARE
      s text := current_schema();
      r record;
      am_super boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
    BEGIN
      -- Roles are cluster-wide: another database of the cluster (or the operator) may have made them already.
      FOR r IN SELECT unnest(ARRAY['ledger_app', 'ledger_projector']) AS name LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
          BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r.name);
          EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
              RAISE WARNING 'role % does not exist and % may not create it: the service keeps running as its DATABASE_URL role. Create ledger_app and ledger_projector, then run SELECT ledger_apply_roles() as %', r.name, current_user, current_user;
              RETURN;
          END;
        END IF;
      END LOOP;
      -- A non-superuser owner must be able to act as the projector to hand it the read models (and, in a
      -- single-URL deployment, to keep maintaining them).
      IF NOT am_super AND NOT pg_has_role(current_user, 'ledger_projector', 'MEMBER') THEN
        BEGIN
          EXECUTE format('GRANT ledger_projector TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
          RAISE EXCEPTION 'the migrating role % must be a member of ledger_projector: GRANT ledger_projector TO % (as a role that may)', current_user, current_user;
        END;
      END IF;

      EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', s);
      EXECUTE format('GRANT USAGE ON SCHEMA %I TO ledger_app, ledger_projector', s);
      -- Generation tables and views are created at run time by the projector.
      EXECUTE format('GRANT CREATE ON SCHEMA %I TO ledger_projector', s);

      -- The store: read-only for both roles (the triggers already refuse UPDATE/DELETE even to the owner).
      EXECUTE format('REVOKE ALL ON %I.webhook_receipts, %I.events, %I.streams FROM PUBLIC, ledger_app, ledger_projector', s, s, s);
      EXECUTE format('GRANT SELECT ON %I.webhook_receipts, %I.events, %I.streams TO ledger_app, ledger_projector', s, s, s);
      -- Everything else that exists already (tables earlier migrations made, such as the checkpoint tables) is
      -- readable by both; the default privileges below cover what later migrations make.
      EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO ledger_app, ledger_projector', s);
      -- /health and the migration status read the migration bookkeeping.
      FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = s::regnamespace AND c.relkind = 'r'
        AND c.relname IN ('kysely_migration', 'kysely_migration_lock') LOOP
        EXECUTE format('GRANT SELECT ON %I.%I TO ledger_app, ledger_projector', s, r.relname);
      END LOOP;

      -- Signed checkpoints of the stream heads are taken by the service: it may add rows, never change them
      -- (the append-only triggers refuse UPDATE, DELETE and TRUNCATE to everyone).
      FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = s::regnamespace AND c.relkind = 'r'
        AND c.relname IN ('ledger_checkpoints', 'ledger_checkpoint_heads') LOOP
        EXECUTE format('GRANT INSERT ON %I.%I TO ledger_app', s, r.relname);
      END LOOP;

      -- Appends run as the owner of the function; any signature of it (a later migration may add arguments).
      FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p WHERE p.proname = 'ledger_append' AND p.pronamespace = s::regnamespace LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_temp', r.fn, s);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', r.fn);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO ledger_app', r.fn);
      END LOOP;
      EXECUTE 'REVOKE ALL ON FUNCTION ledger_apply_roles() FROM PUBLIC';

      -- Read models and projection bookkeeping belong to the projector (made by earlier versions as the owner).
      FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = s::regnamespace AND c.relkind IN ('r', 'v')
        AND c.relname ~ '^(projection_checkpoints|projection_failures|projection_parked|call_legs|recordings|call_leg_hourly|call_provider_hourly|call_provider_daily)(_g[0-9]+)?$' LOOP
        EXECUTE format('ALTER TABLE %I.%I OWNER TO ledger_projector', s, r.relname);
        EXECUTE format('GRANT SELECT ON %I.%I TO ledger_app', s, r.relname);
      END LOOP;

      -- Whatever the projector creates later is readable by the app; whatever later migrations create is
      -- readable by both (writes are granted by the migration that needs them).
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE ledger_projector IN SCHEMA %I GRANT SELECT ON TABLES TO ledger_app', s);
      EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO ledger_app, ledger_projector', s);
    END
    $fn$`.execute(db);
  await sql`SELECT ledger_apply_roles()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE OR REPLACE FUNCTION ledger_apply_roles() RETURNS void LANGUAGE plpgsql AS $fn$
    DECLARE
      s text := current_schema();
      r record;
      am_super boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
    BEGIN
      -- Roles are cluster-wide: another database of the cluster (or the operator) may have made them already.
      FOR r IN SELECT unnest(ARRAY['ledger_app', 'ledger_projector']) AS name LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
          BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r.name);
          EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
              RAISE WARNING 'role % does not exist and % may not create it: the service keeps running as its DATABASE_URL role. Create ledger_app and ledger_projector, then run SELECT ledger_apply_roles() as %', r.name, current_user, current_user;
              RETURN;
          END;
        END IF;
      END LOOP;
      -- A non-superuser owner must be able to act as the projector to hand it the read models (and, in a
      -- single-URL deployment, to keep maintaining them).
      IF NOT am_super AND NOT pg_has_role(current_user, 'ledger_projector', 'MEMBER') THEN
        BEGIN
          EXECUTE format('GRANT ledger_projector TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
          RAISE EXCEPTION 'the migrating role % must be a member of ledger_projector: GRANT ledger_projector TO % (as a role that may)', current_user, current_user;
        END;
      END IF;

      EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', s);
      EXECUTE format('GRANT USAGE ON SCHEMA %I TO ledger_app, ledger_projector', s);
      -- Generation tables and views are created at run time by the projector.
      EXECUTE format('GRANT CREATE ON SCHEMA %I TO ledger_projector', s);

      -- The store: read-only for both roles (the triggers already refuse UPDATE/DELETE even to the owner).
      EXECUTE format('REVOKE ALL ON %I.webhook_receipts, %I.events, %I.streams FROM PUBLIC, ledger_app, ledger_projector', s, s, s);
      EXECUTE format('GRANT SELECT ON %I.webhook_receipts, %I.events, %I.streams TO ledger_app, ledger_projector', s, s, s);
      -- Everything else that exists already (tables earlier migrations made, such as the checkpoint tables) is
      -- readable by both; the default privileges below cover what later migrations make.
      EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO ledger_app, ledger_projector', s);
      -- /health and the migration status read the migration bookkeeping.
      FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = s::regnamespace AND c.relkind = 'r'
        AND c.relname IN ('kysely_migration', 'kysely_migration_lock') LOOP
        EXECUTE format('GRANT SELECT ON %I.%I TO ledger_app, ledger_projector', s, r.relname);
      END LOOP;

      -- Signed checkpoints of the stream heads are taken by the service: it may add rows, never change them
      -- (the append-only triggers refuse UPDATE, DELETE and TRUNCATE to everyone).
      FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = s::regnamespace AND c.relkind = 'r'
        AND c.relname IN ('ledger_checkpoints', 'ledger_checkpoint_heads') LOOP
        EXECUTE format('GRANT INSERT ON %I.%I TO ledger_app', s, r.relname);
      END LOOP;

      -- Appends run as the owner of the function; any signature of it (a later migration may add arguments).
      FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p WHERE p.proname = 'ledger_append' AND p.pronamespace = s::regnamespace LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_temp', r.fn, s);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', r.fn);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO ledger_app', r.fn);
      END LOOP;
      EXECUTE 'REVOKE ALL ON FUNCTION ledger_apply_roles() FROM PUBLIC';

      -- Read models and projection bookkeeping belong to the projector (made by earlier versions as the owner).
      FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = s::regnamespace AND c.relkind IN ('r', 'v')
        AND c.relname ~ '^(projection_checkpoints|projection_failures|projection_parked|call_legs|recordings|call_leg_hourly|call_provider_hourly)(_g[0-9]+)?$' LOOP
        EXECUTE format('ALTER TABLE %I.%I OWNER TO ledger_projector', s, r.relname);
        EXECUTE format('GRANT SELECT ON %I.%I TO ledger_app', s, r.relname);
      END LOOP;

      -- Whatever the projector creates later is readable by the app; whatever later migrations create is
      -- readable by both (writes are granted by the migration that needs them).
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE ledger_projector IN SCHEMA %I GRANT SELECT ON TABLES TO ledger_app', s);
      EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO ledger_app, ledger_projector', s);
    END
    $fn$`.execute(db);
}
