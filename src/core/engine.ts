/**
 * The release engine: releases distinct, valid locks with bounded concurrency, retries with
 * exponential backoff and full jitter, a deadline, and a credentials re-read with one retry on an authentication
 * refusal.
 * Pure: time, randomness, KooDrive and the ledger come in as ports.
 */
import type {
  AttemptOutcome,
  Clock,
  LockError,
  LockGateway,
  LockRef,
  LockResult,
  OutcomeRecorder,
  ReleaseBasis,
} from './model';
import {
  decideRelease,
  MAX_LEASE_READ,
  type LeasePolicy,
  type LedgerReading,
  type ReleaseDecision,
  type ReleaseLedger,
} from './lease';
import { lockKey } from './requests';

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

export interface LiveLeaseCheck {
  ledger: Pick<ReleaseLedger, 'readItems'>;
  policy: LeasePolicy;
  /** An operator's `"force": true` (direct invoke only): releases a live lease too. */
  force: boolean;
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
  /**
   * The release path's live-lease check (README, "Leases and the promise"): before its first attempt each lock is
   * decided from a consistent read of its ledger item (decideRelease), read with up to 99 other locks of the same
   * invocation in one request (leaseDecisions). A lock found `held`, or refused because its item could not be
   * read, is neither attempted nor recorded; a released or failed one is recorded with the basis it was decided on,
   * so a failure is written only on the item that was read.
   */
  liveLeases?: LiveLeaseCheck;
  /** Told when recording an outcome failed; the outcome itself stands (KooDrive already answered). */
  onRecordError?: (result: LockResult, error: unknown) => void;
  /**
   * Told of every final outcome, for logs and metrics; callers that know more (the SQS messages that asked
   * for the lock) pass it as the second argument.
   */
  onResult?: (result: LockResult, correlation?: { messageIds?: string[] }) => void;
}

/**
 * Releases each lock once; resolves with one result per lock, in input order. Never rejects: an exception on one
 * lock (the gateway, the credentials re-read) fails that lock alone, as `retryable`.
 *
 * Credentials (README, "Authentication failures"): after a refusal (401/403, APIGW.03xx) the secret is re-read
 * (the gateway rate-limits re-reads) and that lock is retried once, whether or not the secret changed; that retry
 * is not counted against `maxAttempts`. The rest fail fast as `auth` only when refusals show the credentials
 * broken: requests for two different locks, each sent after a re-read, refused with no request authenticated
 * since that re-read, nor between the two. One refused lock alone never fails the others.
 */
