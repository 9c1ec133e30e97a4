/** Ledger test helpers: item factories, fast seeding of dynalite, and an in-memory SweepLedger. */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { LockResult, OutcomeRecorder } from '../../src/core/model';
import type { LedgerItem, SweepLedger } from '../../src/core/sweep';

/** 2025-01-01T00:00:00Z: the fixed "now" of ledger tests. */
export const NOW = Date.UTC(2025, 0, 1);
export const MINUTE = 60_000;

export function ledgerItem(overrides: Partial<LedgerItem> & { lockId: string }): LedgerItem {
  return {
    userId: 'user-1',
    moduleCode: '100',
    status: 'HELD',
    acquiredAt: NOW - 60 * MINUTE,
    heartbeatAt: NOW - MINUTE,
    releaseAttempts: 0,
    version: 1,
    ...overrides,
  };
}

/**
 * `count` items named `${prefix}-${i}`, built by `make`, their heartbeatAt `i` ms apart. (dynalite tells items
 * with equal index keys apart by a 24-bit hash of the lock ID: thousands of items with the same status and
 * heartbeatAt collide and silently drop out of the byStatus index. DynamoDB itself has no such limit.)
 */
export function manyItems(count: number, prefix: string, make: (lockId: string) => LedgerItem): LedgerItem[] {
  return Array.from({ length: count }, (_, i) => {
    const item = make(`${prefix}-${String(i).padStart(5, '0')}`);
    return { ...item, heartbeatAt: item.heartbeatAt - i };
  });
}

/** Writes items with BatchWriteItem, 25 per request, 8 requests at a time. */
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

/**
 * A SweepLedger in memory with the DynamoDB ledger's semantics: candidates by status and heartbeat, claims
 * conditional on the version, outcomes recorded. Hooks let a test change items between the steps.
 */
export class MemorySweepLedger implements SweepLedger {
  items = new Map<string, LedgerItem>();
  claims: string[] = [];
  recorded: LockResult[] = [];
  /** Runs after findCandidates answered, before any claim (a holder heart-beating, another sweep…). */
  afterFind?: () => void;
  /** When set, claim() rejects with this for that lock. */
  claimError?: (lockId: string) => Error | undefined;

  constructor(
    items: readonly LedgerItem[],
    private readonly now: () => number,
  ) {
    for (const item of items) this.items.set(item.lockId, structuredClone(item));
  }

  findCandidates(query: {
    staleBefore: number;
    limit: number;
  }): Promise<{ items: LedgerItem[]; requests: number }> {
    const all = [...this.items.values()].sort((a, b) => a.heartbeatAt - b.heartbeatAt);
    const found = [
      ...all.filter((i) => i.status === 'HELD' && i.heartbeatAt < query.staleBefore),
      ...all.filter((i) => i.status === 'RELEASING' && i.heartbeatAt < query.staleBefore),
      ...all.filter((i) => i.status === 'RELEASE_FAILED'),
    ]
      .slice(0, query.limit)
      .map((i) => structuredClone(i));
    this.afterFind?.();
    return Promise.resolve({ items: found, requests: 3 });
  }

  claim(item: LedgerItem): Promise<LedgerItem | undefined> {
    const error = this.claimError?.(item.lockId);
    if (error) return Promise.reject(error);
    const current = this.items.get(item.lockId);
    if (!current || current.version !== item.version) return Promise.resolve(undefined);
    const claimed: LedgerItem = {
      ...current,
      status: 'RELEASING',
      heartbeatAt: this.now(),
      version: current.version + 1,
    };
    this.items.set(item.lockId, claimed);
    this.claims.push(item.lockId);
    return Promise.resolve(structuredClone(claimed));
  }

  claimRecorder(claimed: readonly LedgerItem[]): OutcomeRecorder {
    const ids = new Set(claimed.map((c) => c.lockId));
    return {
      record: (result) => {
        if (!ids.has(result.lockId)) return Promise.reject(new Error(`${result.lockId} was not claimed`));
        this.recorded.push(result);
        const current = this.items.get(result.lockId);
        if (current) {
          const released = result.outcome === 'released' || result.outcome === 'alreadyReleased';
          current.status = released ? 'RELEASED' : 'RELEASE_FAILED';
          current.releaseAttempts += result.attempts;
          current.version += 1;
        }
        return Promise.resolve();
      },
    };
  }

  /** A holder heart-beat: the version moves on. */
  heartbeat(lockId: string): void {
    const item = this.items.get(lockId);
    if (item) Object.assign(item, { heartbeatAt: this.now(), version: item.version + 1 });
  }
}
