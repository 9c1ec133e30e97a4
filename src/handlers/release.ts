/**
 * release: SQS batches (answering `batchItemFailures`) and direct invocations (answering the release report).
 * Configuration errors throw, so SQS redelivers the batch and an operator sees the message.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse } from 'aws-lambda';
import type { ReleaseReport } from '../core/model';
import { logger, metrics } from '../telemetry';
import { getApp } from '../wiring';

export const handler = middy<unknown, SQSBatchResponse | ReleaseReport, Error, Context>()
  .use(injectLambdaContext(logger, { resetKeys: true, logEvent: false }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .handler((event, context) => getApp().release(event, () => context.getRemainingTimeInMillis()));
