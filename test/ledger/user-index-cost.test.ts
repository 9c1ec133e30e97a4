/**
 * What the user index (openByUser, for find-by-user) costs: DynamoLedger's real requests against dynalite,
 * priced by the benchmark's capacity model (dev/bench/capacity.ts), which applies DynamoDB's published rules for
 * index writes (an index is written only where a write changes a key or a projected attribute) from the item's
 * images before and after each write. dynalite itself reports no index capacity, so these figures are the
 * model's reading of DynamoDB's rules, not dynalite's counters.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { since, startMeteredDynamo, tableShape, type MeteredDynamo } from '../../dev/bench/capacity';
import { ledgerTableInput, startDynalite, type LocalDynamo } from '../../dev/dynalite';
import { DynamoLedger } from '../../src/ledger/ledger';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

let db: LocalDynamo;
let proxy: MeteredDynamo;
let client: DynamoDBClient;
let ledger: DynamoLedger;
let now = Date.UTC(2026, 0, 1);

beforeAll(async () => {
  db = await startDynalite();
  proxy = await startMeteredDynamo(db.endpoint, {
    [db.tableName]: tableShape(ledgerTableInput(db.tableName)),
  });
  client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint: proxy.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  ledger = new DynamoLedger({ tableName: db.tableName, calls: httpDynamoCallsFor(client), now: () => now });
});

afterAll(async () => {
  client?.destroy();
  await proxy?.close();
  await db?.close();
});

/** Write units by scope ("table", "openLocks", "openByUser") for what `act` sent. */
async function charged(act: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = proxy.meter.snapshot();
  await act();
  const spent = since(before, proxy.meter.snapshot());
  return Object.fromEntries(Object.entries(spent.byScope).map(([scope, s]) => [scope, s.wu]));
}

const acquire = (lockId: string) =>
  ledger.recordAcquired({ lockId, userId: 'user-9', moduleCode: '101', holder: 'w-1', leaseSeconds: 120 });

describe('the user index openByUser', () => {
  it('a holder lifecycle costs +2 write units for it (a put at acquire, a delete at release); a heartbeat stays 1 WU', async () => {
    expect(await charged(() => acquire('life-1'))).toEqual({ table: 1, openLocks: 1, openByUser: 1 });
    for (let i = 0; i < 3; i += 1) {
      now += 40_000;
      expect(await charged(() => ledger.recordHeartbeat('life-1', 'w-1', 120))).toEqual({ table: 1 });
    }
    now += 1000;
    expect(await charged(() => ledger.recordReleased('life-1'))).toEqual({
      table: 1,
      openLocks: 1,
      openByUser: 1,
    });
  });

  it('a sweep lifecycle (claim, failure, release by the release path) also costs it 2 write units in all', async () => {
    const spent = await charged(async () => {
      const item = await acquire('life-2');
      now += 300_000;
      const claim = await ledger.claim(item, 60);
      await ledger.claimRecorder([claim!]).record({
        lockId: 'life-2',
        userId: 'user-9',
        outcome: 'failed',
        attempts: 1,
        error: { kind: 'retryable', message: 'busy' },
      });
      await ledger.record({ lockId: 'life-2', userId: 'user-9', outcome: 'released', attempts: 1 });
    });
    // acquire, claim, failure, release: 4 table writes; each index a put and a delete.
    expect(spent).toEqual({ table: 4, openLocks: 2, openByUser: 2 });
  });

  it('find-by-user reads only the user index and that user’s items, however many other items are open', async () => {
    for (let i = 0; i < 40; i += 1) {
      await ledger.recordAcquired({
        lockId: `other-${i}`,
        userId: `other-${i % 7}`,
        moduleCode: '101',
        leaseSeconds: 120,
      });
    }
    await acquire('mine-1');
    const before = proxy.meter.snapshot();
    const found = await ledger.openItemsOf('user-9', '101');
    const spent = since(before, proxy.meter.snapshot());
    expect(found.map((i) => i.lockId)).toEqual(['mine-1']);
    expect(spent.requests).toEqual({ Query: 1, BatchGetItem: 1 });
    expect(Object.keys(spent.byScope).sort()).toEqual(['openByUser', 'table']);
    expect(spent.wu).toBe(0);
    // One index entry (0.5 RU, eventually consistent, rounded up) and one item read.
    expect(spent.byScope.openByUser?.ru).toBe(0.5);
    expect(spent.byScope.table?.ru).toBe(0.5);
  });
});
