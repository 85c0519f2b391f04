import { sql, type Kysely } from 'kysely';

/**
 * Rewrites a function from its stored definition (pg_get_functiondef), applying each [from, to] edit in order,
 * so that a migration composes with whatever earlier migrations made of the function instead of restating it.
 * Refuses when an anchor is missing: the text it was written against has changed. `optional`: a function that
 * does not exist is left alone. CREATE OR REPLACE keeps owner, grants and SECURITY DEFINER, not SET clauses
 * (ledger_apply_roles() puts those back).
 */
export const rewriteFunction = (signature: string, edits: readonly (readonly [string, string])[], optional = false) => sql`
  DO $do$
  DECLARE d text; f text[]; t text[];
  BEGIN
    IF ${sql.lit(optional)} AND to_regprocedure(${sql.lit(signature)}) IS NULL THEN RETURN; END IF;
    d := pg_get_functiondef(${sql.lit(signature)}::regprocedure);
    f := ARRAY[${sql.join(edits.map((e) => sql.lit(e[0])))}]::text[];
    t := ARRAY[${sql.join(edits.map((e) => sql.lit(e[1])))}]::text[];
    FOR i IN 1 .. cardinality(f) LOOP
      IF position(f[i] IN d) = 0 THEN
        RAISE EXCEPTION '% no longer contains %', ${sql.lit(signature)}, left(f[i], 80);
      END IF;
      d := replace(d, f[i], t[i]);
    END LOOP;
    EXECUTE d;
  END $do$`;

export const reversed = (edits: readonly (readonly [string, string])[]): [string, string][] => edits.map(([a, b]) => [b, a]);

/**
 * `ledger_apply_roles()` when it and the roles exist (an owner that could not create them was warned already): it
 * restates the appends' SECURITY DEFINER settings and grants after a migration replaced or added a signature.
 */
export const reapplyRoles = (db: Kysely<any>) =>
  sql`
    DO $$
    BEGIN
      IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'ledger_apply_roles' AND pronamespace = current_schema()::regnamespace)
        AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        PERFORM ledger_apply_roles();
      END IF;
    END $$`.execute(db);
