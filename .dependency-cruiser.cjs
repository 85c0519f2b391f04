/**
 * The layering the code relies on, checked by `npm run lint` (dependency-cruiser). See docs/architecture.md.
 * Paths are relative to the repository root; `@lib/<name>` resolves (through tsconfig paths) to
 * libs/<name>/src/index.ts, which is the only file of a lib that code outside it may import.
 */

/** Tests, test support, benches and migrations: allowed to reach further than production code. */
const TEST_CODE = '(\\.(int-|e2e-|chaos-)?spec\\.ts$)|^test/|^bench/|^libs/testing/|^libs/ledger/src/testing/|(^|/)vitest[^/]*\\.config\\.ts$';

/**
 * Where SQL may be written: the store, the projections, the database lib, repositories, and these few files,
 * each of which needs a connection for a reason of its own.
 */
const SQL_ALLOWED = [
  '^libs/db/',
  '^libs/event-store/',
  '^libs/projections/',
  '^migrations/',
  '\\.repository\\.ts$',
  // the readiness probe runs `SELECT 1` itself (it checks the connection, not a read model)
  '^apps/ledger/src/health/health\\.controller\\.ts$',
  // opens the pool and the embedded server for the app and the CLIs
  '^apps/ledger/src/database\\.runtime\\.ts$',
];

module.exports = {
  forbidden: [
    {
      name: 'ledger-is-pure',
      comment: 'libs/ledger is the domain: pure functions and types, no framework, no database, no other lib.',
      severity: 'error',
      from: { path: '^libs/ledger/src/', pathNot: '^libs/ledger/src/testing/|\\.spec\\.ts$' },
      to: {
        pathNot: '^libs/ledger/src/',
        dependencyTypesNot: ['core'],
        path: '^(libs|apps)/|node_modules/(@nestjs|kysely|pg|pg-copy-streams|@lib|fastify|pino)',
      },
    },
    {
      name: 'ledger-depends-on-nothing-but-zod',
      comment:
        'The domain may use zod (schemas are domain facts), fast-xml-parser (reading RCML/TwiML answers is pure) and node core; nothing else from npm.',
      severity: 'error',
      from: { path: '^libs/ledger/src/', pathNot: TEST_CODE },
      to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'], pathNot: 'node_modules/(zod|fast-xml-parser)/' },
    },
    {
      name: 'providers-depend-on-ledger-only',
      comment: 'Provider adapters translate payloads into domain events: they know libs/ledger and nothing else of ours.',
      severity: 'error',
      from: { path: '^libs/providers/src/', pathNot: TEST_CODE },
      to: {
        path: '^(libs|apps)/|node_modules/(@nestjs|kysely|pg|pg-copy-streams)/',
        pathNot: '^libs/(providers|ledger)/src/',
      },
    },
    {
      name: 'sql-only-in-persistence',
      comment: 'SQL (kysely, pg) only in repositories, projections, the event store and the db lib (and the files listed in SQL_ALLOWED).',
      severity: 'error',
      from: { pathNot: [...SQL_ALLOWED, TEST_CODE] },
      to: { path: 'node_modules/(kysely|pg|pg-copy-streams|pg-protocol|pg-pool)/' },
    },
    {
      name: 'no-deep-imports-into-libs',
      comment: 'Outside a lib, import it only as @lib/<name> (its index.ts), never one of its files.',
      severity: 'error',
      from: { path: '^(apps|libs/[^/]+)/', pathNot: TEST_CODE },
      to: { path: '^libs/[^/]+/src/(?!index\\.ts$)', pathNot: '^$1/' },
    },
    {
      name: 'test-generators-only-in-tests',
      comment: 'libs/ledger/src/testing (fast-check arbitraries, scenarios) is for tests and benches, not for shipped code.',
      severity: 'error',
      from: { pathNot: TEST_CODE },
      to: { path: '^libs/ledger/src/testing/|^libs/testing/|node_modules/(vitest|fast-check|@nestjs/testing)/' },
    },
    {
      name: 'no-circular',
      comment: 'A cycle between modules makes load order matter (undefined imports at start-up under ESM); type-only cycles vanish at run time.',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // The console (apps/console) is a browser bundle with its own tsconfig, whose './x.js' imports of '.tsx' files
    // this resolver cannot follow; its one tie to the server (type-only imports of the DTOs) is checked by its typecheck.
    exclude: { path: '^(dist/|apps/console/)' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
