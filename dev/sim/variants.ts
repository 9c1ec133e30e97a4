/**
 * Deliberately broken systems, built from the outside (a clock, a port wrapper, a setting), that the checker
 * must catch: the evidence that a passing simulation means something.
 */
import type { HolderLedger, LedgerItem, ReleaseLedger, SweepLedger } from '../../src/core/lease';
import type { LockRef } from '../../src/core/model';
import type { KooDriveLocks } from '../../src/ledger/holder';
import type { MemoryLedger } from '../../src/testing/memory-ledger';
import type { Variant } from './world';

/** (a) A holder without a safe time: its monotonic clock never advances, so assertHeld() never expires. */
export const NO_SAFE_TIME: Variant = {
  name: 'no-safe-time',
  holderClock: (actor) => {
    const frozen = actor.clock.monotonic();
    return { ...actor.clock, monotonic: () => frozen };
  },
};

/** (b) The old heartbeat order: every ledger heartbeat is preceded by a KooDrive renew (renew first, then the ledger). */
export const RENEW_FIRST: Variant = {
  name: 'renew-first',
  holderLedger: (ledger: HolderLedger, koodrive: KooDriveLocks): HolderLedger => {
    const refs = new Map<string, LockRef>();
    return {
      recordAcquired: async (lock) => {
        refs.set(lock.lockId, { lockId: lock.lockId, userId: lock.userId });
        return ledger.recordAcquired(lock);
      },
      recordHeartbeat: async (lockId, holder, leaseSeconds) => {
        const ref = refs.get(lockId);
        if (ref) {
          const renewed = await koodrive.renewLock(ref);
          if (!renewed.ok) throw new Error(`renew failed: ${renewed.error.message}`);
        }
        return ledger.recordHeartbeat(lockId, holder, leaseSeconds);
      },
      recordReleased: (lockId) => ledger.recordReleased(lockId),
      record: (result) => ledger.record(result),
    };
  },
};

/** (c) A sweep without the clock-skew allowance while the clocks are skewed. */
export const SWEEP_WITHOUT_SKEW: Variant = {
  name: 'sweep-without-skew',
  sweepSkewAllowanceSeconds: () => 0,
};

/** (d) A ledger whose claim ignores the version read: it claims whatever the item is now. */
export const CLAIM_IGNORES_VERSION: Variant = {
  name: 'claim-ignores-version',
  sweepLedger: (ledger: SweepLedger, store: MemoryLedger): SweepLedger => ({
    openItems: () => ledger.openItems(),
    claimRecorder: (claimed) => ledger.claimRecorder(claimed),
    closeExpired: (item) => ledger.closeExpired(item),
    claim: (item: LedgerItem, leaseSeconds) =>
      ledger.claim({ ...item, version: store.items.get(item.lockId)?.version ?? item.version }, leaseSeconds),
  }),
};

/** (e) The release path that does not read the ledger first: it releases live leases and writes RELEASE_FAILED over them. */
export const RELEASE_WITHOUT_LEASE_CHECK: Variant = {
  name: 'release-without-lease-check',
  releaseWithoutLeaseCheck: true,
};

/**
 * (f) A holder that never counts a renewal: every renew KooDrive applied reads as a lost answer, so its KooDrive
 * deadline stays at the create and it gives a long backup up after 10 minutes while its lock is live and renewed.
 */
export const RENEWALS_UNCOUNTED: Variant = {
  name: 'renewals-uncounted',
  holderKooDrive: (koodrive: KooDriveLocks): KooDriveLocks => ({
    createLock: (userId, moduleCode) => koodrive.createLock(userId, moduleCode),
    renewLock: async (lock) => {
      const renewed = await koodrive.renewLock(lock);
      return renewed.ok
        ? { ok: false, error: { kind: 'retryable', message: 'the answer was lost' } }
        : renewed;
    },
    releaseLock: (lock) => koodrive.releaseLock(lock),
  }),
};

/** (g) A release path that reads every open lease as just heart-beaten: it refuses dead workers' locks as held. */
export const LEASES_READ_FRESH: Variant = {
  name: 'leases-read-fresh',
  releaseLedger: (ledger: ReleaseLedger): ReleaseLedger => ({
    record: (result, basis) => ledger.record(result, basis),
    readItems: async (lockIds) => {
      const read = await ledger.readItems(lockIds);
      for (const [lockId, reading] of read) {
        if (reading.ok && reading.item && reading.item.status !== 'RELEASE_FAILED') {
          read.set(lockId, { ok: true, item: { ...reading.item, heartbeatAt: Number.MAX_SAFE_INTEGER / 2 } });
        }
      }
      return read;
    },
  }),
};

/** (a) and (b) together: the holder before issue 9 (renew first, no safe time). */
export const OLD_HOLDER: Variant = { ...NO_SAFE_TIME, ...RENEW_FIRST, name: 'old-holder' };

export const BROKEN_VARIANTS: readonly Variant[] = [
  NO_SAFE_TIME,
  RENEW_FIRST,
  OLD_HOLDER,
  SWEEP_WITHOUT_SKEW,
  CLAIM_IGNORES_VERSION,
  RELEASE_WITHOUT_LEASE_CHECK,
  RENEWALS_UNCOUNTED,
  LEASES_READ_FRESH,
];
