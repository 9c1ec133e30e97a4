/**
 * The lock ledger on DynamoDB (README, "The sweep and the lock ledger"). Every write is one conditional
 * request: holders write HELD and heartbeats, the release path and the sweep write outcomes, the sweep claims
 * and closes with writes conditional on the version it read. Conditional-check failures become domain errors
 * (or, where losing is normal, a plain answer).
 *
 * The sweep reads the open items through the sparse, keys-only index `openLocks` (partition key sweepShard,
 * "0" … "15", present exactly while an item is open), then the items themselves with BatchGetItem; nothing
 * scans. Find-by-user reads a user's open items through the sparse index `openByUser` (partition key openUserId,
 * the userId, present exactly while an item is open; projects moduleCode), then BatchGetItem. A heartbeat changes
 * neither a key nor a projected attribute of either index, so it writes no index: one write unit.
 *
 * Requests go through the DynamoDB port (dynamo-calls.ts) in DynamoDB's own JSON shape, with constant expressions and
 * pre-marshalled constant values: the outcome write is on the release path's hot loop. Every call is bounded by
 * the adapter's timeout.
 */
import type {
  AttributeValue,
  BatchGetItemAnswer,
  ConsumedCapacity,
  DynamoCalls,
  QueryAnswer,
  QueryInput,
  UpdateItemInput,
  WriteAnswer,
} from './dynamo-calls';
import { LedgerConflictError, LockExistsError, LockLostError, LockNotFoundError } from '../core/errors';
import {
  newHeldItem,
  randomSweepShard,
  SWEEP_SHARDS,
  type AcquiredLock,
  type HolderLedger,
  type LedgerItem,
  type LedgerReading,
  type ReleaseLedger,
  type SweepLedger,
  type UserLedger,
} from '../core/lease';
import {
  systemClock,
  systemRandom,
  type LockResult,
  type OutcomeRecorder,
  type Random,
  type ReleaseBasis,
} from '../core/model';

export { LedgerConflictError, LockExistsError, LockLostError, LockNotFoundError } from '../core/errors';
export type { AcquiredLock, LedgerItem, LedgerStatus } from '../core/lease';

export const OPEN_LOCKS_INDEX = 'openLocks';
/** The sparse user index find-by-user reads: partition key openUserId, present exactly while an item is open. */
export const OPEN_BY_USER_INDEX = 'openByUser';
/** How long a final item (RELEASED, EXPIRED) stays before DynamoDB's TTL removes it. */
export const RELEASED_RETENTION_SECONDS = 7 * 24 * 3600;
export const MAX_LAST_ERROR_LENGTH = 500;
/** Keys per Query page of the index (DynamoDB also ends a page at 1 MB). */
export const DEFAULT_PAGE_SIZE = 1000;
/** BatchGetItem takes at most 100 keys. */
export const BATCH_GET_SIZE = 100;
/** Retries of the keys a BatchGetItem left unprocessed: the sweep's and find-by-user's reads, then they fail. */
export const BATCH_GET_RETRIES = 10;
/**
 * Retries of unprocessed keys on the release path's live-lease read (backoff capped at 50, 100, 200 ms: at most
 * 350 ms of waiting), then those locks are `retryable`: the read stays within the time the engine reserves for it.
 */
export const LEASE_READ_RETRIES = 3;
/** Shards read at once by openItems(). */
export const DEFAULT_READ_CONCURRENCY = 4;

export interface DynamoLedgerOptions {
  tableName: string;
  /**
   * The DynamoDB port: signed requests over an undici pool (dynamo-http.ts) in the functions, the AWS SDK client
   * (dynamo-sdk.ts) in the holder. No default, so that neither adapter is bundled where the other is chosen.
   */
  calls: DynamoCalls;
  /** Epoch ms of the writer's clock. Default: the system clock. */
  now?: () => number;
  /** Waits between BatchGetItem retries of unprocessed keys. Default: the system clock. */
  sleep?: (ms: number) => Promise<void>;
  /** Chooses a new item's sweepShard and jitters retries. Default Math.random. */
  random?: Random;
  /** Keys per Query page of the index. Default 1000. */
  pageSize?: number;
  /** Index shards read at once by openItems(). Default 4. */
  readConcurrency?: number;
}

