/**
 * The ledger service as the simulated processes reach it: the in-memory ledger (src/testing/memory-ledger.ts, which passes
 * DynamoLedger's contract tests) with what DynamoDB adds on the sweep's read path, and the observations the
 * coverage counts and the checker need, taken at the service where each write is applied.
 *
 * - Eventually consistent reads: DynamoLedger reads the open items with an eventually consistent BatchGetItem; here
 *   each item of a page may come back as it was up to `readLagMs` ago (a final or absent item is left out, as
 *   DynamoLedger leaves it out).
 * - A lagging index: the openLocks index lists the items that were open up to `indexLagMs` ago.
 * - Writes stay strongly consistent (conditional writes always see the latest item), as in DynamoDB.
 */
import { LedgerConflictError, LockLostError } from '../../src/core/errors';
import {
  SWEEP_SHARDS,
  type AcquiredLock,
  type HolderLedger,
  type LedgerItem,
  type ReleaseLedger,
  type SweepLedger,
} from '../../src/core/lease';
import type { LockResult, OutcomeRecorder, ReleaseBasis } from '../../src/core/model';
import type { MemoryLedger } from '../../src/testing/memory-ledger';
import type { Rng } from './clock';
import type { Coverage } from './coverage';

export interface LedgerLag {
  /** The longest an eventually consistent item read lags behind the latest write. */
  readLagMs: number;
  /** The longest the openLocks index lags behind the items. */
  indexLagMs: number;
}

export interface ServiceObserver {
  /** A sweep's claim was applied (who claimed, the status it overwrote). */
  claimed?(lockId: string, by: string, from: LedgerItem): void;
  /** A sweep's claim lost its version check (it read an older item, or someone wrote it since). */
  claimLost?(lockId: string): void;
  /** A sweep closed an item EXPIRED. */
  closedExpired?(lockId: string, by: string): void;
  /** heartbeatAt a holder's write left in the item. */
  heartbeatWritten?(lockId: string, heartbeatAt: number): void;
  /** The release path wrote an outcome: the item's status before and after, and whether it was forced. */
  releaseRecorded?(
    lockId: string,
    by: string,
    before: string | undefined,
    after: string,
    forced: boolean,
  ): void;
}

const OPEN = new Set(['HELD', 'RELEASING', 'RELEASE_FAILED']);
const isOpen = (item: LedgerItem | undefined): item is LedgerItem =>
  item !== undefined && item.sweepShard !== undefined && OPEN.has(item.status);
const PAGE = 100;

export class ServiceLedger {
  /** Every state each item had since `keepMs` ago, oldest first, with the true time it was written. */
  private readonly history = new Map<string, Array<{ at: number; item: LedgerItem | undefined }>>();

  constructor(
    readonly store: MemoryLedger,
    private readonly now: () => number,
    private readonly rng: Rng,
    private readonly lag: LedgerLag,
    private readonly coverage: Coverage,
    private readonly observer: ServiceObserver = {},
  ) {}

  /**
   * The latest end of a lease any state of the item ever showed: heartbeatAt + leaseSeconds of a HELD or RELEASING
   * state (by the clock of whoever wrote it). No read, however stale, shows a lease running longer.
   */
  readonly leaseEnds = new Map<string, number>();

  /** Records the item's state after a write. */
  private written(lockId: string): void {
    const item = this.store.items.get(lockId);
    if (item && (item.status === 'HELD' || item.status === 'RELEASING') && item.leaseSeconds !== undefined) {
      const end = item.heartbeatAt + item.leaseSeconds * 1000;
      this.leaseEnds.set(lockId, Math.max(this.leaseEnds.get(lockId) ?? end, end));
    }
    const states = this.history.get(lockId) ?? [];
    states.push({ at: this.now(), item: item ? structuredClone(item) : undefined });
    // Keep one state older than the longest lag: what a read that far back sees.
    const horizon = this.now() - Math.max(this.lag.readLagMs, this.lag.indexLagMs);
    while (states.length > 1 && (states[1] as { at: number }).at <= horizon) states.shift();
    this.history.set(lockId, states);
  }

  /** The item as it was at `at` (its latest state written at or before then). */
  private asOf(lockId: string, at: number): LedgerItem | undefined {
    const states = this.history.get(lockId);
    if (states === undefined) return undefined;
    let found: LedgerItem | undefined;
    for (const state of states) {
      if (state.at > at) break;
      found = state.item;
    }
    return found;
  }

  private current(lockId: string): LedgerItem | undefined {
    return this.store.items.get(lockId);
  }

  /** The holder side, as the holder named `holder` writes it. */
  holder(): HolderLedger {
    const { store, coverage } = this;
    return {
      recordAcquired: async (lock: AcquiredLock) => {
        const item = await store.recordAcquired(lock);
        this.written(lock.lockId);
        coverage.hit('holder.acquire');
        this.observer.heartbeatWritten?.(item.lockId, item.heartbeatAt);
        return item;
      },
      recordHeartbeat: async (lockId, holder, leaseSeconds) => {
        const before = this.current(lockId)?.heartbeatAt;
        try {
          const at = await store.recordHeartbeat(lockId, holder, leaseSeconds);
          this.written(lockId);
          coverage.hit(before === at ? 'holder.heartbeat.laterLanded' : 'holder.heartbeat');
          this.observer.heartbeatWritten?.(lockId, at);
          return at;
        } catch (error) {
          if (error instanceof LockLostError) {
            coverage.hit('holder.heartbeat.takenOver');
          }
          throw error;
        }
      },
      recordReleased: async (lockId) => {
        const before = this.current(lockId)?.status;
        await store.recordReleased(lockId);
        this.written(lockId);
        if (before === 'RELEASING') coverage.hit('holder.overwroteReleasing');
        else if (before === 'HELD') coverage.hit('holder.released');
        else coverage.hit(`holder.released.over${before ?? 'Nothing'}`);
      },
      record: async (result: LockResult) => {
        const before = this.current(result.lockId)?.status;
        await store.record(result);
        this.written(result.lockId);
        if (before === 'RELEASING') coverage.hit('holder.overwroteReleasing');
        else if (result.outcome === 'failed' && before === 'HELD')
          coverage.hit('holder.recordedReleaseFailed');
        else coverage.hit(`holder.record.${result.outcome}.over${before ?? 'Nothing'}`);
      },
    };
  }

