/**
 * Ledger test helpers: item factories, fast seeding of dynalite, the in-memory ledger (src/testing/memory-ledger.ts, which
 * passes DynamoLedger's contract tests) and a wrapper that lets a test act between the sweep's steps.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { MemoryLedger, shardOf } from '../../src/testing/memory-ledger';
import type { LedgerItem, LedgerStatus, SweepLedger } from '../../src/core/lease';
import type { LockResult, OutcomeRecorder } from '../../src/core/model';

export { MemoryLedger } from '../../src/testing/memory-ledger';

/** 2025-01-01T00:00:00Z: the fixed "now" of ledger tests. */
export const NOW = Date.UTC(2025, 0, 1);
export const SECOND = 1000;
export const MINUTE = 60_000;

const OPEN: readonly LedgerStatus[] = ['HELD', 'RELEASING', 'RELEASE_FAILED'];

/**
 * A ledger item as a holder would have written it: HELD with a 120 s lease, heart-beat a minute ago, and (while
 * open) a sweepShard. An override set to undefined removes that attribute.
 */
export function ledgerItem(overrides: Partial<LedgerItem> & { lockId: string }): LedgerItem {
  const status = overrides.status ?? 'HELD';
  const item: Record<string, unknown> = {
    userId: 'user-1',
    moduleCode: '100',
    status,
    acquiredAt: NOW - 60 * MINUTE,
    heartbeatAt: NOW - MINUTE,
    leaseSeconds: 120,
    releaseAttempts: 0,
    version: 1,
    ...(OPEN.includes(status) ? { sweepShard: shardOf(overrides.lockId) } : {}),
    ...overrides,
  };
  for (const key of Object.keys(item)) if (item[key] === undefined) delete item[key];
  return item as unknown as LedgerItem;
}

/** `count` items named `${prefix}-${i}` (i zero-padded), built by `make`. */
export function manyItems(count: number, prefix: string, make: (lockId: string) => LedgerItem): LedgerItem[] {
  return Array.from({ length: count }, (_, i) => make(`${prefix}-${String(i).padStart(5, '0')}`));
}

/** Writes items as they are with BatchWriteItem, 25 per request, 8 requests at a time. */
export async function seedItems(
  client: DynamoDBClient,
  tableName: string,
  items: readonly LedgerItem[],
): Promise<void> {
  const doc = DynamoDBDocumentClient.from(client);
  const batches: LedgerItem[][] = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  const writeBatch = async (batch: LedgerItem[]): Promise<void> => {
    let requests = batch.map((Item) => ({ PutRequest: { Item } }));
    while (requests.length > 0) {
      const out = await doc.send(new BatchWriteCommand({ RequestItems: { [tableName]: requests } }));
      requests = (out.UnprocessedItems?.[tableName] ?? []) as typeof requests;
    }
  };
  for (let i = 0; i < batches.length; i += 8) await Promise.all(batches.slice(i, i + 8).map(writeBatch));
}

/** The stored item through the SDK's document client: a read independent of DynamoLedger's own codec. */
export async function rawItem(
  client: DynamoDBClient,
  tableName: string,
  lockId: string,
): Promise<LedgerItem | undefined> {
  const doc = DynamoDBDocumentClient.from(client);
  const { Item } = await doc.send(
    new GetCommand({ TableName: tableName, Key: { lockId }, ConsistentRead: true }),
  );
  return Item as LedgerItem | undefined;
}

/** A MemoryLedger holding `items`, on the clock `now`. */
export function memoryLedger(items: readonly LedgerItem[], now: () => number): MemoryLedger {
  const ledger = new MemoryLedger({ now });
  for (const item of items) ledger.put(item);
  return ledger;
}

/**
 * A SweepLedger that forwards to `inner` and records what the sweep did, with hooks to act between its steps
 * (a holder heart-beating after the read, a claim that throws…).
 */
export class ScriptedSweepLedger implements SweepLedger {
  claims: string[] = [];
  closes: string[] = [];
  recorded: LockResult[] = [];
  pagesRead = 0;
  /** Runs after each page was read, before the sweep sees it. */
  afterPage?: (page: LedgerItem[]) => Promise<void> | void;
  /** Runs once the whole open set was read, before the sweep acts on it (a holder heart-beating meanwhile…). */
  afterRead?: () => Promise<void> | void;
  /** Runs before each claim; when it returns an error, claim() rejects with it. */
  beforeClaim?: (item: LedgerItem) => Promise<Error | undefined> | Error | undefined;
  /** Runs before each close; when it returns an error, closeExpired() rejects with it. */
  beforeClose?: (item: LedgerItem) => Promise<Error | undefined> | Error | undefined;

  constructor(readonly inner: SweepLedger) {}

  async *openItems(): AsyncIterable<LedgerItem[]> {
    for await (const page of this.inner.openItems()) {
      this.pagesRead += 1;
      await this.afterPage?.(page);
      yield page;
    }
    await this.afterRead?.();
  }

  async claim(item: LedgerItem, leaseSeconds: number): Promise<LedgerItem | undefined> {
    const error = await this.beforeClaim?.(item);
    if (error) throw error;
    const claimed = await this.inner.claim(item, leaseSeconds);
    if (claimed) this.claims.push(item.lockId);
    return claimed;
  }

  claimRecorder(claimed: readonly LedgerItem[]): OutcomeRecorder {
    const recorder = this.inner.claimRecorder(claimed);
    return {
      record: async (result) => {
        this.recorded.push(result);
        await recorder.record(result);
      },
    };
  }

  async closeExpired(item: LedgerItem): Promise<boolean> {
    const error = await this.beforeClose?.(item);
    if (error) throw error;
    const closed = await this.inner.closeExpired(item);
    if (closed) this.closes.push(item.lockId);
    return closed;
  }
}
