/**
 * The simulation as the only test of the protocol code (`npm run mutate:protocol`, stryker.protocol.config.mjs):
 * a mutant of the holder, the lease rules, the sweep or the release path's ledger decisions is killed only when
 * these seeded schedules find a violation or a protocol branch that never ran. Not part of `npm test` (the file does
 * not end in .test.ts); CI runs the same simulation through `npm run simulate`.
 */
import { expect, it } from 'vitest';
import { missingBranches, mergeCounts } from '../../dev/sim/coverage';
import { runSchedule } from '../../dev/sim/world';

const SCHEDULES = Number(process.env.PROTOCOL_SIM_SCHEDULES ?? 2000);

it(`${SCHEDULES} seeded schedules keep every property and run every listed branch`, async () => {
  const coverage: Record<string, number> = {};
  for (let seed = 1; seed <= SCHEDULES; seed += 1) {
    const result = await runSchedule(seed, { stopAtViolation: true });
    expect(result.violations, `seed ${seed}`).toEqual([]);
    mergeCounts(coverage, result.coverage);
  }
  expect(missingBranches(coverage)).toEqual([]);
}, 600_000);
