/**
 * The one place that builds clients and the engine: once per container, on the first invocation (importing a
 * handler makes no AWS call and opens no socket). A failed build is not kept, so the next invocation retries.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { readEnv, type EnvConfig } from './config';
import { DEFAULT_ENGINE_OPTIONS, type EngineDeps, type EngineOptions } from './core/engine';
import { ConfigError } from './core/errors';
import { systemClock, type LockGateway, type LockResult } from './core/model';
import type { ReleaseContext } from './core/release';
import type { SweepDeps } from './core/sweep';
import { KooDriveClient } from './koodrive/client';
import { SecretSettingsSource } from './koodrive/secret-source';
import { DynamoLedger } from './ledger/ledger';

export interface App {
  env: EnvConfig;
  logger: Logger;
  settings: SecretSettingsSource;
  koodrive: KooDriveClient;
  /** Absent when LOCK_LEDGER_TABLE is unset. */
  ledger: DynamoLedger | undefined;
  /** Everything one release invocation needs; reads the (cached) secret first. */
  releaseContext(remainingMs: () => number): Promise<ReleaseContext>;
  /** Everything one sweep needs; reads the (cached) secret first. Needs the ledger. */
  sweepContext(remainingMs: () => number): Promise<SweepDeps>;
}

export const logger = new Logger({ serviceName: 'koodrive-lock-releaser' });

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
  });
  const koodrive = new KooDriveClient({ settings, timeoutMs: env.timeoutMs });
  const gateway: LockGateway = {
    release: (lock) => koodrive.releaseLock(lock),
    refreshCredentials: (version) => settings.refresh(version),
  };
  const options = engineOptions(env);
  const ledger = env.ledgerTable ? new DynamoLedger({ tableName: env.ledgerTable }) : undefined;
  const engine = (remainingMs: () => number): EngineDeps => ({
    gateway,
    clock: systemClock,
    random: Math.random,
    remainingMs,
    onResult: logResult,
    onRecordError: logRecordError,
  });
  return {
    env,
    logger,
    settings,
    koodrive,
    ledger,
    async releaseContext(remainingMs) {
      const { settings: current } = await settings.current();
      return {
        engine: { ...engine(remainingMs), ...(ledger ? { recorder: ledger } : {}) },
        options,
        defaultUserId: current.defaultUserId,
        maxLocksPerInvoke: env.maxLocksPerInvoke,
      };
    },
    async sweepContext(remainingMs) {
      if (!ledger) throw new ConfigError('invalid environment', ['LOCK_LEDGER_TABLE is required for the sweep']);
      await settings.current();
      return { ledger, engine: engine(remainingMs), options };
    },
  };
}

/** Log user IDs by their last four characters only. */
export function maskUserId(userId: string): string {
  return userId.length <= 4 ? '****' : `****${userId.slice(-4)}`;
}

function logResult(result: LockResult): void {
  const fields = {
    lockId: result.lockId,
    userId: maskUserId(result.userId),
    outcome: result.outcome,
    attempts: result.attempts,
    ...(result.error
      ? { errorKind: result.error.kind, httpStatus: result.error.httpStatus, koodriveCode: result.error.code }
      : {}),
  };
  if (result.outcome === 'failed')
    logger.warn('lock not released', { ...fields, error: result.error?.message });
  else logger.info(`lock ${result.outcome}`, fields);
}

function logRecordError(result: LockResult, error: unknown): void {
  logger.error('ledger not updated: the lock outcome stands, the ledger is behind', {
    lockId: result.lockId,
    userId: maskUserId(result.userId),
    outcome: result.outcome,
    error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
  });
}
