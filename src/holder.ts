/**
 * The package entry `koodrive-lock-releaser/holder` for backup workers (README, "Holding a lock"): the holder
 * that keeps a KooDrive lock's lease, its errors, the ports it is built on, and the lease rules it follows.
 */
export {
  AcquireAbortedError,
  DEFAULT_CLOSE_WAIT_MS,
  HolderTimeoutError,
  KooDriveLockError,
  LockHolder,
  type HeldLock,
  type KooDriveLocks,
  type Lease,
  type LockHolderOptions,
} from './ledger/holder';
export {
  ConfigError,
  LedgerConflictError,
  LockExistsError,
  LockLostError,
  LockNotFoundError,
  ReleaserError,
} from './core/errors';
export {
  DEFAULT_CLOCK_SKEW_SECONDS,
  DEFAULT_LEASE_SECONDS,
  KOODRIVE_LOCK_SECONDS,
  MAX_LEASE_SECONDS,
  MIN_LEASE_SECONDS,
  holderTiming,
  type AcquiredLock,
  type HolderLedger,
  type HolderTiming,
  type LedgerItem,
  type LedgerStatus,
} from './core/lease';
export {
  systemClock,
  systemRandom,
  type AttemptOutcome,
  type Clock,
  type ErrorKind,
  type LockError,
  type LockRef,
  type LockResult,
  type Random,
  type Timer,
} from './core/model';
