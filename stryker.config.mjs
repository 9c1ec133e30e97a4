// @ts-check
/**
 * Mutation testing (`npm run mutate`): StrykerJS changes the source one small edit at a time and runs the tests
 * that cover each edit; a mutant no test notices is a behaviour no test states. Reports land in reports/mutation/
 * (HTML, JSON) and on the terminal. One folder or file: `npm run mutate -- --mutate 'src/core/**\/*.ts'`.
 * Mutants that no test can tell apart from the original (equivalent mutants) are listed with their reason in
 * test/EQUIVALENT_MUTANTS.md; nothing else is left out.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.stryker.config.mts' },
  // Per-test coverage: each mutant runs only the tests that reach it (the whole suite takes about a minute).
  coverageAnalysis: 'perTest',
  // The machines this runs on have two cores; each worker also starts the local servers some tests use.
  concurrency: 2,
  // Every source file, the two thin handlers included; left out: type declarations (no code to mutate) and the
  // test kit (src/testing: the emulator and the in-memory ledger are the tests' independent witnesses).
  mutate: ['src/**/*.ts', '!src/**/*.d.ts', '!src/testing/**', '!src/testing.ts'],
  // Stryker copies the project (dev/, resources/, events/, serverless.yml the tests read) into .stryker-tmp;
  // local state, earlier reports and build output stay behind.
  ignorePatterns: [
    '/.local',
    '/reports',
    '/bench',
    '/.serverless',
    '/.esbuild',
    '/.vitest',
    '/coverage',
    '/.stryker-tmp',
  ],
  tempDirName: '.stryker-tmp',
  reporters: ['html', 'json', 'clear-text', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: null },
  // Tests against local servers vary in speed; give a mutant's run room before calling it a timeout.
  timeoutMS: 10000,
};
