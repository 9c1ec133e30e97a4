/**
 * The client backup workers use so the ledger stays true (README, "Holding a lock").
 *
 * `hold(userId, moduleCode, work)` takes the KooDrive lock, records it HELD with its lease, heart-beats in the
 * background (the ledger first, conditionally, then a KooDrive renew), tells `work` at once when the lease is
 * lost, and releases the lock when `work` settles. The lower-level `acquire`, `heartbeat` and `release` make
 * one attempt each and leave retries and timing to the caller.
 *
 * All time goes through the Clock port (the lease on its monotonic reading, timers that never keep the
 * process alive), all randomness through Random: tests and the simulation drive both.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseSecret } from '../koodrive/secret';
import { ConfigError, LockLostError, ReleaserError } from '../core/errors';
import {
  KOODRIVE_LOCK_SECONDS,
  MAX_KOODRIVE_REQUEST_SECONDS,
  holderTiming,
  type HolderLedger,
  type HolderTiming,
} from '../core/lease';
import {
  systemClock,
  systemRandom,
  type AttemptOutcome,
  type Clock,
  type LockError,
  type LockRef,
  type Random,
  type Timer,
} from '../core/model';
import { KooDriveClient } from '../koodrive/client';
import { SecretSettingsSource } from '../koodrive/secret-source';
import type { SettingsSource } from '../koodrive/settings';
import { readClockSkew } from '../config';
import { sdkDynamoCalls } from './dynamo-sdk';
import { DynamoLedger } from './ledger';

export type { HolderLedger } from '../core/lease';

/** The KooDrive calls a holder makes; KooDriveClient (src/koodrive/client.ts) has exactly these. */
export interface KooDriveLocks {
  createLock(
    userId: string,
    moduleCode: string,
  ): Promise<{ ok: true; lockId: string } | { ok: false; error: LockError }>;
  renewLock(lock: LockRef): Promise<{ ok: true } | { ok: false; error: LockError }>;
  releaseLock(lock: LockRef): Promise<AttemptOutcome>;
}

export interface HeldLock extends LockRef {
  moduleCode: string;
}

/** What `work` gets: the lock, and how to know it is still held. */
export interface Lease extends HeldLock {
  /** Aborted, with a LockLostError as its reason, as soon as the lease is lost. */
  readonly signal: AbortSignal;
  /** Throws LockLostError when the lease is lost, also right after a pause before any timer ran. */
  assertHeld(): void;
}

/** KooDrive refused or failed a create, renew or release; `error.kind` says whether trying again can help. */
export class KooDriveLockError extends ReleaserError {
  readonly operation: 'create' | 'renew' | 'release';
  readonly error: LockError;

  constructor(operation: KooDriveLockError['operation'], what: string, error: LockError, hint?: string) {
    super(
      `KooDrive ${operation} of ${what} failed (${error.kind}): ${error.message}${hint ? `. ${hint}` : ''}`,
    );
    this.operation = operation;
    this.error = error;
  }
}

/**
 * What a create KooDrive refused means when a lock is held (KooDrive documents no code of its own for it, so
 * every refusal that is not about the request or the credentials says it).
 */
export function heldLockHint(userId: string, moduleCode: string): string {
  return (
    `If a lock is held for user ${userId} and module ${moduleCode}, it was not taken through the holder or ` +
    `another worker holds it: KooDrive frees it at most ${KOODRIVE_LOCK_SECONDS / 60} minutes after its last renewal`
  );
}

/** acquire: KooDrive created the lock but the ledger write failed; the lock was released again (or expires). */
export class AcquireAbortedError extends ReleaserError {
  readonly lockId: string;
  /** True when KooDrive confirmed the lock is released again. */
  readonly undone: boolean;

  constructor(lockId: string, undo: AttemptOutcome, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      undo.ok
        ? `lock ${lockId} could not be recorded in the ledger (${why}); it was released again`
        : `lock ${lockId} could not be recorded in the ledger (${why}); releasing it again failed too (${undo.error.message}), KooDrive lets it expire`,
      { cause },
    );
    this.lockId = lockId;
    this.undone = undo.ok;
  }
}

