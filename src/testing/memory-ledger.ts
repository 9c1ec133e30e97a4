/**
 * The lock ledger in memory, with DynamoDB's semantics (never bundled): what the simulation and the core's unit
 * tests run against. It passes the same contract tests as DynamoLedger on dynalite
 * (test/ledger/ledger.contract.test.ts): conditional writes, the version, sweepShard and openUserId present exactly
 * while an item is open (so it is in the openLocks and openByUser indexes), final states that stay final.
 *
 * Every method is async and atomic: the whole write is applied synchronously inside the call, as one DynamoDB
 * request is. Items are cloned in and out, so a caller never shares state with the store. There is no fault
 * injection here: a simulation wraps the ports itself.
 */
import { LockExistsError, LockLostError, LockNotFoundError, LedgerConflictError } from '../core/errors';
import {
  FINAL_STATUSES,
  newHeldItem,
  SWEEP_SHARDS,
  type AcquiredLock,
  type HolderLedger,
  type LedgerItem,
  type LedgerReading,
  type LedgerStatus,
  type ReleaseLedger,
  type SweepLedger,
  type UserLedger,
} from '../core/lease';
import type { LockResult, OutcomeRecorder, ReleaseBasis } from '../core/model';
import { MAX_LAST_ERROR_LENGTH, RELEASED_RETENTION_SECONDS } from '../ledger/ledger';

export interface MemoryLedgerOptions {
  /** Epoch ms: the clock of whoever writes (DynamoLedger's `now`). */
  now: () => number;
  /** Items per page of openItems(). Default 100 (a BatchGetItem's worth). */
  pageSize?: number;
}

/** What a claim overwrote: a failure recorded for that claim restores it (see DynamoLedger.claimRecorder). */
interface ClaimedFrom {
  version: number;
  heartbeatAt: number;
  leaseSeconds: number | undefined;
}

const OPEN: readonly LedgerStatus[] = ['HELD', 'RELEASING', 'RELEASE_FAILED'];

export class MemoryLedger implements HolderLedger, SweepLedger, UserLedger, ReleaseLedger {
  /** The table: lock ID → item. Checkers may read it; writes should go through the methods (or put()). */
  readonly items = new Map<string, LedgerItem>();
  private readonly now: () => number;
  private readonly pageSize: number;
  private readonly claimedFrom = new Map<string, ClaimedFrom>();

  constructor(options: MemoryLedgerOptions) {
    this.now = options.now;
    this.pageSize = Math.max(1, options.pageSize ?? 100);
  }

  /** Writes an item as it is (a BatchWriteItem PutRequest): for seeding tests. */
  put(item: LedgerItem): void {
    this.items.set(item.lockId, structuredClone(item));
  }

  /** The item, as a consistent read; undefined when absent. For tests (the release path reads with readItems). */
  get(lockId: string): Promise<LedgerItem | undefined> {
    const item = this.items.get(lockId);
    return Promise.resolve(item ? structuredClone(item) : undefined);
  }

  /** The release path's live-lease read: each item as stored (a consistent read), undefined when absent. */
  readItems(lockIds: readonly string[]): Promise<Map<string, LedgerReading>> {
    const readings = new Map<string, LedgerReading>();
    for (const lockId of lockIds) {
      const item = this.items.get(lockId);
      readings.set(lockId, { ok: true, item: item ? structuredClone(item) : undefined });
    }
    return Promise.resolve(readings);
  }

  // ---- holder side ----

  recordAcquired(lock: AcquiredLock): Promise<LedgerItem> {
    if (this.items.has(lock.lockId)) return Promise.reject(new LockExistsError(lock.lockId));
    const now = this.now();
    const item = newHeldItem(lock, now, shardOf(lock.lockId));
    this.items.set(item.lockId, item);
    return Promise.resolve(structuredClone(item));
  }

  recordHeartbeat(lockId: string, holder: string | undefined, leaseSeconds: number): Promise<number> {
    const now = this.now();
    const item = this.items.get(lockId);
    if (item && item.status === 'HELD' && item.holder === holder) {
      if (item.heartbeatAt < now) {
        item.heartbeatAt = now;
        item.leaseSeconds = leaseSeconds;
        item.version += 1;
      }
      // else: a later (or equal) heartbeat already landed; heartbeatAt never moves backwards.
      return Promise.resolve(item.heartbeatAt);
    }
    return Promise.reject(lostError(lockId, holder, item));
  }

