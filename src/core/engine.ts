/**
 * The release engine: releases distinct, valid locks with bounded concurrency, retries with
 * exponential backoff and full jitter, a deadline, and one credentials re-read on authentication failure.
 * Pure: time, randomness, KooDrive and the ledger come in as ports.
 */
import type { Clock, LockError, LockGateway, LockRef, LockResult, OutcomeRecorder } from './model';

export interface EngineOptions {
  /** Parallel KooDrive calls. */
  concurrency: number;
  /** Attempts per lock, the first included. */
  maxAttempts: number;
  /** The longest one attempt may take (connect + answer). */
  attemptTimeoutMs: number;
  /** Kept free before the Lambda deadline on top of the attempt timeout, for the answer to be sent. */
  safetyMarginMs: number;
  /** Time one outcome write needs (the ledger); reserved before each attempt when a recorder is used. */
  recordReserveMs: number;
  /** Backoff: the cap of the first retry's delay, doubled each retry up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  concurrency: 8,
  maxAttempts: 4,
  attemptTimeoutMs: 5000,
  safetyMarginMs: 1000,
  recordReserveMs: 500,
  baseDelayMs: 100,
  maxDelayMs: 5000,
};

export interface EngineDeps {
  gateway: LockGateway;
  clock: Clock;
  /** Uniform in [0, 1); Math.random in production, seeded in tests. */
  random: () => number;
  /** Milliseconds left before the Lambda deadline. */
  remainingMs: () => number;
  recorder?: OutcomeRecorder;
  /** Told when recording an outcome failed; the outcome itself stands (KooDrive already answered). */
  onRecordError?: (result: LockResult, error: unknown) => void;
  /**
   * Told of every final outcome, for logs and metrics; callers that know more (the SQS messages that asked
   * for the lock) pass it as the second argument.
   */
  onResult?: (result: LockResult, correlation?: { messageIds?: string[] }) => void;
}

/** Releases each lock once; resolves with one result per lock, in input order. Never rejects for a lock. */
export async function releaseLocks(
  locks: readonly LockRef[],
  deps: EngineDeps,
  options: EngineOptions,
): Promise<LockResult[]> {
  const concurrency = Math.max(1, options.concurrency);
  const reserveMs =
    options.attemptTimeoutMs + options.safetyMarginMs + (deps.recorder ? options.recordReserveMs : 0);
  // Set when credentials were re-read and KooDrive still rejected them: later locks fail fast instead
  // of sending a storm of requests that cannot succeed.
  let authBroken: LockError | undefined;

  // Until one attempt got an answer other than an authentication failure, attempts go one at a time (a
  // probe): wrong credentials then cost one request (two with a re-read that found new ones) per
  // invocation instead of one per concurrency slot. `probe` settles when the probing lock stops probing.
  let authPassed = false;
  let probe: Promise<void> | undefined;

  const releaseOne = async (lock: LockRef): Promise<LockResult> => {
    let attempts = 0;
    let refreshed = false;
    let last: LockError | undefined;
    // Set while this lock is the probe: calling it lets the waiting locks go on.
    let endProbe: (() => void) | undefined;
    const stopProbing = (): void => {
      const end = endProbe;
      if (end === undefined) return;
      endProbe = undefined;
      probe = undefined;
      end();
    };
    try {
      for (;;) {
        if (authBroken) return failed(lock, attempts, authBroken);
        if (!authPassed && endProbe === undefined) {
          if (probe) {
            await probe;
            continue;
          }
          const { promise, resolve } = Promise.withResolvers<void>();
          probe = promise;
          endProbe = resolve;
        }
        if (deps.remainingMs() < reserveMs) {
          return failed(lock, attempts, deadlineError(attempts, last));
        }
        attempts += 1;
        const answer = await deps.gateway.release(lock);
        if (answer.ok || answer.error.kind !== 'auth') {
          authPassed = true;
          stopProbing();
        }
        if (answer.ok) return { ...lock, outcome: answer.outcome, attempts };
        last = answer.error;

        if (answer.error.kind === 'auth') {
          // One re-read of the secret (rotation), then one more try with the new credentials.
          if (!refreshed && attempts < options.maxAttempts) {
            refreshed = true;
            if (await deps.gateway.refreshCredentials(answer.credentialsVersion)) continue;
          }
          if (refreshed) authBroken = answer.error;
          return failed(lock, attempts, answer.error);
        }
        if (answer.error.kind !== 'retryable' || attempts >= options.maxAttempts) {
          return failed(lock, attempts, answer.error);
        }
        const delayMs = backoffMs(attempts, answer.retryAfterMs, options, deps.random);
        if (deps.remainingMs() - delayMs < reserveMs) {
          return failed(lock, attempts, deadlineError(attempts, last));
        }
        await deps.clock.sleep(delayMs);
      }
    } finally {
      stopProbing();
    }
  };

  // Outcome writes wait in a queue, written by at most `concurrency` writers: when the ledger is slower than
  // KooDrive, the others wait as results, not as pending SDK requests (memory stays flat).
  const toRecord: Array<LockResult | undefined> = [];
  let recorded = 0;
  const writers = new Set<Promise<void>>();
  const write = async (recorder: OutcomeRecorder): Promise<void> => {
    while (recorded < toRecord.length) {
      const result = toRecord[recorded] as LockResult;
      toRecord[recorded++] = undefined; // written: no need to keep it
      try {
        await recorder.record(result);
      } catch (error) {
        deps.onRecordError?.(result, error);
      }
    }
  };
  const finish = (result: LockResult): LockResult => {
    deps.onResult?.(result);
    if (deps.recorder) {
      toRecord.push(result);
      if (writers.size < concurrency) {
        const writer = write(deps.recorder).finally(() => writers.delete(writer));
        writers.add(writer);
      }
    }
    return result;
  };

  const results = await mapConcurrently(locks, concurrency, async (lock) => finish(await releaseOne(lock)));
  // Ledger writes run beside the KooDrive calls, never between two of them; wait for them all here.
  while (writers.size > 0) await Promise.all(writers);
  return results;
}

/**
 * `fn` over `items` with at most `concurrency` calls at once; results in input order. A fixed set of workers takes
 * the items in order, so no queue entry or promise per item waits meanwhile (10,000 locks stay cheap).
 */
export async function mapConcurrently<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const work = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i] as T, i);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), items.length) }, work));
  return results;
}

/** Exponential backoff with full jitter, never shorter than the server's Retry-After. */
export function backoffMs(
  attempt: number,
  retryAfterMs: number | undefined,
  options: Pick<EngineOptions, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number,
): number {
  const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  const jittered = Math.floor(random() * cap);
  return Math.max(jittered, retryAfterMs ?? 0);
}

function failed(lock: LockRef, attempts: number, error: LockError): LockResult {
  return { ...lock, outcome: 'failed', attempts, error };
}

function deadlineError(attempts: number, last: LockError | undefined): LockError {
  const error: LockError = {
    kind: 'deadline',
    message:
      attempts === 0
        ? 'not attempted: too little time left before the Lambda deadline'
        : `stopped after ${attempts} attempt(s): too little time left before the Lambda deadline; last error: ${last?.message ?? 'none'}`,
  };
  if (last?.httpStatus !== undefined) error.httpStatus = last.httpStatus;
  if (last?.code !== undefined) error.code = last.code;
  return error;
}
