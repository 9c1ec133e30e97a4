/**
 * release: SQS batches (answering `batchItemFailures`) and direct invocations (answering the release report).
 * Configuration errors throw, so SQS redelivers the batch and an operator sees the message.
 */
import middy from '@middy/core';
import type { Context, SQSBatchResponse } from 'aws-lambda';
import type { ReleaseReport } from '../core/model';
import { invocationMiddlewares } from '../telemetry';
import { getApp } from '../wiring';

export const handler = middy<unknown, SQSBatchResponse | ReleaseReport, Error, Context>()
  .use(invocationMiddlewares())
  .handler((event, context) => getApp().release(event, () => context.getRemainingTimeInMillis()));