type Values = Record<string, AttributeValue>;
/** What one BatchGetItem read (retries included): the items found, the keys not read, and why when a request failed. */
interface BatchRead {
  items: LedgerItem[];
  unread: Values[];
  /** Retries of unprocessed keys sent. */
  retries: number;
  error?: { cause: unknown };
}
/** A conditional write whose condition failed, with the item as it was when DynamoDB returned it. */
type ConditionFailed = Extract<WriteAnswer, { conditionFailed: true }>;

const OPEN_STATUSES: readonly string[] = ['HELD', 'RELEASING', 'RELEASE_FAILED'];
const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });

// Constant expressions and names: built once, never per request.
const STATUS_VERSION = { '#status': 'status', '#version': 'version' };
const HEARTBEAT = {
  update: 'SET heartbeatAt = :now, leaseSeconds = :lease, #version = #version + :one',
  named: '#status = :held AND #holder = :holder AND heartbeatAt < :now',
  anonymous: '#status = :held AND attribute_not_exists(#holder) AND heartbeatAt < :now',
  names: { ...STATUS_VERSION, '#holder': 'holder' },
  values: { ':one': N(1), ':held': S('HELD') },
};
const NOT_FINAL = 'NOT (#status IN (:released, :expired))';
const FINAL_VALUES = { ':released': S('RELEASED'), ':expired': S('EXPIRED') };
const RELEASED = {
  update:
    'SET #status = :released, releasedAt = :now, expiresAt = :expiresAt, #version = #version + :one REMOVE sweepShard, openUserId',
  condition: `attribute_exists(lockId) AND ${NOT_FINAL}`,
  values: { ...FINAL_VALUES, ':one': N(1) },
};
/** The release path's outcome: creates the item when absent (then without sweepShard: never indexed). */
const OUTCOME_SET =
  'userId = if_not_exists(userId, :userId), acquiredAt = if_not_exists(acquiredAt, :now), ' +
  'heartbeatAt = if_not_exists(heartbeatAt, :now), ' +
  'releaseAttempts = if_not_exists(releaseAttempts, :zero) + :attempts, #version = if_not_exists(#version, :zero) + :one';
const OUTCOME = {
  released: `SET #status = :released, ${OUTCOME_SET}, releasedAt = :now, expiresAt = :expiresAt REMOVE sweepShard, openUserId`,
  failed: `SET #status = :failed, ${OUTCOME_SET}, lastError = :lastError`,
  /** Appended to the SET of a forced release's outcome. */
  forced: ', forcedAt = :now',
  condition: `attribute_not_exists(lockId) OR ${NOT_FINAL}`,
  /** A failure decided from a read: only on the item read (its version, not final), or while still absent. */
  readCondition: `#version = :read AND ${NOT_FINAL}`,
  absentCondition: 'attribute_not_exists(lockId)',
  releasedValues: { ...FINAL_VALUES, ':zero': N(0), ':one': N(1) },
  failedValues: { ...FINAL_VALUES, ':failed': S('RELEASE_FAILED'), ':zero': N(0), ':one': N(1) },
};
/** A failure of a claimed lock: conditional on the claim; restores what the claim overwrote when known. */
const CLAIMED_FAILURE = {
  base: 'SET #status = :failed, releaseAttempts = releaseAttempts + :attempts, #version = #version + :one, lastError = :lastError',
  restore: ', heartbeatAt = :heartbeatAt, leaseSeconds = :lease',
  restoreNoLease: ', heartbeatAt = :heartbeatAt REMOVE leaseSeconds',
  condition: '#version = :claimVersion',
  values: { ':failed': S('RELEASE_FAILED'), ':one': N(1) },
};
const CLAIM = {
  update: 'SET #status = :releasing, heartbeatAt = :now, leaseSeconds = :lease, #version = :next',
  condition: '#version = :read',
  values: { ':releasing': S('RELEASING') },
};
const CLOSE = {
  update: 'SET #status = :expired, expiresAt = :expiresAt, #version = :next REMOVE sweepShard, openUserId',
  condition: '#version = :read',
  values: { ':expired': S('EXPIRED') },
};

