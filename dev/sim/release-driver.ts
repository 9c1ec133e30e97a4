/**
 * One release-function invocation as the Lambda runs it: the production release use case (src/core/release.ts,
 * and through it the live-lease decision and the release engine) on an SQS batch or a direct-invoke payload, with
 * the simulation's ports. Nothing here decides anything: the request is built, handed over, and its answer returned.
 */
import type { SQSEvent } from 'aws-lambda';
import type { EngineOptions } from '../../src/core/engine';
import type { ReleaseLedger } from '../../src/core/lease';
import type { Clock, LockGateway, LockRef, LockResult, Random } from '../../src/core/model';
import { handleReleaseEvent, type ReleaseAnswer } from '../../src/core/release';
import { STALE_AFTER_SECONDS } from './sweep-driver';

export interface ReleaseRequest {
  /** An SQS batch (one message per lock) or a direct invoke. */
  via: 'sqs' | 'direct';
  locks: LockRef[];
  /** Direct invoke: `"force": true`. SQS: a `force` key in the first message's body (which must be refused). */
  force: boolean;
}

export interface ReleaseDriverDeps {
  ledger: ReleaseLedger;
  clock: Clock;
  random: Random;
  gateway: LockGateway;
  remainingMs: () => number;
  clockSkewSeconds: number;
  /** False: the release function without a ledger to check leases in (outcomes are still recorded). */
  checkLeases: boolean;
  options: EngineOptions;
  /** The production hook every decision reaches (logs and metrics in the Lambda). */
  onResult: (result: LockResult, correlation?: { messageIds?: string[] }) => void;
}

/** The function's default limit (README, configuration). */
export const MAX_LOCKS_PER_INVOKE = 1000;

export function sqsEvent(request: ReleaseRequest, id: string): SQSEvent {
  return {
    Records: request.locks.map((lock, i) => ({
      messageId: `${id}-m${i}`,
      receiptHandle: `${id}-r${i}`,
      body: JSON.stringify({ ...lock, ...(request.force && i === 0 ? { force: true } : {}) }),
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: '0',
        SenderId: 'sim',
        ApproximateFirstReceiveTimestamp: '0',
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:eu-west-1:000000000000:koodrive-lock-releaser-sim-release',
      awsRegion: 'eu-west-1',
    })),
  };
}

export function runRelease(
  request: ReleaseRequest,
  id: string,
  deps: ReleaseDriverDeps,
): Promise<ReleaseAnswer> {
  const event =
    request.via === 'sqs'
      ? sqsEvent(request, id)
      : { locks: request.locks, ...(request.force ? { force: true } : {}) };
  return handleReleaseEvent(event, {
    engine: {
      gateway: deps.gateway,
      clock: deps.clock,
      random: deps.random,
      remainingMs: deps.remainingMs,
      recorder: deps.ledger,
      onResult: deps.onResult,
    },
    options: deps.options,
    defaultUserId: undefined,
    maxLocksPerInvoke: MAX_LOCKS_PER_INVOKE,
    ...(deps.checkLeases
      ? {
          leases: {
            ledger: deps.ledger,
            policy: { staleAfterSeconds: STALE_AFTER_SECONDS, clockSkewSeconds: deps.clockSkewSeconds },
          },
        }
      : {}),
  });
}
