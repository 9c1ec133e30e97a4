/**
 * The lease protocol (README, "Leases and the promise"): the ledger item, when an item is stale, when a
 * failed release's KooDrive lock has certainly expired, and the holder's safe time. Pure rules and the two
 * ledger ports; the DynamoDB adapter and the in-memory model both implement the ports.
 */
import type { LockError, LockResult, OutcomeRecorder, ReleaseBasis } from './model';

/** A KooDrive lock expires this long after its creation or last renewal. */
export const KOODRIVE_LOCK_SECONDS = 600;
export const DEFAULT_LEASE_SECONDS = 120;
export const MIN_LEASE_SECONDS = 5;
export const MAX_LEASE_SECONDS = 600;
export const DEFAULT_CLOCK_SKEW_SECONDS = 10;
/**
 * The longest one KooDrive request of a holder may take (its request timeout, `koodriveTimeoutMs`, is refused above
 * it): a renew sent at the end of the holder's safe time lands at KooDrive no later than this after it was sent.
 */
export const MAX_KOODRIVE_REQUEST_SECONDS = 30;
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
  /**
   * Epoch ms of the last release an operator forced (`"force": true`) past a live lease. A RELEASE_FAILED item that
   * carries it is retried by the sweep at once, whatever its lease.
   */
  forcedAt?: number;
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

/** Seconds until the item's lease (plus the skew allowance) runs out by staleAt, rounded up; 0 once it has. */
export function leaseLeftSeconds(
  item: Pick<LedgerItem, 'heartbeatAt' | 'leaseSeconds'>,
  now: number,
  policy: LeasePolicy,
): number {
  return Math.max(0, Math.ceil((staleAt(item, policy) - now) / 1000));
}

/**
 * Epoch ms (by the sweep's clock) after which the item's KooDrive lock has certainly expired, renewed or not. The
 * holder's last renewal is sent at most its safe time (shorter than its lease) after the heartbeat it recorded,
 * lands at KooDrive at most MAX_KOODRIVE_REQUEST_SECONDS after that, and KooDrive keeps the lock 600 s after it
 * lands: heartbeatAt + lease + request bound + 600 s + the skew allowance. An item without a lease of its own (the
 * release path created it) counts no lease.
 */
export function certainlyExpiredAt(
  item: Pick<LedgerItem, 'heartbeatAt' | 'leaseSeconds'>,
  policy: LeasePolicy,
): number {
  return (
    item.heartbeatAt +
    ((item.leaseSeconds ?? 0) +
      MAX_KOODRIVE_REQUEST_SECONDS +
      KOODRIVE_LOCK_SECONDS +
      policy.clockSkewSeconds) *
      1000
  );
}

/**
 * How late a scheduled sweep may start after its slot, as the time-to-free bound allows for it (the simulation
 * starts its sweeps up to this late).
 */
export const SCHEDULE_JITTER_SECONDS = 2;

/** What the time to free a dead holder's lock depends on; all in seconds. */
export interface TimeToFreeInputs {
  /** The dead holder's lease. */
  leaseSeconds: number;
  /** The sweep's allowance, CLOCK_SKEW_SECONDS. */
  clockSkewSeconds: number;
  /**
   * How far the holder's clock may run ahead of the sweep's (it wrote heartbeatAt that much in the sweep's future).
   * Each clock within the allowance of true time: twice the allowance.
   */
  clockDifferenceSeconds: number;
  /** The sweep schedule's period (rate(1 minute): 60). */
  schedulePeriodSeconds: number;
  /** How late a scheduled sweep may start after its slot. */
  scheduleJitterSeconds: number;
  /** How long the sweep's claim and DELETE take to land: one KooDrive attempt's timeout. */
  releaseSeconds: number;
}

/**
 * The longest time from a dead holder's last heartbeat (true time) to the sweep's DELETE, when no sweep in between
 * was disturbed: the item turns stale lease + allowance + clock difference later, the next sweep starts within one
 * period plus its jitter, and its DELETE lands within the release time. The README, the template test and the
 * simulation's liveness check state this one formula.
 */
export function timeToFreeBoundSeconds(inputs: TimeToFreeInputs): number {
  return (
    inputs.leaseSeconds +
    inputs.clockSkewSeconds +
    inputs.clockDifferenceSeconds +
    inputs.schedulePeriodSeconds +
    inputs.scheduleJitterSeconds +
    inputs.releaseSeconds
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
    const before = `release failed before: ${item.lastError ?? 'no error recorded'}`;
    if (item.forcedAt !== undefined) return { action: 'release', reason: `${before} (forced)` };
    // A failure recorded while the last holder's lease was still running (its own release after work failed)
    // waits for the lease to run out, as a HELD item would.
    if (staleAt(item, policy) >= now) return { action: 'leave' };
    return { action: 'release', reason: before };
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

/** The release path's ledger read: the item (undefined when absent), or why it could not be read. */
export type LedgerReading = { ok: true; item: LedgerItem | undefined } | { ok: false; message: string };

/** What the release path does with a lock it was asked to release. */
export type ReleaseDecision =
  | { action: 'release'; basis: ReleaseBasis }
  | {
      action: 'held';
      status: 'HELD' | 'RELEASING';
      holder: string | undefined;
      /** Seconds until the lease runs out by the sweep's rule (staleAt), rounded up. */
      leaseLeftSeconds: number;
    }
  | { action: 'refuse'; error: LockError };

/**
 * The release path's live-lease rule (README, "Leases and the promise"), decided at `now` by the release function's
 * clock from a consistent read of the item. An item HELD, or RELEASING by a sweep, whose lease has not run out by
 * the sweep's own rule (staleAt, the same allowance) is `held` unless forced; a lock whose item could not be read is
 * refused (retryable) unless forced; anything else (no item, a lease run out, a failed or final item) is released.
 */
export function decideRelease(
  reading: LedgerReading,
  now: number,
  policy: LeasePolicy,
  force: boolean,
): ReleaseDecision {
  if (!reading.ok) {
    if (force) return { action: 'release', basis: { read: 'unread', forced: true } };
    return {
      action: 'refuse',
      error: {
        kind: 'retryable',
        message: `not released: its ledger item could not be read, so its lease cannot be checked (${reading.message}); "force": true releases it anyway`,
      },
    };
  }
  const { item } = reading;
  if (!item) return { action: 'release', basis: { read: 'absent', forced: force } };
  const live = (item.status === 'HELD' || item.status === 'RELEASING') && staleAt(item, policy) >= now;
  if (live && !force) {
    return {
      action: 'held',
      status: item.status as 'HELD' | 'RELEASING',
      holder: item.holder,
      leaseLeftSeconds: leaseLeftSeconds(item, now, policy),
    };
  }
  return { action: 'release', basis: { read: item.version, forced: force } };
}

/** Lock IDs the release path reads at once: DynamoDB's BatchGetItem takes at most 100 keys a request. */
export const MAX_LEASE_READ = 100;

/**
 * Port: the ledger as the release path sees it. `readItems` reads the items of up to MAX_LEASE_READ locks
 * consistently, in one request where it can (a consistent BatchGetItem: one read unit per item under 4 KB), and
 * answers one reading per ID asked: the item as stored (undefined when absent, final items included), or why it could
 * not be read (its request failed, or DynamoDB left its key unprocessed however often it was retried); it never
 * rejects for one lock's read. `record` writes the outcome, conditional on the basis the decision read (see
 * ReleaseBasis) when one is given.
 */
export interface ReleaseLedger extends OutcomeRecorder {
  readItems(lockIds: readonly string[]): Promise<Map<string, LedgerReading>>;
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
