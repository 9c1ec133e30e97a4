/**
 * release: SQS batches (answering `batchItemFailures`) and direct invocations (answering the release report).
 * Configuration errors throw, so SQS redelivers the batch and an operator sees the message.
 */
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { ReleaseAnswer } from '../core/release';
import { invocationMiddlewares } from '../telemetry';
import { getApp } from '../wiring';

export const handler = middy<unknown, ReleaseAnswer, Error, Context>()
  .use(invocationMiddlewares())
  .handler((event, context) => getApp().release(event, () => context.getRemainingTimeInMillis()));
