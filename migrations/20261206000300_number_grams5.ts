import { sql, type Kysely } from 'kysely';

/**
 * The number substring search's 5-grams (issue 14; the read model's column and index: libs/projections
 * call-legs.query-indexes.ts). The trigram index cannot tell apart needles made of the digits that every number of
 * a deployment shares: `5555545` against `+1312555…` has the trigrams 555, 554 and 545 only, which 22,000 legs of
 * a million hold together for 200 matches, and the LIKE recheck of each candidate read 16,000 pages of the wide
 * legs table (60 ms). Its three 5-grams are held together by about as many legs as match.
 *
 * A leg's grams are the hashes of every 5-character substring of its caller and of its callee (16 for two
 * 12-character numbers). A needle of 5 characters or more asks for its last three (numbers differ most at their
 * end; a gram of a shared country or area code is in most legs and would only lower the estimate). Shorter needles
 * keep the trigram index, whose entries are per column and per character triple.
 *
 * Hashes (`hashtext`, int4) rather than the substrings: a GIN index over text elements compares them with the
 * column's collation, 2–3 × slower to build than over integers (bench/profile-notes.md, "the number substring
 * search"). A hash two grams share only adds candidates, which the query's LIKE rechecks; PostgreSQL keeps
 * `hashtext` stable across versions (hash indexes on text are built with it and survive pg_upgrade). Both
 * functions are IMMUTABLE because a stored generated column, its index and the query's constant folding need them
 * to be: changing what either
 * returns must come with new names and a new projection version (a rebuild), never CREATE OR REPLACE, or legs
 * stored with the old rule would be missed. PL/pgSQL: a SQL body with `generate_series` cost about twice as much
 * per leg. No SET search_path (a GUC save and restore per call); the bodies call built-ins only.
 */
const exists = async (db: Kysely<any>, signature: string): Promise<boolean> =>
  (await sql<{ ok: boolean }>`SELECT to_regprocedure(${signature}) IS NOT NULL AS ok`.execute(db)).rows[0]!.ok;

export async function up(db: Kysely<any>): Promise<void> {
  // Kept by a down while a generation used them (see down): the same definitions, never replaced.
  if (await exists(db, 'call_leg_number_grams5(text, text)')) return;
  await sql`
    CREATE FUNCTION call_leg_number_grams5(caller text, callee text) RETURNS int[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
    DECLARE
      grams int[] := '{}';
      n text;
    BEGIN
      FOREACH n IN ARRAY ARRAY[caller, callee] LOOP
        CONTINUE WHEN n IS NULL;
        FOR i IN 1 .. length(n) - 4 LOOP
          grams := grams || hashtext(substr(n, i, 5));
        END LOOP;
      END LOOP;
      RETURN grams;
    END
    $fn$`.execute(db);
  // Empty below 5 characters: the caller then asks the trigram index instead (an empty `@>` would match every leg).
  await sql`
    CREATE FUNCTION call_leg_needle_grams5(needle text) RETURNS int[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
    DECLARE
      len int := length(needle);
      grams int[] := '{}';
    BEGIN
      FOR i IN greatest(1, len - 6) .. len - 4 LOOP
        grams := grams || hashtext(substr(needle, i, 5));
      END LOOP;
      RETURN grams;
    END
    $fn$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // A generation that projection version 8 made computes its grams with the first function for as long as it lives:
  // the code this returns to serves it (the legs' view depends on the column) until its own rebuild replaces it.
  // Dropping the function would drop the column and the view with it, and turning the column into a plain one would
  // leave the legs written after it without grams if the store came back up. So the functions stay while such a
  // generation does (they only compute, and `up` takes them as they are).
  await sql`
    DO $do$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM information_schema.columns
          WHERE table_schema = current_schema() AND column_name = 'number_grams' AND is_generated = 'ALWAYS') THEN
        DROP FUNCTION IF EXISTS call_leg_number_grams5(text, text);
        DROP FUNCTION IF EXISTS call_leg_needle_grams5(text);
      END IF;
    END $do$`.execute(db);
}