  /** The sweep side, for the sweep invocation named `by`. */
  sweep(by: string): SweepLedger {
    const { store, coverage } = this;
    return {
      openItems: () => this.openItems(),
      claim: async (read: LedgerItem, leaseSeconds: number) => {
        const from = this.current(read.lockId);
        const fromCopy = from ? structuredClone(from) : undefined;
        const claimed = await store.claim(read, leaseSeconds);
        if (claimed === undefined || fromCopy === undefined) {
          coverage.hit('sweep.claim.lost');
          this.observer.claimLost?.(read.lockId);
          return claimed;
        }
        this.written(read.lockId);
        if (fromCopy.status === 'RELEASE_FAILED' && fromCopy.forcedAt !== undefined) {
          coverage.hit('sweep.claim.releaseFailedForced');
        }
        coverage.hit(
          fromCopy.status === 'HELD'
            ? 'sweep.claim.held'
            : fromCopy.status === 'RELEASING'
              ? 'sweep.claim.releasing'
              : fromCopy.status === 'RELEASE_FAILED'
                ? 'sweep.claim.releaseFailed'
                : `sweep.claim.${fromCopy.status}`,
        );
        this.observer.claimed?.(read.lockId, by, fromCopy);
        return claimed;
      },
      claimRecorder: (claimed): OutcomeRecorder => {
        const recorder = store.claimRecorder(claimed);
        return {
          record: async (result) => {
            try {
              await recorder.record(result);
            } catch (error) {
              if (error instanceof LedgerConflictError) coverage.hit('sweep.record.failedConflict');
              throw error;
            }
            this.written(result.lockId);
            coverage.hit(`sweep.record.${result.outcome}`);
          },
        };
      },
      closeExpired: async (read: LedgerItem) => {
        const closed = await store.closeExpired(read);
        if (closed) {
          this.written(read.lockId);
          coverage.hit('sweep.close.expired');
          this.observer.closedExpired?.(read.lockId, by);
        } else {
          coverage.hit('sweep.close.lost');
        }
        return closed;
      },
    };
  }

  /** The release path's side: a consistent read, and the outcome written on the basis it decided from. */
  release(by: string): ReleaseLedger {
    const { store, coverage } = this;
    return {
      readItems: (lockIds) => store.readItems(lockIds),
      record: async (result: LockResult, basis?: ReleaseBasis) => {
        const before = this.current(result.lockId)?.status;
        try {
          await (basis ? store.record(result, basis) : store.record(result));
        } catch (error) {
          if (error instanceof LedgerConflictError) coverage.hit('release.record.failedConflict');
          throw error;
        }
        this.written(result.lockId);
        const after = this.current(result.lockId)?.status ?? 'absent';
        if (basis?.read === 'absent') coverage.hit(`release.record.${result.outcome}.noItem`);
        else if (basis?.read === 'unread') coverage.hit(`release.record.${result.outcome}.unread`);
        else coverage.hit(`release.record.${result.outcome}`);
        if (basis?.forced) coverage.hit('release.record.forced');
        this.observer.releaseRecorded?.(result.lockId, by, before, after, basis?.forced ?? false);
      },
    };
  }

  /**
   * The open items as DynamoLedger reads them: the index's keys (as of up to indexLagMs ago), shard by shard, then
   * each item (as of up to readLagMs ago) 100 a page; items read final or absent are left out. Each page is read
   * when it is asked for.
   */
  private async *openItems(): AsyncIterable<LedgerItem[]> {
    const { rng, lag, coverage } = this;
    const indexAt = this.now() - (lag.indexLagMs > 0 ? rng.int(0, lag.indexLagMs) : 0);
    const byShard: string[][] = Array.from({ length: SWEEP_SHARDS }, () => []);
    let lagging = false;
    for (const lockId of this.history.keys()) {
      const listed = this.asOf(lockId, indexAt);
      const now = this.current(lockId);
      if (isOpen(listed)) byShard[Number(listed.sweepShard)]?.push(lockId);
      if (isOpen(listed) !== isOpen(now)) lagging = true;
    }
    if (lagging) coverage.hit('ledger.index.lagging');
    const keys = byShard.flatMap((ids) => ids.sort());
    for (let i = 0; i < keys.length; i += PAGE) {
      await Promise.resolve();
      const page: LedgerItem[] = [];
      for (const lockId of keys.slice(i, i + PAGE)) {
        const readAt = this.now() - (lag.readLagMs > 0 ? rng.int(0, lag.readLagMs) : 0);
        const item = this.asOf(lockId, readAt);
        if (item === undefined || item.status === 'RELEASED' || item.status === 'EXPIRED') continue;
        if (item.version !== this.current(lockId)?.version) coverage.hit('ledger.read.stale');
        page.push(structuredClone(item));
      }
      if (page.length > 0) yield page;
    }
  }
}
