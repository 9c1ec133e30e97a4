import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.mjs';

/**
 * The test suite as `npm run mutate` runs it (stryker.config.mjs). Everything the normal run has, except the
 * benchmark smoke test: it runs the code in child processes, where no mutant is ever active, so it can kill
 * none and would only slow every run that re-runs all tests.
 */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: [...configDefaults.exclude, 'test/bench/**'],
    },
  }),
);
