/**
 * The lease protocol (README, "Leases and the promise"): the ledger item, when an item is stale, when a
 * failed release's KooDrive lock has certainly expired, and the holder's safe time. Pure rules and the two
 * ledger ports; the DynamoDB adapter and the in-memory model both implement the ports.
 */
import type { LockResult, OutcomeRecorder } from './model';

/** A KooDrive lock expires this long after its creation or last renewal. */
export const KOODRIVE_LOCK_SECONDS = 600;
export const DEFAULT_LEASE_SECONDS = 120;
export const MIN_LEASE_SECONDS = 5;
export const MAX_LEASE_SECONDS = 600;
export const DEFAULT_CLOCK_SKEW_SECONDS = 10;
/** The sweep index spreads open items over this many partition key values ("0" … "15"). */
export const SWEEP_SHARDS = 16;

/** RELEASED and EXPIRED are final: such an item leaves the sweep index and DynamoDB's TTL removes it later. */
export type LedgerStatus = 'HELD' | 'RELEASING' | 'RELEASED' | 'RELEASE_FAILED' | 'EXPIRED';
export const FINAL_STATUSES: readonly LedgerStatus[] = ['RELEASED', 'EXPIRED'];

/** One ledger item (README, "Ledger item"); times in epoch ms except expiresAt (epoch seconds). */
export interface LedgerItem {
  lockId: string;
  userId: string;
  moduleCode?: string;
  status: LedgerStatus;
  holder?: string;
  acquiredAt: number;
  heartbeatAt: number;
  /** The lease of whoever wrote heartbeatAt (the holder, or the sweep's claim); absent: STALE_AFTER_SECONDS applies. */
  leaseSeconds?: number;
  releasedAt?: number;
  releaseAttempts: number;
  lastError?: string;
  version: number;
  expiresAt?: number;
  /** The sweep index's partition key; present exactly while the item is open (HELD, RELEASING, RELEASE_FAILED). */
  sweepShard?: string;
  /**
   * The user index's partition key: the userId, present exactly while the item is open (written with sweepShard,
   * removed with it), so find-by-user reads a user's open items without a scan. Items of holders older than this
   * attribute are not in that index.
   */
  openUserId?: string;
}

/** What the sweep's clock allows for. */
export interface LeasePolicy {
  /** Heartbeat age after which an item without a lease of its own is stale. */
  staleAfterSeconds: number;
  /** Allowance for clock differences between holders and the sweep. */
  clockSkewSeconds: number;
}

/**
 * Epoch ms (by the sweep's clock) after which a HELD or RELEASING item is stale: heartbeat + its own lease +
 * the skew allowance, or heartbeat + STALE_AFTER_SECONDS for an item written without a lease.
 */
export function staleAt(item: Pick<LedgerItem, 'heartbeatAt' | 'leaseSeconds'>, policy: LeasePolicy): number {
  if (item.leaseSeconds === undefined) return item.heartbeatAt + policy.staleAfterSeconds * 1000;
  return item.heartbeatAt + (item.leaseSeconds + policy.clockSkewSeconds) * 1000;
}

/**
 * Epoch ms after which the item's KooDrive lock has certainly expired, renewed or not: no holder renews
 * past its lease after the heartbeat it recorded, and KooDrive keeps a lock 10 minutes after a renewal.
 */
export function certainlyExpiredAt(
  item: Pick<LedgerItem, 'heartbeatAt' | 'leaseSeconds'>,
  policy: LeasePolicy,
): number {
  return (
    item.heartbeatAt + ((item.leaseSeconds ?? 0) + KOODRIVE_LOCK_SECONDS + policy.clockSkewSeconds) * 1000
  );
}

/** What the sweep does with an open item it read. */
export type SweepVerdict =
  { action: 'release'; reason: string } | { action: 'close'; reason: string } | { action: 'leave' };

export function judge(item: LedgerItem, now: number, policy: LeasePolicy): SweepVerdict {
  const age = Math.floor((now - item.heartbeatAt) / 1000);
  if (item.status === 'RELEASE_FAILED') {
    if (certainlyExpiredAt(item, policy) < now) {
      return {
        action: 'close',
        reason: `release failed and the KooDrive lock has certainly expired (heartbeat ${age} s old)`,
      };
    }
    return { action: 'release', reason: `release failed before: ${item.lastError ?? 'no error recorded'}` };
  }
  if (item.status !== 'HELD' && item.status !== 'RELEASING') return { action: 'leave' };
  if (staleAt(item, policy) >= now) return { action: 'leave' };
  const allowed =
    item.leaseSeconds === undefined
      ? `stale after ${policy.staleAfterSeconds} s without a lease`
      : `lease ${item.leaseSeconds} s + skew ${policy.clockSkewSeconds} s`;
  return item.status === 'RELEASING'
    ? { action: 'release', reason: `claimed by a sweep that stopped ${age} s ago (${allowed})` }
    : { action: 'release', reason: `heartbeat ${age} s old (${allowed})` };
}

/** What a holder recorded when it took a lock. */
export interface AcquiredLock {
  lockId: string;
  userId: string;
  moduleCode: string;
  holder?: string;
  leaseSeconds: number;
}

