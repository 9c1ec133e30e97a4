/**
 * sweep: on its schedule (or invoked by hand, `{"dryRun": true}`), releases the ledger's stale and failed locks.
 * Configuration errors throw: the operator sees the message. A refused event (unknown key, bad value) gets an
 * answer naming the field.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { SweepReport } from '../core/sweep';
import { invocationMiddlewares } from '../telemetry';
import { getApp } from '../wiring';

export const handler = middy<unknown, SweepReport, Error, Context>()
  .use(invocationMiddlewares())
  .handler((event, context) => getApp().sweep(event, () => context.getRemainingTimeInMillis()));
