import { configDefaults, defineConfig } from 'vitest/config';
import base from './vitest.config.mjs';

// One flat run, no projects: a project's own include and exclude would bring back the files left out below.
const { projects: _projects, ...shared } = base.test ?? {};

/**
 * The test suite as `npm run mutate` runs it (stryker.config.mjs). Everything the normal run has, except files
 * that run the code in child processes, where no mutant is ever active, so they can kill none:
 * - the benchmark smoke test (it would only slow every run that re-runs all tests);
 * - the template test: `sls package` bundles in a child process, and serverless-esbuild's `npm ls` misreads the
 *   node_modules link Stryker puts in its sandbox (packaging fails there);
 * - the package tests: they pack the package and run it in a fresh install.
 */
export default defineConfig({
  test: {
    ...shared,
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, 'test/bench/**', 'test/deploy/template.test.ts', 'test/package/**'],
  },
});