/** A call the holder gave up waiting for; what it does afterwards counts as nothing. */
export class HolderTimeoutError extends ReleaserError {
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${Math.round(ms)} ms`);
  }
}

export interface LockHolderOptions {
  /** The ledger table (ignored when `ledger` is given). */
  tableName?: string;
  /** The Secrets Manager secret with the KooDrive settings, the same JSON as the functions read. */
  secretId?: string;
  /** The secret's JSON inline (a string or an object), instead of `secretId`. */
  settings?: string | Record<string, unknown>;
  /** Names this worker in the items it writes; a heartbeat then fails when another holder is recorded. */
  name?: string;
  /** The lease written with every heartbeat: 5–600 s, default 120. */
  leaseSeconds?: number;
  /** Default lease/3. Must be shorter than the safe time (lease − skew − margin). */
  heartbeatSeconds?: number;
  /** Allowance for clock differences with the sweep; default CLOCK_SKEW_SECONDS from the environment, else 10. */
  clockSkewSeconds?: number;
  /**
   * Bound of one KooDrive attempt with the built-in client; default 5000, at most MAX_KOODRIVE_REQUEST_SECONDS
   * (30 s): the sweep's "certainly expired" rule counts on a renew landing within it.
   */
  koodriveTimeoutMs?: number;
  /** How long the secret read through `secretId` is used before it is read again; default 300. */
  secretCacheSeconds?: number;
  /** The AWS region of the default clients; default the SDK's own (AWS_REGION, the profile). */
  region?: string;
  /** Default: `new DynamoDBClient({ region })` (region and endpoint from the environment). */
  dynamodb?: DynamoDBClient;
  /** Default: `new SecretsManagerClient({ region })` (region and endpoint from the environment). */
  secretsManager?: SecretsManagerClient;
  /**
   * The KooDrive port; default a KooDriveClient on `settings` or `secretId`. A port of your own must end each call
   * (above all a renew) within MAX_KOODRIVE_REQUEST_SECONDS of sending it.
   */
  koodrive?: KooDriveLocks;
  /** The ledger port; default a DynamoLedger on `tableName`. */
  ledger?: HolderLedger;
  clock?: Clock;
  random?: Random;
  /**
   * hold(): the release after `work` settled failed (the item is left RELEASE_FAILED, or HELD when even that
   * write failed; the sweep releases it either way). hold() does not throw for it. Default: nothing.
   */
  onReleaseError?: (error: Error, lock: HeldLock) => void;
  /**
   * close() is called on these signals (e.g. `['SIGTERM', 'SIGINT']`), then the process goes on as it would
   * have without the holder: it ends by the signal unless another listener handles it. Default none.
   */
  shutdownSignals?: readonly NodeJS.Signals[];
  /** How long close() waits for running `work` to settle after aborting its lease; default 5000. */
  closeWaitMs?: number;
}

/** close()'s wait for running work, unless `closeWaitMs` says otherwise. */
export const DEFAULT_CLOSE_WAIT_MS = 5000;

/** Attempts of the release when `work` settled (retryable failures only). */
export const RELEASE_ATTEMPTS = 3;
/** Heartbeat retries wait a random time below min(this × 2^attempt, BACKOFF_CAP_MS). */
export const BACKOFF_BASE_MS = 100;
export const BACKOFF_CAP_MS = 2000;
/** A KooDrive create or release that has not answered after this long counts as failed. */
export const CALL_TIMEOUT_MS = 10_000;

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

export class LockHolder {
  readonly name: string | undefined;
  readonly leaseSeconds: number;
  readonly timing: HolderTiming;
  private readonly ports: Ports;
  private readonly onReleaseError: ((error: Error, lock: HeldLock) => void) | undefined;
  private readonly closeWaitMs: number;
  /** Checks of the settings only a call can make (regions, the secret); kept once they passed. */
  private readonly checks: (() => Promise<void>)[];
  private checked: Promise<void> | undefined;
  /** Every lock taken and not yet released: close() releases them. */
  private readonly held = new Set<Holding>();
  /** acquire() and hold() calls still taking their lock: close() waits for them. */
  private readonly taking = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;
  private readonly signalHandlers = new Map<NodeJS.Signals, () => void>();

  constructor(options: LockHolderOptions) {
    const skew = options.clockSkewSeconds ?? readClockSkew();
    try {
      this.timing = holderTiming({
        leaseSeconds: options.leaseSeconds,
        heartbeatSeconds: options.heartbeatSeconds,
        clockSkewSeconds: skew,
      });
    } catch (error) {
      throw new ConfigError('LockHolder options are not usable', [(error as Error).message], {
        cause: error,
      });
    }
    const timeoutMs = options.koodriveTimeoutMs;
    if (timeoutMs !== undefined && !(timeoutMs > 0 && timeoutMs <= MAX_KOODRIVE_REQUEST_SECONDS * 1000)) {
      throw new ConfigError('LockHolder options are not usable', [
        `koodriveTimeoutMs must be above 0 and at most ${MAX_KOODRIVE_REQUEST_SECONDS * 1000} (the renew bound the sweep's "certainly expired" rule counts on), got ${timeoutMs}`,
      ]);
    }
    const closeWaitMs = options.closeWaitMs ?? DEFAULT_CLOSE_WAIT_MS;
    if (!(closeWaitMs >= 0)) {
      throw new ConfigError('LockHolder options are not usable', [
        `closeWaitMs must be a number >= 0, got ${String(options.closeWaitMs)}`,
      ]);
    }
    this.closeWaitMs = closeWaitMs;
    this.leaseSeconds = this.timing.leaseMs / 1000;
    this.name = options.name;
    const clock = options.clock ?? systemClock;
    this.checks = [];
    // Every missing setting at once.
    const problems: string[] = [];
    const build = <T>(make: () => T): T | undefined => {
      try {
        return make();
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        problems.push(...error.problems);
        return undefined;
      }
    };
    const koodrive = options.koodrive ?? build(() => defaultKooDrive(options, clock, this.checks));
    const ledger = options.ledger ?? build(() => defaultLedger(options, clock, this.checks));
    if (!koodrive || !ledger) throw new ConfigError('LockHolder options are not usable', problems);
    this.ports = { clock, random: options.random ?? systemRandom, koodrive, ledger };
    this.onReleaseError = options.onReleaseError;
    for (const signal of options.shutdownSignals ?? []) this.closeOn(signal);
  }

  /**
   * Takes the lock, runs `work` under it while heart-beating, and releases it when `work` settles. Resolves
   * with what `work` resolved with (also when the lease was lost meanwhile: `work` decides, through
   * `signal` and `assertHeld()`), rejects with what it threw. Throws KooDriveLockError or AcquireAbortedError,
   * without running `work`, when the lock cannot be taken, and ConfigError when a setting is missing (the
   * region, the table, the secret). A failed release does not change the result: the item is left
   * RELEASE_FAILED for the sweep and the failure goes to `onReleaseError`.
   */
  async hold<T>(userId: string, moduleCode: string, work: (lease: Lease) => Promise<T> | T): Promise<T> {
    const taken = await this.start(userId, moduleCode);
    const session = new LeaseSession(this.ports, this.timing, this.name, taken);
    const holding = this.holding(taken.lock, session);
    if (this.closing) {
      // close() began while the lock was being taken: work never starts under it.
      const error = closingError(taken.lock.lockId);
      session.interrupt(error);
      holding.workDone();
      await holding.release();
      throw error;
    }
    const outcome = await settle(() => work(session.lease));
    holding.workDone();
    session.stop();
    // A ledger conflict means a sweep or the release path owns the item now (RELEASING, RELEASED, …) and
    // releases the lock. Lost by time or by a KooDrive refusal, the item is still ours to close.
    if (!session.takenOver) await holding.release();
    else this.held.delete(holding);
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** KooDrive create, then a HELD item with the lease. Throws KooDriveLockError, AcquireAbortedError or ConfigError. */
  async acquire(userId: string, moduleCode: string): Promise<HeldLock> {
    const { lock } = await this.start(userId, moduleCode);
    const holding = this.holding(lock, undefined);
    if (this.closing) {
      await holding.release();
      throw closingError(lock.lockId);
    }
    return lock;
  }

  /**
   * One heartbeat: the ledger first (conditional on the item being this holder's HELD item), then a KooDrive
   * renew. Throws LockLostError when the ledger no longer has the lock HELD for this holder (KooDrive is then
   * not renewed: stop working under it), KooDriveLockError when KooDrive refuses the renewal. After close(),
   * every heartbeat throws LockLostError.
   */
  async heartbeat(lock: LockRef): Promise<void> {
    if (this.closing) throw closingError(lock.lockId);
    await this.ports.ledger.recordHeartbeat(lock.lockId, this.name, this.leaseSeconds);
    const renewed = await this.ports.koodrive.renewLock(lock);
    if (!renewed.ok) throw new KooDriveLockError('renew', `lock ${lock.lockId}`, renewed.error);
  }

  /**
   * KooDrive release, then RELEASED. A failure is recorded as RELEASE_FAILED (the sweep retries it) and
   * thrown as KooDriveLockError.
   */
  async release(lock: LockRef): Promise<'released' | 'alreadyReleased'> {
    for (const holding of this.held) {
      if (holding.lock.lockId === lock.lockId && !holding.session) this.held.delete(holding);
    }
    const answer = await this.ports.koodrive.releaseLock(lock);
    if (!answer.ok) {
      await this.ports.ledger.record({ ...lock, outcome: 'failed', attempts: 1, error: answer.error });
      throw new KooDriveLockError('release', `lock ${lock.lockId}`, answer.error);
    }
    await this.ports.ledger.recordReleased(lock.lockId);
    return answer.outcome;
  }

  /**
   * Graceful shutdown: refuses new locks, stops heart-beating, aborts every lease it holds (`signal` with a
   * LockLostError), waits up to `closeWaitMs` for the running `work`, then releases each lock (KooDrive, then
   * the ledger) and resolves. Locks taken with acquire() and not released are released too. Never rejects;
   * a release that fails is reported to `onReleaseError` and left RELEASE_FAILED for the sweep. Later calls
   * return the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    for (const [signal, handler] of this.signalHandlers) process.off(signal, handler);
    this.signalHandlers.clear();
    // Locks still being taken join `held` (and are released by their call) before this goes on.
    await Promise.allSettled([...this.taking]);
    const holdings = [...this.held];
    for (const holding of holdings) holding.session?.interrupt(closingError(holding.lock.lockId));
    const running = holdings.filter((h) => h.session).map((h) => h.worked);
    if (running.length > 0) {
      const wait = armTimer(this.ports.clock, this.closeWaitMs);
      await Promise.race([Promise.allSettled(running), wait.fired]);
      wait.cancel();
    }
    await Promise.all(holdings.filter((h) => !h.session?.takenOver).map((h) => h.release()));
  }

  /** Registers a signal listener that closes the holder, then lets the signal take its usual course. */
  private closeOn(signal: NodeJS.Signals): void {
    if (this.signalHandlers.has(signal)) return;
    const handler = () => {
      // The process stays up until the locks are released, even when nothing else keeps it running.
      const keepAlive = setInterval(() => undefined, 60_000);
      void this.close().then(() => {
        clearInterval(keepAlive);
        // Without other listeners, the signal's default action (ending the process) is what would have happened.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    };
    this.signalHandlers.set(signal, handler);
    process.once(signal, handler);
  }

  /** A lock now held: released once, by whichever comes first of its hold(), release() or close(). */
  private holding(lock: HeldLock, session: LeaseSession | undefined): Holding {
    let done!: () => void;
    let released: Promise<void> | undefined;
    const holding: Holding = {
      lock,
      session,
      worked: new Promise<void>((resolve) => (done = resolve)),
      workDone: () => done(),
      release: () => {
        released ??= (async () => {
          // A renew still on its way could land after our DELETE and revive the lock (KooDrive revives an expired
          // lock on renew): release only once it has been answered or given up on, whoever releases (hold or close).
          if (session) {
            await within(
              this.ports.clock,
              MAX_KOODRIVE_REQUEST_SECONDS * 1000,
              'the last KooDrive renew',
              () => session.renewing,
            );
          }
          await this.releaseAfterWork(lock);
        })().finally(() => this.held.delete(holding));
        return released;
      },
    };
    this.held.add(holding);
    return holding;
  }

  /** take(), unless the holder is closing; close() waits for it. */
  private start(userId: string, moduleCode: string): Promise<Taken> {
    if (this.closing) {
      return Promise.reject(new ReleaserError('the LockHolder is closed: it takes no more locks'));
    }
    const call = this.take(userId, moduleCode);
    this.taking.add(call);
    const untrack = () => this.taking.delete(call);
    call.then(untrack, untrack);
    return call;
  }

  /**
   * The settings only a call can check (the regions, the secret), once, every problem in one ConfigError; a
   * failed check is made again by the next call.
   */
  private ready(): Promise<void> {
    this.checked ??= (async () => {
      const problems: string[] = [];
      const causes: unknown[] = [];
      for (const check of this.checks) {
        try {
          await check();
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          problems.push(...error.problems);
          causes.push(error);
        }
      }
      if (problems.length > 0) {
        throw new ConfigError('LockHolder settings are not usable', problems, {
          cause: causes.length === 1 ? causes[0] : new AggregateError(causes),
        });
      }
    })();
    this.checked.catch(() => (this.checked = undefined));
    return this.checked;
  }

  /** acquire, with the monotonic starts of the two calls the lease is measured from. */
  private async take(userId: string, moduleCode: string): Promise<Taken> {
    await this.ready();
    const { clock, koodrive, ledger } = this.ports;
    const koodriveStart = clock.monotonic();
    const call = await within(clock, CALL_TIMEOUT_MS, 'KooDrive create', () =>
      koodrive.createLock(userId, moduleCode),
    );
    // A setting that cannot work (a secret that cannot be read) is not a KooDrive failure to retry.
    if (!call.ok && call.error instanceof ConfigError) throw call.error;
    // A create given up on may still have taken a lock: unrecorded, KooDrive lets it expire by itself.
    const created = call.ok ? call.value : failedCall(call.error);
    if (!created.ok) {
      throw new KooDriveLockError(
        'create',
        `a lock for user ${userId}, module ${moduleCode}`,
        created.error,
        created.error.kind === 'permanent' ? heldLockHint(userId, moduleCode) : undefined,
      );
    }
    const lock: HeldLock = { lockId: created.lockId, userId, moduleCode };
    const ledgerStart = clock.monotonic();
    // Slower than the safe time, the lease would be lost before work starts.
    const recorded = await within(clock, this.timing.safeMs, `recording lock ${lock.lockId}`, () =>
      ledger.recordAcquired({
        ...lock,
        ...(this.name !== undefined ? { holder: this.name } : {}),
        leaseSeconds: this.leaseSeconds,
      }),
    );
    if (!recorded.ok) {
      const undo = await within(clock, CALL_TIMEOUT_MS, `releasing lock ${lock.lockId}`, () =>
        koodrive.releaseLock(lock),
      );
      const undone = undo.ok ? undo.value : failedCall(undo.error);
      if (recorded.error instanceof ConfigError) {
        throw new ConfigError(
          'LockHolder settings are not usable',
          [
            ...recorded.error.problems,
            undone.ok
              ? `lock ${lock.lockId} was released again`
              : `lock ${lock.lockId} could not be released again: KooDrive lets it expire`,
          ],
          { cause: recorded.error },
        );
      }
      throw new AcquireAbortedError(lock.lockId, undone, recorded.error);
    }
    return { lock, koodriveStart, ledgerStart };
  }

  /** The release when work settled: a few attempts, RELEASE_FAILED when they fail; never throws. */
  private async releaseAfterWork(lock: HeldLock): Promise<void> {
    const { clock, koodrive, ledger, random } = this.ports;
    let answer: AttemptOutcome = failedCall(new Error('not attempted'));
    let attempts = 0;
    while (attempts < RELEASE_ATTEMPTS) {
      if (attempts > 0) await clock.sleep(backoffMs(random, attempts));
      attempts += 1;
      const call = await within(clock, CALL_TIMEOUT_MS, `releasing lock ${lock.lockId}`, () =>
        koodrive.releaseLock(lock),
      );
      answer = call.ok ? call.value : failedCall(call.error);
      if (answer.ok || answer.error.kind !== 'retryable') break;
    }
    if (answer.ok) {
      // Bounded like every call of the holder: a ledger that never answers must not keep hold() from returning.
      const recorded = await within(clock, CALL_TIMEOUT_MS, `recording lock ${lock.lockId} released`, () =>
        ledger.recordReleased(lock.lockId),
      );
      if (!recorded.ok) {
        this.report(
          new ReleaserError(
            `lock ${lock.lockId} was released, but recording it failed; the sweep closes it`,
            {
              cause: recorded.error,
            },
          ),
          lock,
        );
      }
      return;
    }
    const error = new KooDriveLockError('release', `lock ${lock.lockId}`, answer.error);
    const recorded = await within(
      clock,
      CALL_TIMEOUT_MS,
      `recording lock ${lock.lockId} RELEASE_FAILED`,
      () => ledger.record({ ...lock, outcome: 'failed', attempts, error: answer.error }),
    );
    this.report(
      recorded.ok
        ? error
        : new ReleaserError(`${error.message}; recording RELEASE_FAILED failed too, the sweep releases it`, {
            cause: recorded.error,
          }),
      lock,
    );
  }

  private report(error: Error, lock: HeldLock): void {
    try {
      this.onReleaseError?.(error, lock);
    } catch {
      // A hook that throws must not change hold()'s result.
    }
  }
}

interface Ports {
  clock: Clock;
  random: Random;
  koodrive: KooDriveLocks;
  ledger: HolderLedger;
}

interface Holding {
  lock: HeldLock;
  /** The lease of a hold(); none for a lock taken with acquire(). */
  session: LeaseSession | undefined;
  /** Settles when hold()'s work has settled. */
  worked: Promise<void>;
  workDone(): void;
  /** The release after work (or at close), made once; never rejects. */
  release(): Promise<void>;
}

/** Why close() takes a lease away (the signal's reason, what assertHeld() throws). */
function closingError(lockId: string): LockLostError {
  return new LockLostError(lockId, undefined, 'the LockHolder is closing');
}

/** A timer on the clock port that close() can cancel. */
function armTimer(clock: Clock, ms: number): { fired: Promise<void>; cancel: () => void } {
  let timer: Timer | undefined;
  const fired = new Promise<void>((resolve) => (timer = clock.setTimer(ms, resolve)));
  return { fired, cancel: () => timer?.cancel() };
}

interface Taken {
  lock: HeldLock;
  koodriveStart: number;
  ledgerStart: number;
}

/**
 * One hold(): the lease's deadline on the monotonic clock, the heartbeat loop and the safe-deadline abort.
 * The deadline is the start of the last successful ledger write + the safe time, and never later than the
 * start of the last successful KooDrive create or renew + KooDrive's 600 s − the margin.
 */
class LeaseSession {
  readonly lease: Lease;
  /** A heartbeat found the item no longer this holder's: whoever took it releases the lock. */
  takenOver = false;
  private ledgerBase: number;
  private koodriveBase: number;
  private lost: LockLostError | undefined;
  private stopped = false;
  private readonly controller = new AbortController();
  /** Every timer armed (heartbeat, deadline, backoff, call bounds): stop() cancels them and wakes their waiters. */
  private readonly timers = new Set<{ timer: Timer; wake: () => void }>();
  private readonly lock: HeldLock;
  /** The last KooDrive renew sent, settled or not. */
  renewing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ports: Ports,
    private readonly timing: HolderTiming,
    private readonly name: string | undefined,
    taken: Taken,
  ) {
    this.lock = taken.lock;
    this.ledgerBase = taken.ledgerStart;
    this.koodriveBase = taken.koodriveStart;
    const check = () => {
      this.check();
      if (this.lost) throw this.lost;
      // The lease ends with hold(): a worker that kept the lease object must not act as if it still held the lock.
      if (this.stopped) {
        throw new LockLostError(this.lock.lockId, undefined, 'hold() has ended and released it');
      }
    };
    this.lease = { ...taken.lock, signal: this.controller.signal, assertHeld: check };
    this.watchDeadline();
    this.schedule(this.ledgerBase + timing.heartbeatMs - this.now());
  }

  /** close(): the lease is lost now (the signal aborts with `error`) and heart-beating stops. */
  interrupt(error: LockLostError): void {
    this.lose(error);
    this.stop();
  }

  /** Stops heart-beating and cancels every timer. */
  stop(): void {
    this.check();
    this.stopped = true;
    for (const { timer, wake } of this.timers) {
      timer.cancel();
      wake();
    }
    this.timers.clear();
  }

  private now(): number {
    return this.ports.clock.monotonic();
  }

  private deadline(): number {
    return Math.min(
      this.ledgerBase + this.timing.safeMs,
      this.koodriveBase + KOODRIVE_LOCK_SECONDS * 1000 - this.timing.marginMs,
    );
  }

  /** Loses the lease when the deadline has passed (by the clock, whatever the timers did). */
  private check(): void {
    if (this.lost || this.stopped) return;
    if (this.now() >= this.deadline()) {
      this.lose(
        new LockLostError(
          this.lock.lockId,
          undefined,
          `no heartbeat succeeded within the safe time of ${this.timing.safeMs / 1000} s`,
        ),
      );
    }
  }

  private lose(error: LockLostError): void {
    if (this.lost || this.stopped) return;
    this.lost = error;
    this.controller.abort(error);
  }

  private done(): boolean {
    this.check();
    return this.lost !== undefined || this.stopped;
  }

  /** A timer that stop() cancels; resolves when it fires or is cancelled. */
  private wait(ms: number): Promise<void> {
    return this.arm(ms).fired;
  }

  private arm(ms: number): { fired: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const fired = new Promise<void>((resolve) => (wake = resolve));
    if (this.stopped) {
      wake();
      return { fired, cancel: () => {} };
    }
    const entry = {
      timer: this.ports.clock.setTimer(Math.max(0, ms), () => {
        this.timers.delete(entry);
        wake();
      }),
      wake,
    };
    this.timers.add(entry);
    const cancel = () => {
      this.timers.delete(entry);
      entry.timer.cancel();
    };
    return { fired, cancel };
  }

  /** `call`, bounded by the time left before the deadline (a late answer counts as nothing); stop() ends it too. */
  private async bounded<T>(what: string, call: () => Promise<T>): Promise<Settled<T>> {
    const ms = this.deadline() - this.now();
    const timer = this.arm(ms);
    const result = await Promise.race([
      settle(call),
      timer.fired.then((): Settled<T> => ({ ok: false, error: new HolderTimeoutError(what, ms) })),
    ]);
    timer.cancel();
    return result;
  }

  /** Fires at the deadline (re-armed when heartbeats moved it) and aborts the signal if it passed. */
  private watchDeadline(): void {
    void this.wait(this.deadline() - this.now()).then(() => {
      if (!this.done()) this.watchDeadline();
    });
  }

  private schedule(ms: number): void {
    void this.wait(ms)
      .then(() => this.beat())
      .catch((error: unknown) => {
        // Only a port breaking its contract gets here; without a heartbeat the lease cannot be vouched for.
        this.lose(new LockLostError(this.lock.lockId, undefined, `the heartbeat failed: ${String(error)}`));
      });
  }

  /** One heartbeat: the ledger until it succeeds, then KooDrive; retried with backoff within the deadline. */
  private async beat(): Promise<void> {
    const { ledger, koodrive, random } = this.ports;
    for (let attempt = 0; ; attempt += 1) {
      if (this.done()) return;
      const start = this.now();
      const written = await this.bounded('the ledger heartbeat', () =>
        ledger.recordHeartbeat(this.lock.lockId, this.name, this.timing.leaseMs / 1000),
      );
      if (written.ok) {
        // heartbeatAt was written at or after `start`: the lease is measured from there.
        this.ledgerBase = Math.max(this.ledgerBase, start);
        break;
      }
      if (written.error instanceof LockLostError) {
        this.takenOver = true;
        return this.lose(written.error);
      }
      await this.wait(backoffMs(random, attempt));
    }
    for (let attempt = 0; ; attempt += 1) {
      // Never renew a lost lease: checked right before each renew.
      if (this.done()) return;
      // Retried until the next heartbeat is due, which writes the ledger again before it renews.
      if (attempt > 0 && this.now() - this.ledgerBase >= this.timing.heartbeatMs) break;
      const start = this.now();
      const renewed = await this.bounded(
        'the KooDrive renew',
        () => (this.renewing = koodrive.renewLock(this.lock)),
      );
      const answer = renewed.ok ? renewed.value : undefined;
      if (answer?.ok) {
        this.koodriveBase = Math.max(this.koodriveBase, start);
        break;
      }
      if (answer && isRefusal(answer.error)) {
        return this.lose(
          new LockLostError(
            this.lock.lockId,
            undefined,
            `KooDrive refused to renew it: ${answer.error.message}`,
          ),
        );
      }
      await this.wait(backoffMs(random, attempt));
    }
    if (!this.done()) this.schedule(this.ledgerBase + this.timing.heartbeatMs - this.now());
  }
}

/** Races `call` against a timer of `ms`: a late answer, or a late failure, is dropped. */
function within<T>(clock: Clock, ms: number, what: string, call: () => Promise<T>): Promise<Settled<T>> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (result: Settled<T>) => {
      if (done) return;
      done = true;
      timer.cancel();
      resolve(result);
    };
    const timer = clock.setTimer(Math.max(0, ms), () =>
      finish({ ok: false, error: new HolderTimeoutError(what, ms) }),
    );
    void settle(call).then(finish);
  });
}

