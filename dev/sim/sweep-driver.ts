/**
 * One sweep invocation as the sweep Lambda runs it: the production sweep use case (src/core/sweep.ts, and through
 * it the release engine) with the simulation's ports.
 */
import type { EngineOptions } from '../../src/core/engine';
import type { SweepLedger } from '../../src/core/lease';
import type { Clock, LockGateway, Random } from '../../src/core/model';
import { sweep, type SweepReport } from '../../src/core/sweep';

export interface SweepDriverDeps {
  ledger: SweepLedger;
  clock: Clock;
  random: Random;
  gateway: LockGateway;
  remainingMs: () => number;
  clockSkewSeconds: number;
  options: EngineOptions;
}

/** The sweep's defaults (README, configuration): items without a lease of their own are stale after 900 s. */
export const STALE_AFTER_SECONDS = 900;
export const SWEEP_LIMIT = 1000;

export function runSweep(deps: SweepDriverDeps): Promise<SweepReport> {
  return sweep(
    {
      dryRun: false,
      limit: SWEEP_LIMIT,
      staleAfterSeconds: STALE_AFTER_SECONDS,
      clockSkewSeconds: deps.clockSkewSeconds,
    },
    {
      ledger: deps.ledger,
      engine: {
        gateway: deps.gateway,
        clock: deps.clock,
        random: deps.random,
        remainingMs: deps.remainingMs,
      },
      options: deps.options,
    },
  );
}
