/**
 * KooDrive's backup locks in memory, on the simulation's true time: one live lock per (user, module), a lock lives
 * 10 minutes from its creation or last renewal, renew and release. The semantics follow the emulator
 * (src/testing/koodrive-emulator.ts): renew of an expired but unreleased lock revives it (unless the user took another lock
 * for the module meanwhile), release of an expired, released or unknown lock is "does not exist". The public
 * documentation does not say whether a renew revives an expired lock, so a schedule runs the model either way
 * (`revive`): without it, a renew of an expired lock is "does not exist".
 *
 * Answers have the shapes the production client (src/koodrive/client.ts) gives for the emulator's HTTP answers;
 * the network in front of the model (faults.ts) adds timeouts, 5xx and 429.
 */
import { KOODRIVE_LOCK_SECONDS } from '../../src/core/lease';
import type { AttemptOutcome, LockError, LockRef } from '../../src/core/model';

export const LOCK_MS = KOODRIVE_LOCK_SECONDS * 1000;
/** The emulator's codes: lock not found (the default alreadyReleasedCodes) and "backup lock is held". */
export const NOT_FOUND_CODE = '13000309';
export const LOCK_HELD_CODE = '13000310';

export type CreateAnswer = { ok: true; lockId: string } | { ok: false; error: LockError };
export type RenewAnswer = { ok: true } | { ok: false; error: LockError };

export interface ModelLock {
  lockId: string;
  userId: string;
  moduleCode: string;
  createdAt: number;
  expiresAt: number;
  releasedAt?: number;
  /** Who released it (an actor name). */
  releasedBy?: string;
}

export interface KooDriveObserver {
  created?(lock: ModelLock, by: string): void;
  released?(lock: ModelLock, by: string, at: number): void;
  renewed?(lock: ModelLock, by: string, at: number): void;
  /** Every answer, by operation and kind (the coverage counts). */
  answered?(branch: string, lockId: string): void;
}

const heldError = (): LockError => ({
  kind: 'permanent',
  message: 'backup lock is held',
  httpStatus: 400,
  code: LOCK_HELD_CODE,
});

export class KooDriveModel {
  readonly locks = new Map<string, ModelLock>();
  private readonly live = new Map<string, ModelLock>();
  private counter = 0;
  observer: KooDriveObserver = {};

  constructor(
    private readonly now: () => number,
    /** Whether a renew revives an expired lock nobody replaced (the emulator's behaviour). */
    readonly revive = true,
  ) {}

  isLive(lock: ModelLock, at = this.now()): boolean {
    return lock.releasedAt === undefined && at < lock.expiresAt;
  }

  /** The user's live lock for the module, if any. */
  liveFor(userId: string, moduleCode: string, at = this.now()): ModelLock | undefined {
    const lock = this.live.get(key(userId, moduleCode));
    return lock !== undefined && this.isLive(lock, at) ? lock : undefined;
  }

  /** When the lock stopped being live (released or expired), or undefined while it is live. */
  freedAt(lockId: string, at = this.now()): number | undefined {
    const lock = this.locks.get(lockId);
    if (lock === undefined) return undefined;
    if (lock.releasedAt !== undefined) return Math.min(lock.releasedAt, lock.expiresAt);
    return at < lock.expiresAt ? undefined : lock.expiresAt;
  }

  create(userId: string, moduleCode: string, by: string): CreateAnswer {
    const at = this.now();
    if (this.liveFor(userId, moduleCode, at)) return { ok: false, error: heldError() };
    const lock: ModelLock = {
      lockId: `k${++this.counter}@${moduleCode}`,
      userId,
      moduleCode,
      createdAt: at,
      expiresAt: at + LOCK_MS,
    };
    this.locks.set(lock.lockId, lock);
    this.live.set(key(userId, moduleCode), lock);
    this.observer.created?.(lock, by);
    return { ok: true, lockId: lock.lockId };
  }

  renew(ref: LockRef, by: string): RenewAnswer {
    const lock = this.locks.get(ref.lockId);
    if (!lock || lock.userId !== ref.userId || lock.releasedAt !== undefined) {
      this.observer.answered?.('koodrive.renew.goneRefused', ref.lockId);
      return {
        ok: false,
        error: { kind: 'permanent', message: 'lock no longer exists', httpStatus: 400, code: NOT_FOUND_CODE },
      };
    }
    const at = this.now();
    const other = this.liveFor(lock.userId, lock.moduleCode, at);
    if (other && other !== lock) {
      this.observer.answered?.('koodrive.renew.replacedRefused', ref.lockId);
      return { ok: false, error: heldError() };
    }
    const expired = at >= lock.expiresAt;
    if (expired && !this.revive) {
      this.observer.answered?.('koodrive.renew.expiredRefused', ref.lockId);
      return {
        ok: false,
        error: { kind: 'permanent', message: 'lock no longer exists', httpStatus: 400, code: NOT_FOUND_CODE },
      };
    }
    this.observer.answered?.(expired ? 'koodrive.revive' : 'koodrive.renew.live', ref.lockId);
    lock.expiresAt = at + LOCK_MS;
    this.live.set(key(lock.userId, lock.moduleCode), lock);
    this.observer.renewed?.(lock, by, at);
    return { ok: true };
  }

  release(ref: LockRef, by: string): AttemptOutcome {
    const lock = this.locks.get(ref.lockId);
    const at = this.now();
    if (!lock || lock.userId !== ref.userId || !this.isLive(lock, at)) {
      this.observer.answered?.('koodrive.release.gone', ref.lockId);
      return { ok: true, outcome: 'alreadyReleased' };
    }
    this.observer.answered?.('koodrive.release.live', ref.lockId);
    lock.releasedAt = at;
    lock.releasedBy = by;
    this.observer.released?.(lock, by, at);
    return { ok: true, outcome: 'released' };
  }
}

function key(userId: string, moduleCode: string): string {
  return `${userId}\u0000${moduleCode}`;
}