  recordReleased(lockId: string): Promise<void> {
    const item = this.items.get(lockId);
    if (!item) return Promise.reject(new LockNotFoundError(lockId));
    if (isFinal(item.status)) return Promise.resolve();
    const now = this.now();
    item.status = 'RELEASED';
    item.releasedAt = now;
    item.expiresAt = retainUntil(now);
    item.version += 1;
    delete item.sweepShard;
    delete item.openUserId;
    return Promise.resolve();
  }

  /**
   * The release path's outcome: creates the item (never indexed) when absent; a final item stays as it is. With a
   * basis, a failure is written only on the item read (its version, or still absent), else LedgerConflictError; a
   * forced release sets forcedAt (see DynamoLedger.record).
   */
  record(result: LockResult, basis?: ReleaseBasis): Promise<void> {
    if (!isRecordable(result)) return Promise.resolve();
    const now = this.now();
    let item = this.items.get(result.lockId);
    if (result.outcome === 'failed' && basis !== undefined && basis.read !== 'unread') {
      const onRead =
        basis.read === 'absent'
          ? !item
          : item !== undefined && item.version === basis.read && !isFinal(item.status);
      if (!onRead) {
        return Promise.reject(
          new LedgerConflictError(
            result.lockId,
            `lock ${result.lockId} changed since the release read it; its failure was not recorded`,
          ),
        );
      }
    }
    if (item && isFinal(item.status)) return Promise.resolve();
    if (!item) {
      item = {
        lockId: result.lockId,
        userId: result.userId,
        status: 'RELEASE_FAILED',
        acquiredAt: now,
        heartbeatAt: now,
        releaseAttempts: 0,
        version: 0,
      };
      this.items.set(item.lockId, item);
    }
    applyOutcome(item, result, now);
    if (basis?.forced) item.forcedAt = now;
    return Promise.resolve();
  }

  // ---- sweep side ----

  /**
   * The open items, shard by shard ("0" … "15"), lock IDs in order within a shard, `pageSize` at a time. Each
   * page is read when it is asked for, as DynamoDB reads each page (no snapshot of the whole set).
   */
  async *openItems(): AsyncIterable<LedgerItem[]> {
    for (let shard = 0; shard < SWEEP_SHARDS; shard += 1) {
      const key = String(shard);
      let after = '';
      for (;;) {
        await Promise.resolve();
        const page = [...this.items.values()]
          .filter((i) => i.sweepShard === key && i.lockId > after && OPEN.includes(i.status))
          .sort((a, b) => (a.lockId < b.lockId ? -1 : 1))
          .slice(0, this.pageSize);
        if (page.length === 0) break;
        after = (page[page.length - 1] as LedgerItem).lockId;
        yield page.map((i) => structuredClone(i));
        if (page.length < this.pageSize) break;
      }
    }
  }

  // ---- find-by-user ----

  /** The user's open items that carry openUserId (the user index), of `moduleCode` when given, in lock ID order. */
  openItemsOf(userId: string, moduleCode?: string): Promise<LedgerItem[]> {
    const found = [...this.items.values()]
      .filter(
        (i) =>
          i.openUserId === userId &&
          OPEN.includes(i.status) &&
          i.userId === userId &&
          (moduleCode === undefined || i.moduleCode === moduleCode),
      )
      .sort((a, b) => (a.lockId < b.lockId ? -1 : 1))
      .map((i) => structuredClone(i));
    return Promise.resolve(found);
  }

  claim(read: LedgerItem, leaseSeconds: number): Promise<LedgerItem | undefined> {
    const item = this.items.get(read.lockId);
    if (!item || item.version !== read.version) return Promise.resolve(undefined);
    const now = this.now();
    this.remember(item);
    item.status = 'RELEASING';
    item.heartbeatAt = now;
    item.leaseSeconds = leaseSeconds;
    item.version = read.version + 1;
    return Promise.resolve(structuredClone(item));
  }

