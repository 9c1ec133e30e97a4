/**
 * The one place that builds clients and the engine: once per container, on the first invocation (importing a
 * handler makes no AWS call and opens no socket). A failed build is not kept, so the next invocation retries.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readEnv, type EnvConfig } from './config';
import { DEFAULT_ENGINE_OPTIONS, type EngineDeps, type EngineOptions } from './core/engine';
import { ConfigError } from './core/errors';
import { systemClock, systemRandom, type LockGateway } from './core/model';
import { handleReleaseEvent, isSqsEvent, type ReleaseAnswer } from './core/release';
import { sweep, type SweepLedger, type SweepReport } from './core/sweep';
import {
  DEFAULT_SWEEP_LIMIT,
  parseSweepEvent,
  refusedSweepReport,
  SweepEventError,
} from './core/sweep-event';
import { KooDriveClient } from './koodrive/client';
import { SecretSettingsSource } from './koodrive/secret-source';
import { httpDynamoCallsFromEnv } from './ledger/dynamo-http';
import { DynamoLedger } from './ledger/ledger';
import { InvocationTelemetry, logger, metrics } from './telemetry';

export interface App {
  env: EnvConfig;
  settings: SecretSettingsSource;
  koodrive: KooDriveClient;
  /** Absent when LOCK_LEDGER_TABLE is unset. */
  ledger: DynamoLedger | undefined;
  /** One release invocation: an SQS batch or a direct-invoke payload. */
  release(event: unknown, remainingMs: () => number): Promise<ReleaseAnswer>;
  /** One sweep invocation. */
  sweep(event: unknown, remainingMs: () => number): Promise<SweepReport>;
}

let app: App | undefined;

export function getApp(): App {
  app ??= buildApp(readEnv());
  return app;
}

/** For tests: forget the container's state, as a new container would. */
export function resetApp(): void {
  app = undefined;
}

export function engineOptions(env: EnvConfig): EngineOptions {
  return {
    ...DEFAULT_ENGINE_OPTIONS,
    concurrency: env.concurrency,
    maxAttempts: env.maxAttempts,
    attemptTimeoutMs: env.timeoutMs,
    recordReserveMs: env.ledgerTable ? DEFAULT_ENGINE_OPTIONS.recordReserveMs : 0,
  };
}

