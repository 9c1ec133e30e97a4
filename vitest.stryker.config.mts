import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.mjs';

/**
 * The test suite as `npm run mutate` runs it (stryker.config.mjs). Everything the normal run has, except two files
 * that run the code in child processes, where no mutant is ever active, so they can kill none:
 * - the benchmark smoke test (it would only slow every run that re-runs all tests);
 * - the template test: `sls package` bundles in a child process, and serverless-esbuild's `npm ls` misreads the
 *   node_modules link Stryker puts in its sandbox (packaging fails there).
 */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: [...configDefaults.exclude, 'test/bench/**', 'test/deploy/template.test.ts'],
    },
  }),
);