  claimRecorder(claimed: readonly LedgerItem[]): OutcomeRecorder {
    const versions = new Map(claimed.map((c) => [c.lockId, c.version]));
    const before = new Map(
      claimed.map((c) => [c.lockId, this.forget(c.lockId, c.version)] as const).filter(([, b]) => b),
    );
    return {
      record: (result) => {
        if (result.outcome !== 'failed') return this.record(result);
        if (!isRecordable(result)) return Promise.resolve();
        const version = versions.get(result.lockId);
        if (version === undefined) {
          return Promise.reject(new Error(`lock ${result.lockId} was not claimed by this sweep`));
        }
        const item = this.items.get(result.lockId);
        if (!item || item.version !== version) {
          return Promise.reject(
            new LedgerConflictError(
              result.lockId,
              `lock ${result.lockId} changed since this sweep claimed it; its failure was not recorded`,
            ),
          );
        }
        const from = before.get(result.lockId);
        if (from) {
          item.heartbeatAt = from.heartbeatAt;
          if (from.leaseSeconds === undefined) delete item.leaseSeconds;
          else item.leaseSeconds = from.leaseSeconds;
        }
        applyOutcome(item, result, this.now());
        return Promise.resolve();
      },
    };
  }

  closeExpired(read: LedgerItem): Promise<boolean> {
    const item = this.items.get(read.lockId);
    if (!item || item.version !== read.version) return Promise.resolve(false);
    item.status = 'EXPIRED';
    item.expiresAt = retainUntil(this.now());
    item.version = read.version + 1;
    delete item.sweepShard;
    delete item.openUserId;
    return Promise.resolve(true);
  }

  private remember(item: LedgerItem): void {
    this.claimedFrom.set(item.lockId, {
      version: item.version + 1,
      heartbeatAt: item.heartbeatAt,
      leaseSeconds: item.leaseSeconds,
    });
  }

  private forget(lockId: string, version: number): ClaimedFrom | undefined {
    const from = this.claimedFrom.get(lockId);
    if (from?.version !== version) return undefined;
    this.claimedFrom.delete(lockId);
    return from;
  }
}

/** A stable shard per lock ID (FNV-1a): deterministic, so a simulation replays from its seed. */
export function shardOf(lockId: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < lockId.length; i += 1) {
    hash ^= lockId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return String(hash % SWEEP_SHARDS);
}

function applyOutcome(item: LedgerItem, result: LockResult, now: number): void {
  const released = result.outcome === 'released' || result.outcome === 'alreadyReleased';
  item.status = released ? 'RELEASED' : 'RELEASE_FAILED';
  item.releaseAttempts += result.attempts;
  item.version += 1;
  if (released) {
    item.releasedAt = now;
    item.expiresAt = retainUntil(now);
    delete item.sweepShard;
    delete item.openUserId;
  } else {
    item.lastError = lastErrorOf(result);
  }
}

function lostError(lockId: string, holder: string | undefined, item: LedgerItem | undefined): LockLostError {
  if (!item) return new LockLostError(lockId, undefined, 'it is not in the ledger');
  if (item.status !== 'HELD')
    return new LockLostError(lockId, item.status, `its ledger status is ${item.status}`);
  return new LockLostError(
    lockId,
    item.status,
    `it is held by ${item.holder ?? 'an anonymous holder'}, not ${holder ?? 'an anonymous holder'}`,
  );
}

function isFinal(status: LedgerStatus): boolean {
  return FINAL_STATUSES.includes(status);
}

function isRecordable(result: LockResult): boolean {
  if (result.outcome === 'wouldRelease') return false;
  return result.outcome !== 'failed' || result.error?.kind !== 'invalid-input';
}

function retainUntil(nowMs: number): number {
  return Math.floor(nowMs / 1000) + RELEASED_RETENTION_SECONDS;
}

function lastErrorOf(result: LockResult): string {
  const text = `${result.error?.kind ?? 'unknown'}: ${result.error?.message ?? 'no message'}`;
  return text.length > MAX_LAST_ERROR_LENGTH ? `${text.slice(0, MAX_LAST_ERROR_LENGTH - 1)}…` : text;
}