function buildApp(env: EnvConfig): App {
  logger.setLogLevel(env.logLevel);
  const settings = new SecretSettingsSource({
    client: new SecretsManagerClient({}),
    secretId: env.secretId,
    ttlMs: env.secretCacheSeconds * 1000,
    onError: (error) =>
      logger.error('secret not re-read: the settings in use stay until the next try', error),
  });
  const koodrive = new KooDriveClient({ settings, timeoutMs: env.timeoutMs, connections: env.concurrency });
  const options = engineOptions(env);
  // Signed requests over an undici pool (docs/benchmarks.md, "DynamoDB client"), each bounded by the time the
  // engine reserves for a ledger write, so a slow write cannot carry an invocation past its deadline.
  const ledger = env.ledgerTable
    ? new DynamoLedger({
        tableName: env.ledgerTable,
        calls: httpDynamoCallsFromEnv(process.env, {
          connections: env.concurrency,
          timeoutMs: options.recordReserveMs,
        }),
      })
    : undefined;

  const engine = (telemetry: InvocationTelemetry, remainingMs: () => number): EngineDeps => {
    const gateway: LockGateway = {
      async release(lock) {
        const startedAt = systemClock.monotonic();
        const answer = await koodrive.releaseLock(lock);
        telemetry.latency(systemClock.monotonic() - startedAt);
        return answer;
      },
      refreshCredentials: (version) => settings.refresh(version),
    };
    return {
      gateway,
      clock: systemClock,
      random: systemRandom,
      remainingMs,
      onResult: telemetry.decision,
      onRecordError: telemetry.recordError,
    };
  };

  return {
    env,
    settings,
    koodrive,
    ledger,
    async release(event, remainingMs) {
      const telemetry = new InvocationTelemetry('release');
      const { settings: current } = await settings.current();
      const answer = await handleReleaseEvent(event, {
        engine: { ...engine(telemetry, remainingMs), ...(ledger ? { recorder: ledger } : {}) },
        options,
        defaultUserId: current.defaultUserId,
        maxLocksPerInvoke: env.maxLocksPerInvoke,
        // Live leases are never released by a request: each lock is decided from the ledger first.
        ...(ledger
          ? {
              leases: {
                ledger,
                policy: { staleAfterSeconds: env.staleAfterSeconds, clockSkewSeconds: env.clockSkewSeconds },
              },
            }
          : {}),
        ...(ledger ? { userLedger: ledger } : {}),
        onInvalidEntries: telemetry.invalidEntries,
      });
      if ('batchItemFailures' in answer) {
        const records = isSqsEvent(event) ? event.Records.length : 0;
        telemetry.finish({ trigger: 'sqs', records, failedRecords: answer.batchItemFailures.length });
      } else {
        telemetry.finish({
          trigger: 'direct',
          ...answer.summary,
          ...(answer.error ? { error: answer.error } : {}),
        });
      }
      return answer;
    },
    async sweep(event, remainingMs) {
      const telemetry = new InvocationTelemetry('sweep');
      // A configuration error fails the invocation, whatever the event; a refused event gets an answer.
      if (!ledger)
        throw new ConfigError('invalid environment', ['LOCK_LEDGER_TABLE is required for the sweep']);
      await settings.current();
      let input;
      try {
        input = parseSweepEvent(event, {
          staleAfterSeconds: env.staleAfterSeconds,
          limit: DEFAULT_SWEEP_LIMIT,
        });
      } catch (error) {
        if (!(error instanceof SweepEventError)) throw error;
        const refused = refusedSweepReport(error, 0);
        telemetry.finish({ ...refused.summary, error: refused.error });
        return refused;
      }
      const requestsBefore = ledger.requests;
      const sweepEngine = engine(telemetry, remainingMs);
      // The promise, observed: when each lock was confirmed released, and how many open items were read.
      const confirmedAt = new Map<string, number>();
      let openRead = 0;
      const report = await sweep(
        { ...input, clockSkewSeconds: env.clockSkewSeconds },
        {
          ledger: countingOpenItems(ledger, (items) => (openRead += items)),
          engine: {
            ...sweepEngine,
            onResult: (result) => {
              if (result.outcome === 'released' || result.outcome === 'alreadyReleased')
                confirmedAt.set(result.lockId, systemClock.now());
              sweepEngine.onResult?.(result);
            },
          },
          options,
          onClosed: telemetry.closed,
        },
      );
      telemetry.openLocks(openRead);
      for (const candidate of report.candidates) {
        const at = confirmedAt.get(candidate.lockId);
        if (at !== undefined) telemetry.timeToFree((at - candidate.heartbeatAt) / 1000);
      }
      metrics.addMetric('StaleLocksFound', MetricUnit.Count, report.candidates.length);
      metrics.addMetric('SweepDurationMs', MetricUnit.Milliseconds, report.summary.durationMs);
      telemetry.finish({
        dryRun: input.dryRun,
        ...report.summary,
        dynamodbRequests: ledger.requests - requestsBefore,
      });
      return report;
    },
  };
}

/**
 * The same ledger, telling `onPage` how many open items each page the sweep reads holds. A proxy, so every
 * other call (and the ledger's own request counter) goes to the ledger itself.
 */
function countingOpenItems<L extends SweepLedger>(ledger: L, onPage: (items: number) => void): L {
  return new Proxy(ledger, {
    get(target, property) {
      if (property === 'openItems') {
        return async function* () {
          for await (const page of target.openItems()) {
            onPage(page.length);
            yield page;
          }
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
