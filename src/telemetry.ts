/**
 * Logs and metrics: Powertools Logger (JSON lines) and Metrics (CloudWatch embedded metric format).
 * One log line per lock decision, one summary line per invocation, never a secret: only lock IDs, masked
 * user IDs, outcomes and error kinds/codes/messages (which the KooDrive client already keeps credential-free).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { MiddlewareObj } from '@middy/core';
import type { ErrorKind, LockResult } from './core/model';

export const SERVICE_NAME = 'koodrive-lock-releaser';
export const METRICS_NAMESPACE = 'KooDriveLockReleaser';

export const logger = new Logger({ serviceName: SERVICE_NAME });
export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });

/**
 * The middlewares every handler runs: the Lambda context on each log line (event logging off: it would write
 * user IDs unmasked and serialise hostile payloads before they are refused), metrics with the cold start, and
 * one error line for an invocation that fails as a whole (configuration, secret, malformed sweep event).
 */
export function invocationMiddlewares(): MiddlewareObj[] {
  return [
    injectLambdaContext(logger, { resetKeys: true, logEvent: false }),
    logMetrics(metrics, { captureColdStartMetric: true }),
    {
      onError: (request) => {
        logger.error('invocation failed as a whole', request.error ?? 'unknown error');
      },
    },
  ];
}

/** Log user IDs by their last four characters only. */
export function maskUserId(userId: string): string {
  return userId.length <= 4 ? '****' : `****${userId.slice(-4)}`;
}

/** What one lock decision is correlated with: the SQS messages that asked for it. */
export interface Correlation {
  messageIds?: string[];
}

/** Collects one invocation's decisions for its log lines and metrics. */
export class InvocationTelemetry {
  private released = 0;
  private alreadyReleased = 0;
  private closedExpired = 0;
  private refusedHeld = 0;
  private readonly failedByKind = new Map<ErrorKind, number>();

  constructor(private readonly operation: 'release' | 'sweep') {}

  /** One log line per lock decision, counted for the metrics. */
  decision = (result: LockResult, correlation?: Correlation): void => {
    const fields = {
      operation: this.operation,
      lockId: result.lockId,
      userId: maskUserId(result.userId),
      outcome: result.outcome,
      attempts: result.attempts,
      ...(correlation?.messageIds ? { messageIds: correlation.messageIds } : {}),
      ...(result.outcome === 'held'
        ? {
            status: result.status,
            holder: result.holder ?? 'an anonymous holder',
            leaseLeftSeconds: result.leaseLeftSeconds,
          }
        : {}),
      ...(result.error
        ? {
            errorKind: result.error.kind,
            httpStatus: result.error.httpStatus,
            koodriveCode: result.error.code,
            error: result.error.message,
          }
        : {}),
    };
    if (result.outcome === 'released') this.released += 1;
    else if (result.outcome === 'alreadyReleased') this.alreadyReleased += 1;
    else if (result.outcome === 'held') this.refusedHeld += 1;
    else if (result.outcome === 'failed' && result.error) {
      this.failedByKind.set(result.error.kind, (this.failedByKind.get(result.error.kind) ?? 0) + 1);
    }
    if (result.outcome === 'failed') logger.warn('lock not released', fields);
    else if (result.outcome === 'held') logger.info('lock held: its lease is live, not released', fields);
    else logger.info(`lock ${result.outcome}`, fields);
  };

  /**
   * The sweep closed a failed release as EXPIRED without a KooDrive call: its KooDrive lock has certainly expired.
   * A decision of its own: one log line, and the LocksClosedExpired metric.
   */
  closed = (lock: { lockId: string; userId: string; reason: string }): void => {
    this.closedExpired += 1;
    logger.info('lock closed as EXPIRED', {
      operation: this.operation,
      lockId: lock.lockId,
      userId: maskUserId(lock.userId),
      outcome: 'closedExpired',
      reason: lock.reason,
    });
  };

  /** A KooDrive release call's round trip. */
  latency(ms: number): void {
    metrics.addMetric('ReleaseLatency', MetricUnit.Milliseconds, ms);
  }

  /** The ledger could not be updated; the outcome itself stands. */
  recordError = (result: LockResult, error: unknown): void => {
    logger.error('ledger not updated: the lock outcome stands, the ledger is behind', {
      lockId: result.lockId,
      userId: maskUserId(result.userId),
      outcome: result.outcome,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
  };

  /** The summary line and the invocation's counters (published by the logMetrics middleware). */
  finish(summary: Record<string, unknown>): void {
    metrics.addMetric('LocksReleased', MetricUnit.Count, this.released);
    metrics.addMetric('LocksAlreadyReleased', MetricUnit.Count, this.alreadyReleased);
    if (this.operation === 'sweep')
      metrics.addMetric('LocksClosedExpired', MetricUnit.Count, this.closedExpired);
    else metrics.addMetric('LocksRefusedHeld', MetricUnit.Count, this.refusedHeld);
    for (const [kind, count] of this.failedByKind) {
      const single = metrics.singleMetric();
      single.addDimension('errorKind', kind);
      single.addMetric('LocksFailed', MetricUnit.Count, count);
    }
    logger.info(`${this.operation} summary`, { operation: this.operation, ...summary });
  }
}
