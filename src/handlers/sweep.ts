/**
 * sweep: on its schedule (or invoked by hand, `{"dryRun": true}`), releases the ledger's stale and failed locks.
 * Configuration errors and a malformed event throw: the operator sees the message.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { DEFAULT_SWEEP_LIMIT, parseSweepEvent, sweep, type SweepReport } from '../core/sweep';
import { getApp } from '../wiring';

export const handler = middy<unknown, SweepReport, Error, Context>().handler(async (event, context) => {
  const app = getApp();
  const input = parseSweepEvent(event, { staleAfterSeconds: app.env.staleAfterSeconds, limit: DEFAULT_SWEEP_LIMIT });
  const deps = await app.sweepContext(() => context.getRemainingTimeInMillis());
  return sweep(input, deps);
});
