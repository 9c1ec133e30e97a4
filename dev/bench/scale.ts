/**
 * The ledger-scale workloads: holders through the real LockHolder on a virtual clock (so 7
 * heartbeats of 40 s take no real 5 minutes), the ledger writes they cause priced per partition key value by the
 * capacity model, the index census (what sits in each index at the end), seeding a large ledger of open locks for
 * either design, and today's sweep (the baseline) as it ran before the sparse index.
 */
import {
  BatchWriteItemCommand,
  ScanCommand,
  type AttributeValue,
  type BatchWriteItemCommandOutput,
  type DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { mapConcurrently, releaseLocks, type EngineDeps, type EngineOptions } from '../../src/core/engine';
import type { HolderLedger } from '../../src/core/lease';
import type { Clock, LockResult, Timer } from '../../src/core/model';
import { LockHolder, type KooDriveLocks } from '../../src/ledger/holder';
import type { BaselineLedger, LedgerItem as BaselineItem } from './baseline-ledger';
import type { CapacityMeter } from './capacity';
import { since, type MeterSnapshot } from './capacity';

export const SPARSE_INDEX = 'openLocks';
export const BY_STATUS_INDEX = 'byStatus';
export const SWEEP_SHARDS = 16;

// ---------------------------------------------------------------------------------------------------------
// A virtual clock: time moves only when the benchmark advances it.

export class VirtualClock implements Clock {
  private t = 0;
  private readonly timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  constructor(private readonly epoch = Date.now()) {}

  now = (): number => this.epoch + this.t;
  monotonic = (): number => this.t;
  sleep = (ms: number): Promise<void> => new Promise((resolve) => this.setTimer(ms, resolve));
  setTimer(ms: number, fn: () => void): Timer {
    const timer = { at: this.t + Math.max(0, ms), fn, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }

  /** Moves time forward to `this.t + ms`, firing due timers in order, letting I/O settle after each batch. */
  async advance(ms: number, settle: () => Promise<void>): Promise<void> {
    const until = this.t + ms;
    for (;;) {
      const due = this.timers
        .filter((x) => x.live && x.at <= until)
        .sort((a, b) => a.at - b.at)
        .slice(0, 1);
      const next = due[0];
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      const batch = this.timers.filter((x) => x.live && x.at <= this.t);
      for (const x of batch) x.live = false;
      for (const x of batch) x.fn();
      await settle();
      for (let i = this.timers.length - 1; i >= 0; i--) if (!this.timers[i]?.live) this.timers.splice(i, 1);
    }
    this.t = until;
  }
}

/** A KooDrive that always agrees, in memory: the benchmark counts ledger writes, not KooDrive calls. */
export function agreeableKooDrive(prefix: string): KooDriveLocks & { created: number } {
  const k = {
    created: 0,
    createLock: (userId: string, moduleCode: string) =>
      Promise.resolve({ ok: true as const, lockId: `${prefix}-${k.created++}-${userId}@${moduleCode}` }),
    renewLock: () => Promise.resolve({ ok: true as const }),
    releaseLock: () => Promise.resolve({ ok: true as const, outcome: 'released' as const }),
  };
  return k;
}

/** The baseline ledger behind the holder port: the same calls, the lease ignored (it had none). */
export function baselineHolderLedger(ledger: BaselineLedger): HolderLedger {
  return {
    recordAcquired: async (lock) => await ledger.recordAcquired(lock),
    recordHeartbeat: (lockId, holder) => ledger.recordHeartbeat(lockId, holder),
    recordReleased: (lockId) => ledger.recordReleased(lockId),
    record: (result) => ledger.record(result),
  };
}

export interface HoldersResult {
  holders: number;
  heartbeatsPerHolder: number;
  acquire: MeterSnapshot;
  heartbeats: MeterSnapshot;
  release: MeterSnapshot;
  all: MeterSnapshot;
  /** Real time the run took (the clock was virtual). */
  ms: number;
}

/**
 * `holders` LockHolder.hold() calls at once on a virtual clock, each working 5 minutes (7 heartbeats of 40 s
 * with the default 120 s lease), then released; the meter's charges split by phase.
 */
export async function holdersRun(options: {
  ledger: HolderLedger;
  clock: VirtualClock;
  meter: CapacityMeter;
  holders: number;
  users: number;
  prefix: string;
  workSeconds?: number;
}): Promise<HoldersResult> {
  const { clock, meter } = options;
  const started = performance.now();
  const workMs = (options.workSeconds ?? 300) * 1000;
  // The ledger port counted: a step is over when no ledger call is in flight.
  let inFlight = 0;
  let acquired = 0;
  const counted =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>, after?: () => void) =>
    async (...args: A): Promise<R> => {
      inFlight += 1;
      try {
        return await fn(...args);
      } finally {
        inFlight -= 1;
        after?.();
      }
    };
  const l = options.ledger;
  const ledger: HolderLedger = {
    recordAcquired: counted(
      (lock) => l.recordAcquired(lock),
      () => (acquired += 1),
    ),
    recordHeartbeat: counted((id, name, lease) => l.recordHeartbeat(id, name, lease)),
    recordReleased: counted((id) => l.recordReleased(id)),
    record: counted((result) => l.record(result)),
  };
  const holder = new LockHolder({
    name: 'bench-worker',
    leaseSeconds: 120,
    heartbeatSeconds: 40,
    clockSkewSeconds: 10,
    koodrive: agreeableKooDrive(options.prefix),
    ledger,
    clock,
    random: Math.random,
  });
  const tick = () => new Promise((resolve) => setTimeout(resolve, 2));
  /** Waits until no ledger call is in flight (twice in a row: a call may follow a resolved promise). */
  const settle = async (more: () => boolean = () => false) => {
    for (let quiet = 0; quiet < 2;) {
      await tick();
      quiet = inFlight === 0 && !more() ? quiet + 1 : 0;
    }
  };
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const s0 = meter.snapshot();
  const held = Array.from({ length: options.holders }, (_, i) =>
    holder.hold(`bench-user-${i % options.users}`, '102', () => done),
  );
  await settle(() => acquired < options.holders);
  const s1 = meter.snapshot();
  // Heartbeats every 40 s up to just before the end of the work; no heartbeat is due at the end itself.
  await clock.advance(workMs - 1, () => settle());
  const s2 = meter.snapshot();
  finish();
  await Promise.all(held);
  await settle();
  const s3 = meter.snapshot();
  const heartbeats = since(s1, s2);
  return {
    holders: options.holders,
    heartbeatsPerHolder: (heartbeats.requests.UpdateItem ?? 0) / options.holders,
    acquire: since(s0, s1),
    heartbeats,
    release: since(s2, s3),
    all: since(s0, s3),
    ms: performance.now() - started,
  };
}

// ---------------------------------------------------------------------------------------------------------
// What sits in an index

export interface Census {
  entries: number;
  /** Entries whose item is final (RELEASED, EXPIRED). */
  final: number;
  /** Entries whose lock ID is one of `releasePathIds` (items the release path created). */
  releasePath: number;
  open: number;
}

async function scanAll(client: DynamoDBClient, TableName: string, IndexName?: string) {
  const items: Array<Record<string, AttributeValue>> = [];
  let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({ TableName, ...(IndexName ? { IndexName } : {}), ExclusiveStartKey }),
    );
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

/** Scans an index and its table straight from dynalite (not metered). */
export async function indexCensus(
  client: DynamoDBClient,
  tableName: string,
  indexName: string,
  releasePathIds: ReadonlySet<string>,
): Promise<Census> {
  const status = new Map(
    (await scanAll(client, tableName)).map((i) => [i.lockId?.S ?? '', i.status?.S ?? '']),
  );
  const entries = await scanAll(client, tableName, indexName);
  let final = 0;
  let releasePath = 0;
  for (const e of entries) {
    const id = e.lockId?.S ?? '';
    const s = status.get(id);
    if (s === 'RELEASED' || s === 'EXPIRED') final += 1;
    if (releasePathIds.has(id)) releasePath += 1;
  }
  return { entries: entries.length, final, releasePath, open: entries.length - final };
}

/** The release path's outcome writes for locks the ledger never had: released, failed, or both alternately. */
export async function releasePathWrites(
  record: (result: LockResult) => Promise<void>,
  count: number,
  prefix: string,
  kind: 'released' | 'failed' | 'mixed' = 'mixed',
): Promise<Set<string>> {
  const ids = new Set<string>();
  await mapConcurrently(
    Array.from({ length: count }, (_, i) => i),
    16,
    async (i) => {
      const lockId = `${prefix}-${i}@102`;
      ids.add(lockId);
      await record(
        kind === 'released' || (kind === 'mixed' && i % 2 === 0)
          ? { lockId, userId: 'bench-user', outcome: 'released', attempts: 1 }
          : {
              lockId,
              userId: 'bench-user',
              outcome: 'failed',
              attempts: 4,
              error: { kind: 'retryable', httpStatus: 503, message: 'KooDrive answered 503' },
            },
      );
    },
  );
  return ids;
}

// ---------------------------------------------------------------------------------------------------------
// A large ledger of open locks

export type Design = 'sparse' | 'byStatus';

/**
 * `total` HELD items written straight to dynalite with BatchWriteItem (not metered): `stale` of them with a
 * heartbeat an hour old, named `${prefix}-stale-<i>`, the rest fresh. The sparse design's items carry a lease and
 * a sweep shard (i mod 16), as LockHolder writes them; the baseline's what it wrote.
 */
export async function seedOpenLocks(
  client: DynamoDBClient,
  tableName: string,
  design: Design,
  total: number,
  stale: number,
  prefix: string,
  userId: string,
): Promise<string[]> {
  const now = Date.now();
  const hourAgo = now - 3_600_000;
  const staleIds: string[] = [];
  const item = (i: number): WriteRequest => {
    const isStale = i < stale;
    const lockId = `${prefix}-${isStale ? 'stale' : 'fresh'}-${i}@102`;
    if (isStale) staleIds.push(lockId);
    const beat = String(isStale ? hourAgo : now);
    return {
      PutRequest: {
        Item: {
          lockId: { S: lockId },
          userId: { S: userId },
          moduleCode: { S: '102' },
          status: { S: 'HELD' },
          holder: { S: 'bench-worker' },
          acquiredAt: { N: beat },
          heartbeatAt: { N: beat },
          releaseAttempts: { N: '0' },
          version: { N: '1' },
          // Fresh items carry the longest lease (600 s): seeding 100,000 items and two sweeps take minutes on a
          // busy machine, and a 120 s lease would turn them stale during the run.
          ...(design === 'sparse'
            ? { leaseSeconds: { N: isStale ? '120' : '600' }, sweepShard: { S: String(i % SWEEP_SHARDS) } }
            : {}),
        },
      },
    };
  };
  let next = 0;
  const writer = async () => {
    while (next < total) {
      const start = next;
      next = Math.min(total, next + 25);
      let pending: Record<string, WriteRequest[]> | undefined = {
        [tableName]: Array.from({ length: next - start }, (_, k) => item(start + k)),
      };
      while (pending && Object.keys(pending).length > 0) {
        const answer: BatchWriteItemCommandOutput = await client.send(
          new BatchWriteItemCommand({ RequestItems: pending }),
        );
        pending = answer.UnprocessedItems;
      }
    }
  };
  await Promise.all([writer(), writer(), writer()]);
  return staleIds;
}

// ---------------------------------------------------------------------------------------------------------
// The baseline sweep: src/core/sweep.ts before the sparse index, reduced to what costs requests and time.

export interface BaselineSweepResult {
  candidates: number;
  claimed: number;
  released: number;
  failed: number;
  requests: number;
}

/** Candidates from byStatus (HELD / RELEASING older than the stale time, every RELEASE_FAILED), claimed, released. */
export async function baselineSweep(
  ledger: BaselineLedger,
  engine: Omit<EngineDeps, 'recorder'>,
  options: EngineOptions,
  input: { staleAfterSeconds: number; limit: number },
): Promise<BaselineSweepResult> {
  const before = ledger.requests;
  const { items } = await ledger.findCandidates({
    staleBefore: engine.clock.now() - input.staleAfterSeconds * 1000,
    limit: input.limit,
  });
  const claims = await mapConcurrently(items, options.concurrency, (item) => ledger.claim(item));
  const claimed = claims.filter((c): c is BaselineItem => c !== undefined);
  const results = await releaseLocks(
    claimed.map(({ lockId, userId }) => ({ lockId, userId })),
    { ...engine, recorder: ledger.claimRecorder(claimed) },
    options,
  );
  return {
    candidates: items.length,
    claimed: claimed.length,
    released: results.filter((r) => r.outcome === 'released' || r.outcome === 'alreadyReleased').length,
    failed: results.filter((r) => r.outcome === 'failed').length,
    requests: ledger.requests - before,
  };
}
