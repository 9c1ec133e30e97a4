/**
 * The byStatus baseline of the ledger-scale scenario: the lock ledger as it was before the sparse `openLocks` index (commit
 * 862d8a4, src/ledger/ledger.ts), kept verbatim apart from its imports and this comment, with its table
 * (baseline-ledger-table.yml, read by baseline-table.ts: resources/ledger-table.yml at that commit, the
 * `byStatus` index, HASH status, RANGE heartbeatAt, projection ALL). The benchmark runs it beside the current ledger in the same run, so each
 * goal's figure has today's design measured the same way next to it.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  LedgerConflictError,
  LockExistsError,
  LockLostError,
  LockNotFoundError,
} from '../../src/core/errors';
import type { LockResult, OutcomeRecorder } from '../../src/core/model';

export type LedgerStatus = 'HELD' | 'RELEASING' | 'RELEASED' | 'RELEASE_FAILED';

/** The item as the baseline wrote it (no lease, no sweepShard). */
export interface LedgerItem {
  lockId: string;
  userId: string;
  moduleCode?: string;
  status: LedgerStatus;
  holder?: string;
  acquiredAt: number;
  heartbeatAt: number;
  releasedAt?: number;
  releaseAttempts: number;
  lastError?: string;
  version: number;
  expiresAt?: number;
}

/** The baseline's sweep port. */
export interface SweepLedger {
  findCandidates(query: {
    staleBefore: number;
    limit: number;
  }): Promise<{ items: LedgerItem[]; requests: number }>;
  claim(item: LedgerItem): Promise<LedgerItem | undefined>;
  claimRecorder(claimed: readonly LedgerItem[]): OutcomeRecorder;
}

export const BY_STATUS_INDEX = 'byStatus';
/** How long a RELEASED item stays before DynamoDB's TTL removes it. */
export const RELEASED_RETENTION_SECONDS = 7 * 24 * 3600;
export const MAX_LAST_ERROR_LENGTH = 500;
export const DEFAULT_PAGE_SIZE = 1000;

export interface DynamoLedgerOptions {
  tableName: string;
  /** Default: `new DynamoDBClient({})`, configured by the environment (region, AWS_ENDPOINT_URL_DYNAMODB). */
  client?: DynamoDBClient;
  /** Epoch ms; default Date.now. */
  now?: () => number;
  /** Items per Query page (DynamoDB also ends a page at 1 MB). Default 1000. */
  pageSize?: number;
}

export interface AcquiredLock {
  lockId: string;
  userId: string;
  moduleCode: string;
  holder?: string;
}

/** One lock's live-lease reading (src/core/lease.ts, LedgerReading, over this ledger's own item type). */
type Reading = { ok: true; item: LedgerItem | undefined } | { ok: false; message: string };

export class BaselineLedger implements SweepLedger, OutcomeRecorder {
  readonly tableName: string;
  /** DynamoDB requests this ledger has sent (SDK retries not counted). */
  requests = 0;
  private readonly doc: DynamoDBDocumentClient;
  private readonly now: () => number;
  private readonly pageSize: number;