/** The item a holder's acquire writes: HELD, its lease, in the sweep index under `sweepShard` and the user index. */
export function newHeldItem(lock: AcquiredLock, now: number, sweepShard: string): LedgerItem {
  return {
    lockId: lock.lockId,
    userId: lock.userId,
    moduleCode: lock.moduleCode,
    status: 'HELD',
    ...(lock.holder !== undefined ? { holder: lock.holder } : {}),
    acquiredAt: now,
    heartbeatAt: now,
    leaseSeconds: lock.leaseSeconds,
    releaseAttempts: 0,
    version: 1,
    sweepShard,
    openUserId: lock.userId,
  };
}

/**
 * Port: the ledger as a holder sees it. Every write is one conditional request. A heartbeat moves
 * heartbeatAt (never backwards) and rewrites the lease while the item is HELD by this holder, and writes no
 * index; otherwise it throws LockLostError.
 */
export interface HolderLedger {
  /** A new HELD item in the sweep index; LockExistsError when the lock ID is already there. */
  recordAcquired(lock: AcquiredLock): Promise<LedgerItem>;
  /** Resolves with the heartbeatAt written; LockLostError when the item is not this holder's HELD item. */
  recordHeartbeat(lockId: string, holder: string | undefined, leaseSeconds: number): Promise<number>;
  /** RELEASED (final, out of the index); a no-op when already final; LockNotFoundError when absent. */
  recordReleased(lockId: string): Promise<void>;
  /** The release path's outcome write (RELEASE_FAILED after a failed release). */
  record(result: LockResult): Promise<void>;
}

/** Port: the ledger as the sweep sees it. */
export interface SweepLedger {
  /** Every open item (the sweep index: HELD, RELEASING, RELEASE_FAILED), page by page; reads may be stale. */
  openItems(): AsyncIterable<LedgerItem[]>;
  /**
   * RELEASING with heartbeatAt = now and the claim's lease, if the version is still the one read; undefined
   * when the race was lost (the holder heart-beat, another sweep claimed it, an outcome was recorded).
   */
  claim(item: LedgerItem, leaseSeconds: number): Promise<LedgerItem | undefined>;
  /** Records the outcomes of locks this sweep claimed. */
  claimRecorder(claimed: readonly LedgerItem[]): OutcomeRecorder;
  /** EXPIRED (final, out of the index) if the version is still the one read; false when it changed. */
  closeExpired(item: LedgerItem): Promise<boolean>;
}

/** Port: the ledger as find-by-user sees it (the release function's `{"userId", "moduleCode"}` request). */
export interface UserLedger {
  /**
   * The user's open items (HELD, RELEASING, RELEASE_FAILED), only those of `moduleCode` when given, read through
   * the user index (never a scan); eventually consistent. Items without openUserId (written by an older holder)
   * are not found.
   */
  openItemsOf(userId: string, moduleCode?: string): Promise<LedgerItem[]>;
}

/** The holder's timing, all in ms; see holderTiming. */
export interface HolderTiming {
  leaseMs: number;
  heartbeatMs: number;
  skewMs: number;
  marginMs: number;
  /** lease − skew − margin: how long after the start of its last successful heartbeat a holder may work. */
  safeMs: number;
}

/**
 * The holder's safe time and heartbeat period. Throws RangeError naming the numbers when the lease is out of
 * range or the safe time cannot cover a heartbeat period (the lease would lapse between two heartbeats).
 */
export function holderTiming(options: {
  leaseSeconds?: number;
  heartbeatSeconds?: number;
  clockSkewSeconds?: number;
}): HolderTiming {
  const leaseSeconds = options.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  if (!(leaseSeconds >= MIN_LEASE_SECONDS && leaseSeconds <= MAX_LEASE_SECONDS)) {
    throw new RangeError(
      `leaseSeconds must be from ${MIN_LEASE_SECONDS} to ${MAX_LEASE_SECONDS}, got ${leaseSeconds}`,
    );
  }
  const skewSeconds = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  if (!(skewSeconds >= 0)) throw new RangeError(`clockSkewSeconds must be 0 or more, got ${skewSeconds}`);
  const leaseMs = Math.round(leaseSeconds * 1000);
  const heartbeatMs = Math.round((options.heartbeatSeconds ?? leaseSeconds / 3) * 1000);
  const skewMs = Math.round(skewSeconds * 1000);
  const marginMs = Math.min(2000, Math.max(250, Math.round(leaseMs * 0.05)));
  const safeMs = leaseMs - skewMs - marginMs;
  if (!(heartbeatMs > 0) || heartbeatMs >= safeMs) {
    throw new RangeError(
      `a ${leaseSeconds} s lease leaves a safe time of ${safeMs / 1000} s (lease − clock skew ${skewSeconds} s − margin ${marginMs / 1000} s), ` +
        `which must be longer than the heartbeat period of ${heartbeatMs / 1000} s: lengthen the lease, shorten heartbeatSeconds or lower clockSkewSeconds`,
    );
  }
  return { leaseMs, heartbeatMs, skewMs, marginMs, safeMs };
}

/** A sweep index partition key value for a new item, chosen at random. */
export function randomSweepShard(random: () => number): string {
  return String(Math.min(SWEEP_SHARDS - 1, Math.floor(random() * SWEEP_SHARDS)));
}
