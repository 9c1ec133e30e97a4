/** The lock ledger package for backup workers: the holder client, the DynamoDB ledger, its item and errors. */
export {
  AcquireAbortedError,
  HolderTimeoutError,
  KooDriveLockError,
  LockHolder,
  type HeldLock,
  type HolderLedger,
  type KooDriveLocks,
  type Lease,
  type LockHolderOptions,
} from './holder';
export {
  OPEN_LOCKS_INDEX,
  DynamoLedger,
  LedgerConflictError,
  LockExistsError,
  LockLostError,
  LockNotFoundError,
  RELEASED_RETENTION_SECONDS,
  type AcquiredLock,
  type DynamoLedgerOptions,
  type LedgerItem,
  type LedgerStatus,
} from './ledger';
export { ReleaserError } from '../core/errors';