export async function releaseLocks(
  locks: readonly LockRef[],
  deps: EngineDeps,
  options: EngineOptions,
): Promise<LockResult[]> {
  const concurrency = Math.max(1, options.concurrency);
  const reserveMs =
    options.attemptTimeoutMs + options.safetyMarginMs + (deps.recorder ? options.recordReserveMs : 0);
  // Set once refusals show the credentials broken: later locks fail fast instead of sending a storm of
  // requests that cannot succeed.
  let authBroken: LockError | undefined;
  // The order of credential events: when the last re-read settled, when KooDrive last authenticated a request.
  let events = 0;
  let rereadAt = 0;
  let authenticatedAt = 0;
  // Locks refused on a request sent after a re-read with no authentication since; cleared by an authentication.
  const refusedAfterReread = new Set<string>();

  // Until one attempt got an answer other than an authentication failure, attempts go one at a time (a
  // probe): wrong credentials then cost three requests per invocation (the first lock, its retry after the
  // re-read, the next lock) instead of some per concurrency slot. `probe` settles when the probing lock stops.
  let authPassed = false;
  let probe: Promise<void> | undefined;

  // Before its read, a lock needs the time of the read on top of an attempt's reserve.
  const readReserveMs = reserveMs + options.recordReserveMs;

  const check = deps.liveLeases;
  const decisions = check ? leaseDecisions(locks, check, deps.clock) : undefined;

  /** The live-lease decision: a final result (held, refused, no time left), or the basis to release on. */
  const decide = async (
    lock: LockRef,
    index: number,
    decisionOf: (index: number) => Promise<ReleaseDecision>,
  ): Promise<{ result: LockResult } | { basis: ReleaseBasis }> => {
    if (deps.remainingMs() < readReserveMs) return { result: failed(lock, 0, deadlineError(0, undefined)) };
    const decision = await decisionOf(index);
    if (decision.action === 'release') return { basis: decision.basis };
    return { result: undecidedResult(lock, decision) };
  };

  const releaseOne = async (lock: LockRef): Promise<LockResult> => {
    let attempts = 0;
    let authRetried = false;
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
        const sentAfterReread = rereadAt;
        const answer = await deps.gateway.release(lock);
        if (answer.ok || answer.error.kind !== 'auth') {
          authPassed = true;
          stopProbing();
        }
        if (authenticated(answer)) {
          authenticatedAt = ++events;
          refusedAfterReread.clear();
        }
        if (answer.ok) return { ...lock, outcome: answer.outcome, attempts };
        last = answer.error;

        if (answer.error.kind === 'auth') {
          if (sentAfterReread > authenticatedAt) {
            refusedAfterReread.add(lockKey(lock));
            if (refusedAfterReread.size >= 2) authBroken = answer.error;
          }
          if (authRetried || authBroken) return failed(lock, attempts, answer.error);
          // Re-read the secret (rotation), then this lock once more, whatever the re-read found.
          authRetried = true;
          await refresh(deps.gateway, answer.credentialsVersion);
          rereadAt = ++events;
          continue;
        }
        // The one retry after a refusal is not counted against maxAttempts.
        const counted = authRetried ? attempts - 1 : attempts;
        if (answer.error.kind !== 'retryable' || counted >= options.maxAttempts) {
          return failed(lock, attempts, answer.error);
        }
        const delayMs = backoffMs(counted, answer.retryAfterMs, options, deps.random);
        if (deps.remainingMs() - delayMs < reserveMs) {
          return failed(lock, attempts, deadlineError(attempts, last));
        }
        await deps.clock.sleep(delayMs);
      }
    } catch (error) {
      // A bug or an unexpected failure on this lock: it fails alone, the other workers' outcomes stand.
      return failed(lock, attempts, {
        kind: 'retryable',
        message: `not released: ${describeError(error)} (attempt ${attempts})`,
      });
    } finally {
      stopProbing();
    }
  };

  // Outcome writes wait in a queue, written by at most `concurrency` writers: when the ledger is slower than
  // KooDrive, the others wait as results, not as pending SDK requests (memory stays flat).
  const toRecord: Array<{ result: LockResult; basis: ReleaseBasis | undefined } | undefined> = [];
  let recorded = 0;
  const writers = new Set<Promise<void>>();
  const write = async (recorder: OutcomeRecorder): Promise<void> => {
    while (recorded < toRecord.length) {
      const { result, basis } = toRecord[recorded] as { result: LockResult; basis: ReleaseBasis | undefined };
      toRecord[recorded++] = undefined; // written: no need to keep it
      try {
        await (basis ? recorder.record(result, basis) : recorder.record(result));
      } catch (error) {
        quietly(() => deps.onRecordError?.(result, error));
      }
    }
  };
  /** Reports a final outcome; `record` false for a lock decided without a KooDrive call (held, refused). */
  const finish = (result: LockResult, record: boolean, basis?: ReleaseBasis): LockResult => {
    quietly(() => deps.onResult?.(result));
    if (deps.recorder && record) {
      toRecord.push({ result, basis });
      if (writers.size < concurrency) {
        const writer = write(deps.recorder).finally(() => writers.delete(writer));
        writers.add(writer);
      }
    }
    return result;
  };

  const results = await mapConcurrently(locks, concurrency, async (lock, index) => {
    if (!decisions) return finish(await releaseOne(lock), true);
    const decided = await decide(lock, index, decisions).catch((error: unknown) => ({
      result: failed(lock, 0, { kind: 'retryable', message: `not released: ${describeError(error)}` }),
    }));
    if ('result' in decided) return finish(decided.result, false);
    return finish(await releaseOne(lock), true, decided.basis);
  });
  // Ledger writes run beside the KooDrive calls, never between two of them; wait for them all here.
  while (writers.size > 0) await Promise.all(writers);
  return results;
}

