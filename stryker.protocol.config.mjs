// @ts-check
/**
 * Mutation testing of the lease protocol with the simulation as the only test (`npm run mutate:protocol`): the
 * holder, the lease rules, the sweep and the release path's ledger decisions are mutated one edit at a time, and
 * each mutant runs the seeded schedules of test/sim/protocol.sim.ts. A mutant the simulation does not kill is a gap
 * in the evidence, or an equivalent mutant listed with its reason in test/EQUIVALENT_MUTANTS.md. Slow (every
 * mutant runs the simulation), so not part of CI. Reports land in reports/mutation-protocol/.
 *
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
import base from './stryker.config.mjs';

export default {
  ...base,
  vitest: { configFile: 'vitest.protocol.config.mts' },
  // One test: per-test coverage buys nothing, and the simulation reaches every line it can.
  coverageAnalysis: 'off',
  mutate: [
    'src/ledger/holder.ts',
    'src/core/lease.ts',
    'src/core/sweep.ts',
    // the release path's ledger decisions: the batched read before the first attempt and the outcome write on its basis
    'src/core/engine.ts:119-135',
    'src/core/engine.ts:242-332',
  ],
  htmlReporter: { fileName: 'reports/mutation-protocol/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation-protocol/mutation.json' },
  // A mutant that makes the simulation loop (a timer never cancelled) is a timeout: killed.
  timeoutMS: 120_000,
};
