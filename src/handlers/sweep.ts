/**
 * sweep: on its schedule (or invoked by hand, `{"dryRun": true}`), releases the ledger's stale and failed locks.
 * Configuration errors and a malformed event throw: the operator sees the message.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { SweepReport } from '../core/sweep';
import { logger, metrics } from '../telemetry';
import { getApp } from '../wiring';

export const handler = middy<unknown, SweepReport, Error, Context>()
  .use(injectLambdaContext(logger, { resetKeys: true, logEvent: false }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .handler((event, context) => getApp().sweep(event, () => context.getRemainingTimeInMillis()));