/**
 * The live-lease decisions of one invocation's locks, `locks[index]` decided when asked for, in the order the
 * workers take the locks. The first lock of a chunk to be asked for reads its own item and those of the next locks
 * not read yet, up to MAX_LEASE_READ, in one consistent readItems call (an SQS batch of 10: one request, not ten);
 * the others of the chunk wait for that reading. A failed call refuses exactly its chunk's locks, a key the ledger
 * could not read exactly its lock (decideRelease: `retryable` unless forced), as a failed read of one lock did.
 *
 * Each lock is decided at the time its reading was sent, never later: the answer shows the item as it was at some
 * moment between sending and answering, and a live holder may have heart-beaten since (judged when a late answer
 * came back, a heartbeat-old item looked stale and a live lease was freed).
 *
 * Chunks are read when the workers reach them, not all up front: the locks are taken in order, so a reading waits
 * for its DELETE at most as long as the locks before it in its chunk take, and 10,000 locks never keep 10,000 items.
 * That wait does not weaken the rule. A lock whose lease has not run out at the reading is `held` and never sent a
 * DELETE; a lock is released only when the reading found no item, an item no holder holds (RELEASE_FAILED, final), or
 * one whose lease had run out (staleAt before the reading). Time does not bring a lease that ran out back; only a
 * write can, and no write can that a DELETE sent at once would catch but a later one would miss: a holder stops work
 * and heart-beats at the end of its safe time (lease − skew − margin after its last heartbeat started), before the
 * reading found its lease run out, so it sends no heartbeat after the reading; a heartbeat already in flight at the
 * reading, or an acquire recorded after it, is missed by a DELETE sent at once as well.
 */
export function leaseDecisions(
  locks: readonly LockRef[],
  check: LiveLeaseCheck,
  clock: Clock,
): (index: number) => Promise<ReleaseDecision> {
  // The chunk read each lock waits for, set for the whole chunk when it is read, dropped when its lock is decided.
  const readings: Array<Promise<{ at: number; byId: Map<string, LedgerReading> }> | undefined> = [];
  const readChunk = async (lockIds: string[]) => {
    // Judged at the time the read was sent: an answer that comes back late shows the items as they were then, and
    // a holder may have heart-beaten since; by the read's own time its lease had run out only if it had lost it.
    const at = clock.now();
    let byId: Map<string, LedgerReading>;
    try {
      byId = await check.ledger.readItems(lockIds);
    } catch (error) {
      const unread: LedgerReading = { ok: false, message: describeError(error) };
      byId = new Map(lockIds.map((lockId) => [lockId, unread]));
    }
    return { at, byId };
  };
  return async (index) => {
    const lock = locks[index] as LockRef;
    let chunk = readings[index];
    if (chunk === undefined) {
      const lockIds: string[] = [];
      for (
        let i = index;
        i < locks.length && lockIds.length < MAX_LEASE_READ && readings[i] === undefined;
        i++
      ) {
        lockIds.push((locks[i] as LockRef).lockId);
      }
      chunk = readChunk(lockIds);
      for (let i = index; i < index + lockIds.length; i++) readings[i] = chunk;
    }
    readings[index] = undefined;
    const { at, byId } = await chunk;
    const reading = byId.get(lock.lockId) ?? { ok: false, message: 'the ledger answered no reading for it' };
    return decideRelease(reading, at, check.policy, check.force);
  };
}

/** The result of a lock decided without a KooDrive call: `held` with its holder and lease left, or refused. */
export function undecidedResult(
  lock: LockRef,
  decision: Exclude<ReleaseDecision, { action: 'release' }>,
): LockResult {
  if (decision.action === 'refuse') return failed(lock, 0, decision.error);
  return {
    ...lock,
    outcome: 'held',
    attempts: 0,
    status: decision.status,
    ...(decision.holder !== undefined ? { holder: decision.holder } : {}),
    leaseLeftSeconds: decision.leaseLeftSeconds,
  };
}

/** KooDrive answered and did not refuse the credentials (a timeout or a dropped connection proves nothing). */
function authenticated(answer: AttemptOutcome): boolean {
  return answer.ok || (answer.error.kind !== 'auth' && answer.error.httpStatus !== undefined);
}

/** The re-read after a refusal; one that fails counts as one that found nothing new. */
async function refresh(gateway: LockGateway, credentialsVersion: number | undefined): Promise<void> {
  try {
    await gateway.refreshCredentials(credentialsVersion);
  } catch {
    // The gateway's settings source keeps and logs what it had; the lock is retried with those.
  }
}

/** Observers (logs, metrics) never decide an outcome: one that throws is ignored. */
function quietly(notify: () => void): void {
  try {
    notify();
  } catch {
    // nothing to do: the outcome stands and is in the answer
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
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

/** `last` is the answer to the lock's last attempt: undefined exactly when it was never attempted. */
function deadlineError(attempts: number, last: LockError | undefined): LockError {
  if (last === undefined) {
    return { kind: 'deadline', message: 'not attempted: too little time left before the Lambda deadline' };
  }
  const error: LockError = {
    kind: 'deadline',
    message: `stopped after ${attempts} attempt(s): too little time left before the Lambda deadline; last error: ${last.message}`,
  };
  if (last.httpStatus !== undefined) error.httpStatus = last.httpStatus;
  if (last.code !== undefined) error.code = last.code;
  return error;
}
