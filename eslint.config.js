// ESLint (flat config): typescript-eslint's recommended rules. No formatting rules: layout is not linted.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'dist-console/**', 'node_modules/**', 'coverage/**', 'bench/tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // A leading underscore marks a value dropped on purpose, mostly the rest-omit idiom
      // (`const { secret: _s, ...shown } = o`), which the code uses to leave fields out.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Migrations take `Kysely<any>` on purpose (Kysely's migration docs): a migration must keep compiling
    // against the schema of its own day, not today's `DB` type. Tests read untyped JSON and any schema.
    files: ['migrations/**/*.ts', 'libs/db/src/migrate.ts', '**/*.int-spec.ts', '**/*.e2e-spec.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // libs/event-store is the only owner of the store's tables (events, streams, webhook_receipts, their dedupe keys, the
    // checkpoint tables and the partition and retention bookkeeping): everything else reads them through its functions (stream names, events by position,
    // by stream, chain links with receipts). Migrations, libs/db's schema types and tests may look behind it.
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    ignores: [
      'libs/event-store/**',
      'libs/db/**',
      'libs/testing/**',
      '**/*.spec.ts',
      '**/*.int-spec.ts',
      '**/*.e2e-spec.ts',
    ],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'TemplateElement[value.raw=/\\b(from|join|into|update|table)\\s+(events|streams|webhook_receipts|webhook_receipt_keys|ledger_checkpoints|ledger_checkpoint_heads|ledger_partitions|ledger_archived_runs|ledger_retention_log)\\b/i]',
          message: 'Only libs/event-store queries the store tables: read them through its functions.',
        },
        {
          selector:
            'CallExpression[callee.property.name=/^(selectFrom|insertInto|updateTable|deleteFrom|innerJoin|leftJoin|rightJoin|fullJoin)$/] > Literal[value=/^(events|streams|webhook_receipts|webhook_receipt_keys|ledger_checkpoints|ledger_checkpoint_heads|ledger_partitions|ledger_archived_runs|ledger_retention_log)( as \\w+)?$/]',
          message: 'Only libs/event-store queries the store tables: read them through its functions.',
        },
      ],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly', __dirname: 'readonly' } },
  },
);
