/**
 * The package entry `koodrive-lock-releaser/testing` for worker teams' own tests: createTestbed() (a KooDrive
 * emulator, an in-memory ledger and a clock, in-process and offline), and the parts it is made of.
 */
export { type KooDriveFailure, type KooDriveFailureKind, type KooDriveOperation } from './testing/faults';
export {
  createTestbed,
  type KooDriveRequest,
  type Testbed,
  type TestbedClock,
  type TestbedHolderOptions,
  type TestbedOptions,
} from './testing/testbed';
export { VirtualClock, VIRTUAL_EPOCH_MS } from './testing/virtual-clock';
export { MemoryLedger, type MemoryLedgerOptions } from './testing/memory-ledger';
export {
  startKooDriveEmulator,
  LOCK_PATH,
  MODULE_CODES,
  LOCK_HELD_CODE,
  DEFAULT_NOT_FOUND_CODE,
  type EmulatorOptions,
  type Fault,
  type FaultRule,
  type FaultRequest,
  type KooDriveEmulator,
  type LockRecord,
  type RecordedRequest,
} from './testing/koodrive-emulator';
