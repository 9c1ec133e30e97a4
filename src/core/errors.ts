/** One base class for the errors this service throws on purpose, with named subclasses. */
export class ReleaserError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The configuration is unusable (environment, secret): the whole invocation fails before any KooDrive
 * call, so SQS redelivers the batch and an operator sees the message. Lists every problem at once.
 */
export class ConfigError extends ReleaserError {
  readonly problems: string[];

  constructor(what: string, problems: string[], options?: ErrorOptions) {
    super(`${what}: ${problems.join('; ')}`, options);
    this.problems = problems;
  }
}

/** A conditional ledger write found the item in another state than the writer expected. */
export class LedgerConflictError extends ReleaserError {
  readonly lockId: string;

  constructor(lockId: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.lockId = lockId;
  }
}

/** recordAcquired: the ledger already has an item for this lock ID. */
export class LockExistsError extends LedgerConflictError {
  constructor(lockId: string, options?: ErrorOptions) {
    super(lockId, `lock ${lockId} is already in the ledger`, options);
  }
}

/** recordReleased: the ledger has no item for this lock ID. */
export class LockNotFoundError extends LedgerConflictError {
  constructor(lockId: string, options?: ErrorOptions) {
    super(lockId, `lock ${lockId} is not in the ledger`, options);
  }
}

/**
 * The lease is lost: a heartbeat found the item no longer this holder's HELD item (a sweep claimed or released
 * it, a release was recorded), or no heartbeat succeeded within the safe time. Stop working under the lock.
 */
export class LockLostError extends LedgerConflictError {
  /** The item's ledger status when known (undefined when the item is gone or the lease ran out by time). */
  readonly status: string | undefined;

  constructor(lockId: string, status: string | undefined, why: string, options?: ErrorOptions) {
    super(lockId, `lock ${lockId} is lost (${why}): stop working under it`, options);
    this.status = status;
  }
}
