import type { Kysely } from 'kysely';
import { reversed, rewriteFunction } from './rewrite-function.js';

/**
 * `call_leg_number_grams5` in time linear in a number's length. Its loop took `substr(n, i, 5)` for every i, and in a
 * UTF-8 database substr counts characters from the start of the text: quadratic. A webhook body may be 1 MB
 * (LEDGER_MAX_BODY_BYTES), so an authentic one whose caller is hundreds of kilobytes long held the projector in a
 * single legs upsert for many minutes (20,000 characters: 0.8 s; 200,000 did not finish in 10 minutes), at every event of that leg.
 * A number of more than 64 characters is now split into its characters once (`string_to_array(n, NULL)`, an expanded
 * array in PL/pgSQL whose elements are read in constant time): 1,000,000 characters in about 1 s. Shorter numbers, every real one,
 * keep the loop: the split costs about twice as much per leg at 12 characters.
 *
 * The function returns exactly what it returned (call-legs.number-grams.int-spec.ts checks both branches against
 * the definition), so the grams stored by projection version 8 stay right and no rebuild is needed; what
 * 20261206000300_number_grams5 says of changing its results does not apply to a faster way to the same results.
 */
const SIGNATURE = 'call_leg_number_grams5(text, text)';
const EDITS = [
  ['      n text;\n', '      n text;\n      c text[];\n      k int;\n'],
  [
    `        FOR i IN 1 .. length(n) - 4 LOOP
          grams := grams || hashtext(substr(n, i, 5));
        END LOOP;
`,
    `        IF length(n) <= 64 THEN
          FOR i IN 1 .. length(n) - 4 LOOP
            grams := grams || hashtext(substr(n, i, 5));
          END LOOP;
        ELSE
          c := string_to_array(n, NULL);
          k := cardinality(grams);
          FOR i IN 1 .. cardinality(c) - 4 LOOP
            k := k + 1;
            grams[k] := hashtext(c[i] || c[i + 1] || c[i + 2] || c[i + 3] || c[i + 4]);
          END LOOP;
        END IF;
`,
  ],
] as const;

export async function up(db: Kysely<any>): Promise<void> {
  await rewriteFunction(SIGNATURE, EDITS).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rewriteFunction(SIGNATURE, reversed(EDITS)).execute(db);
}
