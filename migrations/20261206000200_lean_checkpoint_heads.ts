import { sql, type Kysely } from 'kysely';

/**
 * A checkpoint's heads cost a quarter of what they did to write (issue 13: a minute of traffic is ~12,000 heads,
 * written in one transaction that the webhooks' commits on the same cores waited behind). Measured on 12,800 heads
 * (EXPLAIN (ANALYZE, WAL) of the insert): 58–65 ms with the foreign key (its row-by-row check alone 34–49 ms) and
 * 3.6 MB of WAL; 24 ms without it; 14–17 ms and 1.9 MB of WAL with a BRIN index on `seq` instead of the primary
 * key. Neither constraint guarded anything the checkpoint does not already prove: the heads of a checkpoint are
 * written by one statement set, in the transaction that writes the checkpoint, keyed by stream name in the writer;
 * verification recomputes `heads_sha256` (and `head_count`) from the rows stored, so a row added, removed or
 * duplicated under a checkpoint is reported either way, and both tables stay append-only by their triggers.
 * Heads are read only by checkpoint (`seq`, then stream names): `seq` grows with the table, which is what a BRIN
 * index serves with a few pages where a b-tree wrote an entry per head.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE ledger_checkpoint_heads DROP CONSTRAINT ledger_checkpoint_heads_seq_fkey`.execute(db);
  await sql`ALTER TABLE ledger_checkpoint_heads DROP CONSTRAINT ledger_checkpoint_heads_pkey`.execute(db);
  await sql`CREATE INDEX ledger_checkpoint_heads_seq ON ledger_checkpoint_heads USING brin (seq) WITH (autosummarize = on)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX ledger_checkpoint_heads_seq`.execute(db);
  await sql`ALTER TABLE ledger_checkpoint_heads ADD PRIMARY KEY (seq, stream_name)`.execute(db);
  await sql`ALTER TABLE ledger_checkpoint_heads ADD CONSTRAINT ledger_checkpoint_heads_seq_fkey FOREIGN KEY (seq) REFERENCES ledger_checkpoints (seq)`.execute(db);
}
