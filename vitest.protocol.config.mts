import { defineConfig } from 'vitest/config';
import base from './vitest.config.mjs';

// The base config's projects would bring back every test file: this run has one file, no projects.
const { projects: _projects, ...shared } = base.test ?? {};

/** The protocol's mutation run (stryker.protocol.config.mjs): the simulation alone, no other test. */
export default defineConfig({
  test: {
    ...shared,
    include: ['test/sim/protocol.sim.ts'],
    testTimeout: 600_000,
    reporters: ['default'],
  },
});
