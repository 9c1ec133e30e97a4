import { defineConfig } from 'vitest/config';
import base from './vitest.config.mjs';

/** The protocol's mutation run (stryker.protocol.config.mjs): the simulation alone, no other test. */
export default defineConfig({
  test: {
    ...base.test,
    include: ['test/sim/protocol.sim.ts'],
    testTimeout: 600_000,
    reporters: ['default'],
  },
});