/** A random wait below min(base × 2^attempt, cap): full jitter. */
function backoffMs(random: Random, attempt: number): number {
  return random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

/** A renewal KooDrive will refuse again (the lock is gone, another lock replaced it): the lease is lost. */
function isRefusal(error: LockError): boolean {
  return error.kind === 'permanent' || error.kind === 'invalid-input';
}

/** Runs `fn` and captures its result or what it threw (synchronously or not). */
function settle<T>(fn: () => Promise<T> | T): Promise<Settled<T>> {
  return new Promise<T>((resolve) => resolve(fn())).then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

function failedCall(error: unknown): { ok: false; error: LockError } {
  const message = error instanceof Error ? error.message : String(error);
  return { ok: false, error: { kind: 'retryable', message } };
}

function defaultKooDrive(
  options: LockHolderOptions,
  clock: Clock,
  checks: (() => Promise<void>)[],
): KooDriveLocks {
  let settings: SettingsSource;
  if (options.settings !== undefined) {
    const raw = typeof options.settings === 'string' ? options.settings : JSON.stringify(options.settings);
    const parsed = { settings: parseSecret(raw, 'given as settings'), version: 1 };
    settings = { current: () => Promise.resolve(parsed) };
  } else if (options.secretId) {
    const client = options.secretsManager ?? new SecretsManagerClient(regionOption(options));
    const source = new SecretSettingsSource({
      client,
      secretId: options.secretId,
      ttlMs: (options.secretCacheSeconds ?? 300) * 1000,
      now: () => clock.now(),
    });
    // The first read: a secret that is missing or unusable is a ConfigError before any lock is taken.
    checks.push(async () => {
      await checkRegion(client, 'Secrets Manager', options.secretsManager !== undefined);
      try {
        await source.current();
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        throw new ConfigError('LockHolder settings are not usable', [`secretId: ${why}`], { cause: error });
      }
    });
    settings = source;
  } else {
    throw new ConfigError('LockHolder options are not usable', [
      'secretId is missing: give the Secrets Manager secret with the KooDrive settings (or settings, or a koodrive port)',
    ]);
  }
  return new KooDriveClient({
    settings,
    timeoutMs: options.koodriveTimeoutMs ?? 5000,
    now: () => clock.now(),
  });
}

function defaultLedger(
  options: LockHolderOptions,
  clock: Clock,
  checks: (() => Promise<void>)[],
): HolderLedger {
  const tableName = options.tableName;
  if (!tableName) {
    throw new ConfigError('LockHolder options are not usable', [
      'tableName is missing: give the ledger table (or a ledger port)',
    ]);
  }
  const client = options.dynamodb ?? new DynamoDBClient(regionOption(options));
  checks.push(() => checkRegion(client, 'DynamoDB', options.dynamodb !== undefined));
  // Workers run anywhere: the SDK's credential chain, and their own client's middleware, stay theirs.
  const ledger = new DynamoLedger({ tableName, calls: sdkDynamoCalls(client), now: () => clock.now() });
  return {
    recordAcquired: (lock) => ledger.recordAcquired(lock).catch((e: unknown) => throwConfig(e, tableName)),
    recordHeartbeat: (lockId, holder, leaseSeconds) =>
      ledger.recordHeartbeat(lockId, holder, leaseSeconds).catch((e: unknown) => throwConfig(e, tableName)),
    recordReleased: (lockId) =>
      ledger.recordReleased(lockId).catch((e: unknown) => throwConfig(e, tableName)),
    record: (result) => ledger.record(result).catch((e: unknown) => throwConfig(e, tableName)),
  };
}

function regionOption(options: LockHolderOptions): { region?: string } {
  return options.region !== undefined ? { region: options.region } : {};
}

/** The SDK reads the region only when a call is made: a missing one is a ConfigError naming the setting. */
async function checkRegion(
  client: { config: { region: unknown } },
  service: string,
  given: boolean,
): Promise<void> {
  const region = client.config.region;
  let problem: unknown;
  try {
    const value: unknown = typeof region === 'function' ? await (region as () => Promise<unknown>)() : region;
    if (typeof value === 'string' && value !== '') return;
  } catch (error) {
    problem = error;
  }
  throw new ConfigError(
    'LockHolder settings are missing',
    [
      given
        ? `region is missing: the ${service} client given has none`
        : `region is missing: set AWS_REGION (or the region option) for ${service}`,
    ],
    problem === undefined ? undefined : { cause: problem },
  );
}

/** The ledger table does not exist (or is not visible in this region): a setting to fix, not a retry. */
function throwConfig(error: unknown, tableName: string): never {
  if (error instanceof Error && error.name === 'ResourceNotFoundException') {
    throw new ConfigError(
      'LockHolder settings are not usable',
      [`tableName: the ledger table ${tableName} does not exist in this region`],
      { cause: error },
    );
  }
  throw error;
}