/** What a claim overwrote: a failure recorded for that claim restores it. */
interface ClaimedFrom {
  version: number;
  heartbeatAt: number;
  leaseSeconds: number | undefined;
}
/** Claims remembered at most (a claim whose outcome is never recorded is forgotten, oldest first). */
const MAX_REMEMBERED_CLAIMS = 20_000;

export class DynamoLedger implements HolderLedger, SweepLedger, UserLedger, ReleaseLedger {
  readonly tableName: string;
  /** DynamoDB requests this ledger has sent (SDK retries not counted). */
  requests = 0;
  /** Read capacity units DynamoDB reported consumed (ReturnConsumedCapacity TOTAL). */
  readUnits = 0;
  /** Write capacity units DynamoDB reported consumed for the table (index writes are not reported). */
  writeUnits = 0;
  private readonly calls: DynamoCalls;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: Random;
  private readonly pageSize: number;
  private readonly readConcurrency: number;
  private readonly table: { TableName: string; ReturnConsumedCapacity: 'TOTAL' };
  private readonly claimedFrom = new Map<string, ClaimedFrom>();

  constructor(options: DynamoLedgerOptions) {
    if (!options.tableName) throw new Error('tableName is required');
    this.tableName = options.tableName;
    this.calls = options.calls;
    this.now = options.now ?? (() => systemClock.now());
    this.sleep = options.sleep ?? ((ms) => systemClock.sleep(ms));
    this.random = options.random ?? systemRandom;
    this.pageSize = Math.max(1, options.pageSize ?? DEFAULT_PAGE_SIZE);
    this.readConcurrency = Math.max(1, options.readConcurrency ?? DEFAULT_READ_CONCURRENCY);
    this.table = { TableName: this.tableName, ReturnConsumedCapacity: 'TOTAL' };
  }

  /** The item, read consistently; undefined when absent. For tests and tools. */
  async get(lockId: string): Promise<LedgerItem | undefined> {
    const { Item } = await this.counted(
      'read',
      this.calls.getItem({ ...this.table, Key: { lockId: S(lockId) }, ConsistentRead: true }),
    );
    return Item ? fromItem(Item) : undefined;
  }

  // ---- holder side ----

  /** A new HELD item in the sweep index (a random sweepShard); LockExistsError when the lock ID is there. */
  async recordAcquired(lock: AcquiredLock): Promise<LedgerItem> {
    const now = this.now();
    const item = newHeldItem(lock, now, randomSweepShard(this.random));
    const answer = await this.counted(
      'write',
      this.calls.putItem({
        ...this.table,
        Item: toItem(item),
        ConditionExpression: 'attribute_not_exists(lockId)',
      }),
    );
    if (answer.conditionFailed) throw new LockExistsError(lock.lockId, { cause: answer });
    return item;
  }

