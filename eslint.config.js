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
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly', __dirname: 'readonly' } },
  },
);