  constructor(options: DynamoLedgerOptions) {
    if (!options.tableName) throw new Error('tableName is required');
    this.tableName = options.tableName;
    this.doc = DynamoDBDocumentClient.from(options.client ?? new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.now = options.now ?? Date.now;
    this.pageSize = Math.max(1, options.pageSize ?? DEFAULT_PAGE_SIZE);
  }

  /** The item, read consistently; undefined when absent. */
  async get(lockId: string): Promise<LedgerItem | undefined> {
    const { Item } = await this.counted(
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: { lockId }, ConsistentRead: true })),
    );
    return Item as LedgerItem | undefined;
  }

  /**
   * The release path's live-lease read (src/core/lease.ts, ReleaseLedger.readItems), added when that port became a
   * batched read: here one consistent GetItem per lock, as the release path read before.
   */
  async readItems(lockIds: readonly string[]): Promise<Map<string, Reading>> {
    const readings = new Map<string, Reading>();
    await Promise.all(
      lockIds.map(async (lockId) => {
        try {
          readings.set(lockId, { ok: true, item: await this.get(lockId) });
        } catch (error) {
          readings.set(lockId, { ok: false, message: String(error) });
        }
      }),
    );
    return readings;
  }

  // ---- holder side ----

  /** A new HELD item; LockExistsError when the lock ID is already there. */
  async recordAcquired(lock: AcquiredLock): Promise<LedgerItem> {
    const now = this.now();
    const item: LedgerItem = {
      lockId: lock.lockId,
      userId: lock.userId,
      moduleCode: lock.moduleCode,
      status: 'HELD',
      ...(lock.holder !== undefined ? { holder: lock.holder } : {}),
      acquiredAt: now,
      heartbeatAt: now,
      releaseAttempts: 0,
      version: 1,
    };
    try {
      await this.counted(
        this.doc.send(
          new PutCommand({
            TableName: this.tableName,
            Item: item,
            ConditionExpression: 'attribute_not_exists(lockId)',
          }),
        ),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error)) throw new LockExistsError(lock.lockId, { cause: error });
      throw error;
    }
    return item;
  }

  /**
   * Moves heartbeatAt to now while the item is HELD (and, when `holder` is given, names no other holder).
   * Otherwise throws LockLostError: the holder must stop. Resolves with the new heartbeatAt.
   */
  async recordHeartbeat(lockId: string, holder?: string): Promise<number> {
    const now = this.now();
    try {
      await this.counted(
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { lockId },
            UpdateExpression: 'SET heartbeatAt = :now, #version = #version + :one',
            ConditionExpression:
              holder === undefined
                ? '#status = :held'
                : '#status = :held AND (attribute_not_exists(#holder) OR #holder = :holder)',
            ExpressionAttributeNames: {
              '#status': 'status',
              '#version': 'version',
              ...(holder === undefined ? {} : { '#holder': 'holder' }),
            },
            ExpressionAttributeValues: {
              ':now': now,
              ':one': 1,
              ':held': 'HELD',
              ...(holder === undefined ? {} : { ':holder': holder }),
            },
          }),
        ),
      );
      return now;
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      const item = await this.get(lockId);
      const why = !item
        ? 'it is not in the ledger'
        : item.status !== 'HELD'
          ? `its ledger status is ${item.status}`
          : `it is held by ${item.holder ?? 'another holder'}, not ${holder ?? 'this holder'}`;
      throw new LockLostError(lockId, item?.status, why, { cause: error });
    }
  }

  /** Marks the holder's own item RELEASED; a no-op when it already is, LockNotFoundError when it is absent. */
  async recordReleased(lockId: string): Promise<void> {
    const now = this.now();
    try {
      await this.counted(
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { lockId },
            UpdateExpression:
              'SET #status = :released, releasedAt = :now, expiresAt = :expiresAt, #version = #version + :one',
            ConditionExpression: 'attribute_exists(lockId) AND #status <> :released',
            ExpressionAttributeNames: { '#status': 'status', '#version': 'version' },
            ExpressionAttributeValues: {
              ':released': 'RELEASED',
              ':now': now,
              ':expiresAt': expiresAt(now),
              ':one': 1,
            },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      if ((await this.get(lockId)) === undefined) throw new LockNotFoundError(lockId, { cause: error });
    }
  }

  // ---- release path (the engine's OutcomeRecorder) ----

  /**
   * One UpdateItem per outcome, creating the item when absent: released / alreadyReleased → RELEASED (kept
   * 7 days), failed → RELEASE_FAILED with the attempts added and the error. A RELEASED item is final: a
   * later outcome leaves it as it is. Dry runs and invalid-input failures are not recorded.
   */
  async record(result: LockResult): Promise<void> {
    if (!isRecordable(result)) return;
    try {
      await this.writeOutcome(result, undefined);
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error; // else: already RELEASED, which stays
    }
  }

  // ---- sweep side ----

  /**
   * Queries byStatus: HELD, then RELEASING, with heartbeatAt < staleBefore, then every RELEASE_FAILED; oldest
   * heartbeat first, paginated, at most `limit` items. `requests` is the number of Query requests it made.
   */
  async findCandidates(query: {
    staleBefore: number;
    limit: number;
  }): Promise<{ items: LedgerItem[]; requests: number }> {
    const items: LedgerItem[] = [];
    let requests = 0;
    const statuses: Array<[LedgerStatus, number | undefined]> = [
      ['HELD', query.staleBefore],
      ['RELEASING', query.staleBefore],
      ['RELEASE_FAILED', undefined],
    ];
    for (const [status, before] of statuses) {
      let startKey: Record<string, unknown> | undefined;
      do {
        if (items.length >= query.limit) return { items, requests };
        requests += 1;
        const page = await this.counted(
          this.doc.send(
            new QueryCommand({
              TableName: this.tableName,
              IndexName: BY_STATUS_INDEX,
              KeyConditionExpression:
                before === undefined ? '#status = :status' : '#status = :status AND heartbeatAt < :before',
              ExpressionAttributeNames: { '#status': 'status' },
              ExpressionAttributeValues: {
                ':status': status,
                ...(before === undefined ? {} : { ':before': before }),
              },
              Limit: Math.min(this.pageSize, query.limit - items.length),
              ExclusiveStartKey: startKey,
            }),
          ),
        );
        items.push(...((page.Items ?? []) as LedgerItem[]));
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }
    return { items, requests };
  }

  /**
   * RELEASING with heartbeatAt = now, if the version is still the one read; undefined when the race was
   * lost (the holder heart-beat, another sweep claimed it, an outcome was recorded).
   */
  async claim(item: LedgerItem): Promise<LedgerItem | undefined> {
    const now = this.now();
    try {
      await this.counted(
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { lockId: item.lockId },
            UpdateExpression: 'SET #status = :releasing, heartbeatAt = :now, #version = :next',
            ConditionExpression: '#version = :read',
            ExpressionAttributeNames: { '#status': 'status', '#version': 'version' },
            ExpressionAttributeValues: {
              ':releasing': 'RELEASING',
              ':now': now,
              ':next': item.version + 1,
              ':read': item.version,
            },
          }),
        ),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
    return { ...item, status: 'RELEASING', heartbeatAt: now, version: item.version + 1 };
  }

  /**
   * Records the outcomes of claimed locks. A failure is written only while the item still carries the
   * claim's version (else LedgerConflictError: someone else wrote it since). A release is written as
   * record() writes it, whoever wrote since: KooDrive's answer is the truth, and RELEASED stays final.
   */
  claimRecorder(claimed: readonly LedgerItem[]): OutcomeRecorder {
    const versions = new Map(claimed.map((item) => [item.lockId, item.version]));
    return {
      record: async (result) => {
        if (result.outcome !== 'failed') return this.record(result);
        if (!isRecordable(result)) return;
        const version = versions.get(result.lockId);
        if (version === undefined) throw new Error(`lock ${result.lockId} was not claimed by this sweep`);
        try {
          await this.writeOutcome(result, version);
        } catch (error) {
          if (!isConditionalCheckFailed(error)) throw error;
          throw new LedgerConflictError(
            result.lockId,
            `lock ${result.lockId} changed since this sweep claimed it; its failure was not recorded`,
            { cause: error },
          );
        }
      },
    };
  }

  /** The outcome as one UpdateItem: creates the item when absent, unless `claimVersion` demands that version. */
  private async writeOutcome(result: LockResult, claimVersion: number | undefined): Promise<void> {
    const now = this.now();
    const released = result.outcome === 'released' || result.outcome === 'alreadyReleased';
    const set = [
      '#status = :status',
      'userId = if_not_exists(userId, :userId)',
      'acquiredAt = if_not_exists(acquiredAt, :now)',
      'heartbeatAt = if_not_exists(heartbeatAt, :now)',
      'releaseAttempts = if_not_exists(releaseAttempts, :zero) + :attempts',
      '#version = if_not_exists(#version, :zero) + :one',
    ];
    const values: Record<string, unknown> = {
      ':status': released ? 'RELEASED' : 'RELEASE_FAILED',
      ':userId': result.userId,
      ':now': now,
      ':zero': 0,
      ':one': 1,
      ':attempts': result.attempts,
    };
    if (released) {
      set.push('releasedAt = :now', 'expiresAt = :expiresAt');
      values[':expiresAt'] = expiresAt(now);
    } else {
      set.push('lastError = :lastError');
      values[':lastError'] = lastError(result);
    }
    let condition: string;
    if (claimVersion === undefined) {
      condition = 'attribute_not_exists(lockId) OR #status <> :released';
      values[':released'] = 'RELEASED';
    } else {
      condition = '#version = :claimVersion';
      values[':claimVersion'] = claimVersion;
    }
    await this.counted(
      this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { lockId: result.lockId },
          UpdateExpression: `SET ${set.join(', ')}`,
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#status': 'status', '#version': 'version' },
          ExpressionAttributeValues: values,
        }),
      ),
    );
  }

  private counted<T>(request: Promise<T>): Promise<T> {
    this.requests += 1;
    return request;
  }
}

function isRecordable(result: LockResult): boolean {
  if (result.outcome === 'wouldRelease') return false;
  return result.outcome !== 'failed' || result.error?.kind !== 'invalid-input';
}

function expiresAt(nowMs: number): number {
  return Math.floor(nowMs / 1000) + RELEASED_RETENTION_SECONDS;
}

function lastError(result: LockResult): string {
  const text = `${result.error?.kind ?? 'unknown'}: ${result.error?.message ?? 'no message'}`;
  return text.length > MAX_LAST_ERROR_LENGTH ? `${text.slice(0, MAX_LAST_ERROR_LENGTH - 1)}…` : text;
}

function isConditionalCheckFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