  /**
   * Moves heartbeatAt to now and rewrites the lease while the item is HELD by `holder` (by nobody named, for
   * an anonymous holder); resolves with the heartbeatAt stored. heartbeatAt never moves backwards: when a
   * later or equal heartbeat already landed, this one changes nothing and succeeds. Otherwise LockLostError.
   */
  async recordHeartbeat(lockId: string, holder: string | undefined, leaseSeconds: number): Promise<number> {
    const now = this.now();
    const values: Values = { ...HEARTBEAT.values, ':now': N(now), ':lease': N(leaseSeconds) };
    if (holder !== undefined) values[':holder'] = S(holder);
    const error = await this.update(lockId, {
      UpdateExpression: HEARTBEAT.update,
      ConditionExpression: holder === undefined ? HEARTBEAT.anonymous : HEARTBEAT.named,
      ExpressionAttributeNames: HEARTBEAT.names,
      ExpressionAttributeValues: values,
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    if (!error) return now;
    // DynamoDB returns the item with the failure; dynalite does not, then a consistent read tells why.
    const item = error.oldItem ? fromItem(error.oldItem) : await this.get(lockId);
    if (item && item.status === 'HELD' && item.holder === holder && item.heartbeatAt >= now) {
      return item.heartbeatAt;
    }
    throw lostError(lockId, holder, item, error);
  }

  /** Marks the holder's item RELEASED (final, out of the index); a no-op when already final, LockNotFoundError when absent. */
  async recordReleased(lockId: string): Promise<void> {
    const now = this.now();
    const error = await this.update(lockId, {
      UpdateExpression: RELEASED.update,
      ConditionExpression: RELEASED.condition,
      ExpressionAttributeNames: STATUS_VERSION,
      ExpressionAttributeValues: { ...RELEASED.values, ':now': N(now), ':expiresAt': N(retainUntil(now)) },
    });
    // The condition failed: already final (which stays), or absent.
    if (error && (await this.get(lockId)) === undefined)
      throw new LockNotFoundError(lockId, { cause: error });
  }

  // ---- release path (the engine's OutcomeRecorder and its live-lease read) ----

  /**
   * The live-lease read: the items of `lockIds` (duplicates read once), consistently, with one BatchGetItem per 100
   * IDs, unprocessed keys retried LEASE_READ_RETRIES times with backoff. One reading per ID: the item as stored
   * (undefined when absent), or, for an ID its request failed for or DynamoDB left unprocessed every time, why.
   */
  async readItems(lockIds: readonly string[]): Promise<Map<string, LedgerReading>> {
    const ids = [...new Set(lockIds)];
    const readings = new Map<string, LedgerReading>();
    for (let i = 0; i < ids.length; i += BATCH_GET_SIZE) {
      const read = await this.batchGet(
        ids.slice(i, i + BATCH_GET_SIZE).map((lockId) => ({ lockId: S(lockId) })),
        { consistent: true, retries: LEASE_READ_RETRIES },
      );
      for (const item of read.items) readings.set(item.lockId, { ok: true, item });
      const unread: LedgerReading = { ok: false, message: unreadMessage(read) };
      for (const key of read.unread) readings.set(key.lockId?.S ?? '', unread);
    }
    for (const lockId of ids) if (!readings.has(lockId)) readings.set(lockId, { ok: true, item: undefined });
    return readings;
  }

  /**
   * One UpdateItem per outcome: released / alreadyReleased → RELEASED (final, kept 7 days, out of the index),
   * failed → RELEASE_FAILED with the attempts added and the error. Creates the item when absent, without sweepShard
   * (never indexed); keeps an existing one's. A final item stays as it is. Dry runs, held locks and invalid-input
   * failures are not recorded.
   *
   * With the basis the release path decided from (its read), a release is still written whoever wrote since
   * (KooDrive's answer is the truth), but a failure only on the item read: the same version and not final, or still
   * absent; else LedgerConflictError (a holder heart-beat or a sweep claimed it meanwhile: it stays theirs). A
   * forced release also sets forcedAt.
   */
  async record(result: LockResult, basis?: ReleaseBasis): Promise<void> {
    if (!isRecordable(result)) return;
    const conflict = await this.writeOutcome(result, basis);
    // Without a basis, or for a release, a failed condition means already final, which stays.
    if (conflict && basis !== undefined && basis.read !== 'unread' && result.outcome === 'failed') {
      throw new LedgerConflictError(
        result.lockId,
        `lock ${result.lockId} changed since the release read it; its failure was not recorded`,
        { cause: conflict },
      );
    }
  }

  // ---- sweep side ----

  /**
   * Every open item: the keys of each of the 16 shards of the openLocks index (Query, paginated,
   * `readConcurrency` shards at once), then the items (BatchGetItem, 100 keys a request, eventually consistent,
   * unprocessed keys retried). Yields one page per BatchGetItem; items found final meanwhile are left out.
   * Stopping the iteration early stops the reads.
   */
  async *openItems(): AsyncIterable<LedgerItem[]> {
    const pages: LedgerItem[][] = [];
    let stopped = false;
    let failure: { error: unknown } | undefined;
    let wakeConsumer: (() => void) | undefined;
    let wakeProducers: Array<() => void> = [];
    const notifyConsumer = (): void => {
      const wake = wakeConsumer;
      wakeConsumer = undefined;
      wake?.();
    };
    const notifyProducers = (): void => {
      const waiting = wakeProducers;
      wakeProducers = [];
      for (const wake of waiting) wake();
    };
    const maxQueued = 2 * this.readConcurrency;
    let nextShard = 0;
    const readShards = async (): Promise<void> => {
      for (let shard = nextShard++; shard < SWEEP_SHARDS && !stopped; shard = nextShard++) {
        let startKey: Values | undefined;
        do {
          const page = await this.query({
            IndexName: OPEN_LOCKS_INDEX,
            KeyConditionExpression: 'sweepShard = :shard',
            ExpressionAttributeValues: { ':shard': S(String(shard)) },
            Limit: this.pageSize,
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          });
          startKey = page.LastEvaluatedKey;
          const keys = (page.Items ?? []).map((key) => ({ lockId: key.lockId as AttributeValue }));
          for (let i = 0; i < keys.length && !stopped; i += BATCH_GET_SIZE) {
            const items = await this.openItemsAt(keys.slice(i, i + BATCH_GET_SIZE));
            if (items.length > 0) {
              pages.push(items);
              notifyConsumer();
            }
            while (pages.length >= maxQueued && !stopped) {
              await new Promise<void>((resolve) => wakeProducers.push(resolve));
            }
          }
        } while (startKey && !stopped);
      }
    };
    let running = Math.min(this.readConcurrency, SWEEP_SHARDS);
    const readers = Array.from({ length: running }, () =>
      readShards()
        .catch((error: unknown) => {
          failure ??= { error };
          stopped = true;
        })
        .finally(() => {
          running -= 1;
          notifyConsumer();
        }),
    );
    try {
      for (;;) {
        if (failure) throw failure.error;
        const page = pages.shift();
        if (page) {
          notifyProducers();
          yield page;
        } else if (running === 0) {
          return;
        } else {
          await new Promise<void>((resolve) => (wakeConsumer = resolve));
        }
      }
    } finally {
      stopped = true;
      notifyProducers();
      await Promise.all(readers);
    }
  }

  /**
   * RELEASING with heartbeatAt = now and the claim's lease, if the version is still the one read; undefined
   * when the race was lost (the holder heart-beat, another sweep claimed it, an outcome was recorded).
   */
  async claim(read: LedgerItem, leaseSeconds: number): Promise<LedgerItem | undefined> {
    const now = this.now();
    const lost = await this.update(read.lockId, {
      UpdateExpression: CLAIM.update,
      ConditionExpression: CLAIM.condition,
      ExpressionAttributeNames: STATUS_VERSION,
      ExpressionAttributeValues: {
        ...CLAIM.values,
        ':now': N(now),
        ':lease': N(leaseSeconds),
        ':next': N(read.version + 1),
        ':read': N(read.version),
      },
    });
    if (lost) return undefined;
    this.remember(read);
    return { ...read, status: 'RELEASING', heartbeatAt: now, leaseSeconds, version: read.version + 1 };
  }

  /**
   * Records the outcomes of claimed locks. A release is written as record() writes it, whoever wrote since:
   * KooDrive's answer is the truth, and a final item stays final. A failure is written only while the item still
   * carries the claim's version (else LedgerConflictError), and puts back the heartbeatAt and lease the claim
   * overwrote: the time after which the KooDrive lock has certainly expired does not move with each retry.
   */
  claimRecorder(claimed: readonly LedgerItem[]): OutcomeRecorder {
    const versions = new Map(claimed.map((item) => [item.lockId, item.version]));
    const before = new Map<string, ClaimedFrom>();
    for (const item of claimed) {
      const from = this.forget(item.lockId, item.version);
      if (from) before.set(item.lockId, from);
    }
    return {
      record: async (result) => {
        if (result.outcome !== 'failed') return this.record(result);
        if (!isRecordable(result)) return;
        const version = versions.get(result.lockId);
        if (version === undefined) throw new Error(`lock ${result.lockId} was not claimed by this sweep`);
        const from = before.get(result.lockId);
        const values: Values = {
          ...CLAIMED_FAILURE.values,
          ':attempts': N(result.attempts),
          ':lastError': S(lastErrorOf(result)),
          ':claimVersion': N(version),
        };
        let update = CLAIMED_FAILURE.base;
        if (from) {
          values[':heartbeatAt'] = N(from.heartbeatAt);
          if (from.leaseSeconds === undefined) update += CLAIMED_FAILURE.restoreNoLease;
          else {
            update += CLAIMED_FAILURE.restore;
            values[':lease'] = N(from.leaseSeconds);
          }
        }
        const error = await this.update(result.lockId, {
          UpdateExpression: update,
          ConditionExpression: CLAIMED_FAILURE.condition,
          ExpressionAttributeNames: STATUS_VERSION,
          ExpressionAttributeValues: values,
        });
        if (error) {
          throw new LedgerConflictError(
            result.lockId,
            `lock ${result.lockId} changed since this sweep claimed it; its failure was not recorded`,
            { cause: error },
          );
        }
      },
    };
  }

  /** EXPIRED (final, out of the index, kept 7 days) if the version is still the one read; false when it changed. */
  async closeExpired(read: LedgerItem): Promise<boolean> {
    const now = this.now();
    const lost = await this.update(read.lockId, {
      UpdateExpression: CLOSE.update,
      ConditionExpression: CLOSE.condition,
      ExpressionAttributeNames: STATUS_VERSION,
      ExpressionAttributeValues: {
        ...CLOSE.values,
        ':expiresAt': N(retainUntil(now)),
        ':next': N(read.version + 1),
        ':read': N(read.version),
      },
    });
    return lost === undefined;
  }

  // ---- find-by-user ----

  /**
   * The user's open items: the keys from the openByUser index (Query on openUserId, paginated; moduleCode, which the
   * index projects, filtered there when given), then the items (BatchGetItem, 100 keys a request, eventually
   * consistent), of which only the open ones are kept, in lock ID order. Reads only this user's index entries,
   * however large the ledger.
   */
  async openItemsOf(userId: string, moduleCode?: string): Promise<LedgerItem[]> {
    const keys: Values[] = [];
    let startKey: Values | undefined;
    do {
      const page = await this.query({
        IndexName: OPEN_BY_USER_INDEX,
        KeyConditionExpression: 'openUserId = :user',
        ...(moduleCode !== undefined
          ? {
              FilterExpression: 'moduleCode = :module',
              ExpressionAttributeValues: { ':user': S(userId), ':module': S(moduleCode) },
            }
          : { ExpressionAttributeValues: { ':user': S(userId) } }),
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      });
      startKey = page.LastEvaluatedKey;
      for (const key of page.Items ?? []) keys.push({ lockId: key.lockId as AttributeValue });
    } while (startKey);
    const items: LedgerItem[] = [];
    for (let i = 0; i < keys.length; i += BATCH_GET_SIZE) {
      items.push(...(await this.openItemsAt(keys.slice(i, i + BATCH_GET_SIZE))));
    }
    // The index is eventually consistent: an item read back may have changed user or module meanwhile.
    return items
      .filter(
        (item) => item.userId === userId && (moduleCode === undefined || item.moduleCode === moduleCode),
      )
      .sort((a, b) => (a.lockId < b.lockId ? -1 : a.lockId > b.lockId ? 1 : 0));
  }

  // ---- internals ----

  /**
   * One conditional UpdateItem on the item `lockId`. Resolves undefined when it was applied, and with the port's
   * condition-failed answer (the old item when DynamoDB returned it) when the condition failed: losing is a normal
   * answer for every caller. Any other error rejects.
   */
  private async update(
    lockId: string,
    input: Omit<UpdateItemInput, 'TableName' | 'Key' | 'ReturnConsumedCapacity'>,
  ): Promise<ConditionFailed | undefined> {
    const answer = await this.counted(
      'write',
      this.calls.updateItem({ ...this.table, Key: { lockId: S(lockId) }, ...input }),
    );
    return answer.conditionFailed ? answer : undefined;
  }

  /** One Query page of an index of this table, counted. */
  private query(input: Omit<QueryInput, 'TableName' | 'ReturnConsumedCapacity'>): Promise<QueryAnswer> {
    return this.counted('read', this.calls.query({ ...this.table, ...input }));
  }

  /** The outcome write; resolves with the condition failure when it was not applied. */
  private async writeOutcome(
    result: LockResult,
    basis: ReleaseBasis | undefined,
  ): Promise<ConditionFailed | undefined> {
    const now = this.now();
    const released = result.outcome === 'released' || result.outcome === 'alreadyReleased';
    const values: Values = released
      ? { ...OUTCOME.releasedValues, ':expiresAt': N(retainUntil(now)) }
      : { ...OUTCOME.failedValues, ':lastError': S(lastErrorOf(result)) };
    values[':userId'] = S(result.userId);
    values[':now'] = N(now);
    values[':attempts'] = N(result.attempts);
    let update = released ? OUTCOME.released : OUTCOME.failed;
    if (basis?.forced) {
      // SET clauses come before REMOVE: the forced mark goes right after the status.
      update = update.replace('SET #status = :released,', 'SET #status = :released, forcedAt = :now,');
      if (!released) update += OUTCOME.forced;
    }
    let condition = OUTCOME.condition;
    if (!released && basis?.read === 'absent') {
      condition = OUTCOME.absentCondition;
      // DynamoDB refuses values the expressions do not use.
      delete values[':released'];
      delete values[':expired'];
    } else if (!released && typeof basis?.read === 'number') {
      condition = OUTCOME.readCondition;
      values[':read'] = N(basis.read);
    }
    return this.update(result.lockId, {
      UpdateExpression: update,
      ConditionExpression: condition,
      ExpressionAttributeNames: STATUS_VERSION,
      ExpressionAttributeValues: values,
    });
  }

  /**
   * The open items of up to 100 keys, read eventually consistently (the sweep's and find-by-user's reads); a failed
   * request, or keys left unprocessed BATCH_GET_RETRIES times, fail the read.
   */
  private async openItemsAt(keys: Values[]): Promise<LedgerItem[]> {
    const read = await this.batchGet(keys, { consistent: false, retries: BATCH_GET_RETRIES });
    if (read.error) throw read.error.cause;
    if (read.unread.length > 0) throw new Error(unreadMessage(read));
    return read.items.filter((item) => OPEN_STATUSES.includes(item.status));
  }

  /**
   * BatchGetItem of up to 100 keys, retrying unprocessed keys up to `retries` times with backoff: every item found
   * (final ones too), and the keys not read, with the request's error when one failed (then no more are sent).
   */
  private async batchGet(
    keys: Values[],
    options: { consistent: boolean; retries: number },
  ): Promise<BatchRead> {
    const items: LedgerItem[] = [];
    let pending = keys;
    let retries = 0;
    for (;;) {
      let answer: BatchGetItemAnswer;
      try {
        answer = await this.counted(
          'read',
          this.calls.batchGetItem({
            RequestItems: {
              [this.tableName]: { Keys: pending, ...(options.consistent ? { ConsistentRead: true } : {}) },
            },
            ReturnConsumedCapacity: 'TOTAL',
          }),
        );
      } catch (cause) {
        return { items, unread: pending, retries, error: { cause } };
      }
      for (const item of answer.Responses?.[this.tableName] ?? []) items.push(fromItem(item));
      pending = answer.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
      if (pending.length === 0 || retries === options.retries) return { items, unread: pending, retries };
      retries += 1;
      await this.sleep(Math.floor(this.random() * Math.min(2000, 25 * 2 ** retries)));
    }
  }

  private remember(read: LedgerItem): void {
    if (this.claimedFrom.size >= MAX_REMEMBERED_CLAIMS) {
      const oldest = this.claimedFrom.keys().next();
      if (!oldest.done) this.claimedFrom.delete(oldest.value);
    }
    this.claimedFrom.set(read.lockId, {
      version: read.version + 1,
      heartbeatAt: read.heartbeatAt,
      leaseSeconds: read.leaseSeconds,
    });
  }

  private forget(lockId: string, version: number): ClaimedFrom | undefined {
    const from = this.claimedFrom.get(lockId);
    if (from?.version !== version) return undefined;
    this.claimedFrom.delete(lockId);
    return from;
  }

  /** Counts one request and the capacity DynamoDB reports for it (a failed conditional write costs 1 WU). */
  private async counted<
    T extends { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[]; conditionFailed?: boolean },
  >(kind: 'read' | 'write', request: Promise<T>): Promise<T> {
    this.requests += 1;
    const answer = await request;
    if (answer.conditionFailed) this.writeUnits += 1;
    else this.count(answer.ConsumedCapacity, kind);
    return answer;
  }

  private count(consumed: ConsumedCapacity | ConsumedCapacity[] | undefined, kind: 'read' | 'write'): void {
    for (const entry of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
      if (kind === 'read') this.readUnits += entry.CapacityUnits ?? 0;
      else this.writeUnits += entry.CapacityUnits ?? 0;
    }
  }
}

/** The ledger item as DynamoDB attribute values; absent optional fields are left out. */
export function toItem(item: LedgerItem): Values {
  const out: Values = {};
  for (const [key, value] of Object.entries(item) as Array<[string, unknown]>) {
    if (typeof value === 'string') out[key] = S(value);
    else if (typeof value === 'number') out[key] = N(value);
  }
  return out;
}

const NUMBER_FIELDS = [
  'forcedAt',
  'acquiredAt',
  'heartbeatAt',
  'leaseSeconds',
  'releasedAt',
  'releaseAttempts',
  'version',
  'expiresAt',
] as const;
const STRING_FIELDS = [
  'lockId',
  'userId',
  'moduleCode',
  'status',
  'holder',
  'lastError',
  'sweepShard',
  'openUserId',
] as const;

/** A stored item as a LedgerItem: the schema's attributes only (a worker may store more). */
export function fromItem(stored: Values): LedgerItem {
  const item: Record<string, string | number> = {};
  for (const field of STRING_FIELDS) {
    const value = stored[field]?.S;
    if (value !== undefined) item[field] = value;
  }
  for (const field of NUMBER_FIELDS) {
    const value = stored[field]?.N;
    if (value !== undefined) item[field] = Number(value);
  }
  return item as unknown as LedgerItem;
}

function lostError(
  lockId: string,
  holder: string | undefined,
  item: LedgerItem | undefined,
  cause: unknown,
): LockLostError {
  const why = !item
    ? 'it is not in the ledger'
    : item.status !== 'HELD'
      ? `its ledger status is ${item.status}`
      : `it is held by ${item.holder ?? 'an anonymous holder'}, not ${holder ?? 'an anonymous holder'}`;
  return new LockLostError(lockId, item?.status, why, { cause });
}

function isRecordable(result: LockResult): boolean {
  if (result.outcome === 'wouldRelease') return false;
  return result.outcome !== 'failed' || result.error?.kind !== 'invalid-input';
}

/** Why a BatchGetItem did not read some keys: its request failed, or DynamoDB left them unprocessed every time. */
function unreadMessage(read: BatchRead): string {
  if (read.error) {
    const { cause } = read.error;
    return cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  }
  return `BatchGetItem left ${read.unread.length} keys unprocessed after ${read.retries} retries`;
}

function retainUntil(nowMs: number): number {
  return Math.floor(nowMs / 1000) + RELEASED_RETENTION_SECONDS;
}

/** The error as stored in lastError: "<kind>: <message>", at most 500 characters. */
export function lastErrorOf(result: LockResult): string {
  const text = `${result.error?.kind ?? 'unknown'}: ${result.error?.message ?? 'no message'}`;
  return text.length > MAX_LAST_ERROR_LENGTH ? `${text.slice(0, MAX_LAST_ERROR_LENGTH - 1)}…` : text;
}
