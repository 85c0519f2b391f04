import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

/** The ESLint rule that keeps the store's tables to libs/event-store (eslint.config.js), on snippets placed where it applies. */
const eslint = new ESLint();
const storeErrors = async (code: string, filePath: string) =>
  (await eslint.lintText(code, { filePath }))[0]!.messages.filter((m) => m.ruleId === 'no-restricted-syntax').map((m) => m.message);

const OWNER_ONLY = 'Only libs/event-store queries the store tables: read them through its functions.';

describe('the store tables have one owner', () => {
  // Loading the configuration (typescript-eslint) is the slow part: once, with time to spare on a busy machine.
  beforeAll(() => storeErrors('', 'apps/x.ts'), 60_000);

  it.each([
    ['raw SQL', "import { sql } from 'kysely';\nexport const q = sql`SELECT type FROM events WHERE stream_name = ${'x'}`;\n"],
    ['a join', "import { sql } from 'kysely';\nexport const q = sql`SELECT 1 FROM call_legs l JOIN webhook_receipts r ON true`;\n"],
    ['the stream heads', "import { sql } from 'kysely';\nexport const q = sql`SELECT 1 FROM streams s`;\n"],
    ['the query builder', "declare const db: { selectFrom(t: string): unknown };\nexport const q = db.selectFrom('events as e');\n"],
  ])('refuses %s on a store table outside libs/event-store', async (_what, code) => {
    expect(await storeErrors(code, 'apps/ledger/src/calls/some.repository.ts')).toEqual([OWNER_ONLY]);
    expect(await storeErrors(code, 'libs/projections/src/some-reader.ts')).toEqual([OWNER_ONLY]);
    expect(await storeErrors(code, 'libs/event-store/src/some-reader.ts')).toEqual([]);
  });

  it('lets the read models be queried anywhere (a column or table merely named like one is not the store)', async () => {
    const code = "import { sql } from 'kysely';\nexport const q = sql`SELECT event_count, l.events FROM call_legs l WHERE l.streams_seen > 0`;\n";
    expect(await storeErrors(code, 'apps/ledger/src/calls/some.repository.ts')).toEqual([]);
  });
});
