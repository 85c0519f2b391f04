import { sql, type Kysely } from 'kysely';

/**
 * pg_trgm, for the substring search on call numbers (`numberContains`, `from=*…*`): the read model's trigram
 * index on from/to (libs/projections/src/call-legs.query-indexes.ts) needs its operator class. pg_trgm ships with
 * PostgreSQL's contrib (the embedded server and the official image have it) and is a trusted extension, so a
 * database owner that is not a superuser may create it. Where it cannot be created, the migration warns and the
 * search still answers, by scanning the legs instead of through the index.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    DO $$ BEGIN
      CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN undefined_file OR insufficient_privilege OR feature_not_supported THEN
      RAISE WARNING 'pg_trgm could not be created (%): number substring searches will scan the call legs. Run CREATE EXTENSION pg_trgm as a role that may, then rebuild the projections', SQLERRM;
    END $$`.execute(db);
}

export async function down(_db: Kysely<any>): Promise<void> {
  // Left in place: it may have been there before this migration, and the live read model's index depends on it.
}
