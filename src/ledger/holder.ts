/**
 * The client backup workers use so the ledger stays true: acquire (KooDrive create, then HELD), heartbeat
 * (KooDrive renew, then heartbeatAt) and release (KooDrive release, then RELEASED). One KooDrive attempt
 * per call; the worker decides about retries (error.kind 'retryable'), and a failed release is left
 * RELEASE_FAILED in the ledger for the sweep to retry.
 */
import { ReleaserError } from '../core/errors';
import type { AttemptOutcome, LockError, LockRef } from '../core/model';
import type { DynamoLedger } from './ledger';

/** The KooDrive calls a holder makes; KooDriveClient (src/koodrive/client.ts) has exactly these. */
export interface KooDriveLocks {
  createLock(
    userId: string,
    moduleCode: string,
  ): Promise<{ ok: true; lockId: string } | { ok: false; error: LockError }>;
  renewLock(lock: LockRef): Promise<{ ok: true } | { ok: false; error: LockError }>;
  releaseLock(lock: LockRef): Promise<AttemptOutcome>;
}

export type HolderLedger = Pick<
  DynamoLedger,
  'recordAcquired' | 'recordHeartbeat' | 'recordReleased' | 'record'
>;

export interface HeldLock extends LockRef {
  moduleCode: string;
}

/** KooDrive refused or failed a create, renew or release; `error.kind` says whether trying again can help. */
export class KooDriveLockError extends ReleaserError {
  readonly operation: 'create' | 'renew' | 'release';
  readonly error: LockError;

  constructor(operation: KooDriveLockError['operation'], what: string, error: LockError) {
    super(`KooDrive ${operation} of ${what} failed (${error.kind}): ${error.message}`);
    this.operation = operation;
    this.error = error;
  }
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

export interface LockHolderOptions {
  koodrive: KooDriveLocks;
  ledger: HolderLedger;
  /** Names this worker in the items it writes; a heartbeat then fails when another holder is recorded. */
  holder?: string;
}

export class LockHolder {
  private readonly koodrive: KooDriveLocks;
  private readonly ledger: HolderLedger;
  private readonly holder: string | undefined;

  constructor(options: LockHolderOptions) {
    this.koodrive = options.koodrive;
    this.ledger = options.ledger;
    this.holder = options.holder;
  }

  /** KooDrive create, then a HELD item. Throws KooDriveLockError or AcquireAbortedError. */
  async acquire(userId: string, moduleCode: string): Promise<HeldLock> {
    const created = await this.koodrive.createLock(userId, moduleCode);
    if (!created.ok) throw new KooDriveLockError('create', `a lock for module ${moduleCode}`, created.error);
    const lock: HeldLock = { lockId: created.lockId, userId, moduleCode };
    try {
      await this.ledger.recordAcquired({
        ...lock,
        ...(this.holder !== undefined ? { holder: this.holder } : {}),
      });
    } catch (error) {
      const undo = await this.koodrive.releaseLock(lock);
      throw new AcquireAbortedError(lock.lockId, undo, error);
    }
    return lock;
  }

  /**
   * KooDrive renew, then heartbeatAt. Throws KooDriveLockError when KooDrive refuses, and LockLostError when
   * the ledger no longer has the lock HELD for this holder: stop working under it then.
   */
  async heartbeat(lock: LockRef): Promise<void> {
    const renewed = await this.koodrive.renewLock(lock);
    if (!renewed.ok) throw new KooDriveLockError('renew', `lock ${lock.lockId}`, renewed.error);
    await this.ledger.recordHeartbeat(lock.lockId, this.holder);
  }

  /**
   * KooDrive release, then RELEASED. A failure is recorded as RELEASE_FAILED (the sweep retries it) and
   * thrown as KooDriveLockError.
   */
  async release(lock: LockRef): Promise<'released' | 'alreadyReleased'> {
    const answer = await this.koodrive.releaseLock(lock);
    if (!answer.ok) {
      await this.ledger.record({ ...lock, outcome: 'failed', attempts: 1, error: answer.error });
      throw new KooDriveLockError('release', `lock ${lock.lockId}`, answer.error);
    }
    await this.ledger.recordReleased(lock.lockId);
    return answer.outcome;
  }
}
