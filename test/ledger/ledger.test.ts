import { readFileSync } from 'node:fs';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LEDGER_TABLE_FILE, ledgerTableInput, startDynalite, type LocalDynamo } from '../../dev/dynalite';
import type { LockResult } from '../../src/core/model';
import {
  DynamoLedger,
  LedgerConflictError,
  LockExistsError,
  LockLostError,
  LockNotFoundError,
  RELEASED_RETENTION_SECONDS,
  type LedgerItem,
} from '../../src/ledger';
import { ledgerItem, manyItems, MINUTE, NOW, seedItems } from '../helpers/ledger-fakes';

let dynamo: LocalDynamo;
let now: number;
let ledger: DynamoLedger;
let run = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  await dynamo.close();
});
beforeEach(() => {
  now = NOW;
  run += 1;
  ledger = new DynamoLedger({ tableName: dynamo.tableName, client: dynamo.client, now: () => now });
});

/** A lock ID unique to this test, so the tests share one table without seeing each other's items. */
const id = (name: string) => `t${run}-${name}`;
const seed = (items: LedgerItem[]) => seedItems(dynamo.client, dynamo.tableName, items);
const released = (lockId: string, extra: Partial<LockResult> = {}): LockResult => ({
  lockId,
  userId: 'user-1',
  outcome: 'released',
  attempts: 1,
  ...extra,
});
const failed = (lockId: string, attempts = 4, message = 'unavailable'): LockResult => ({
  lockId,
  userId: 'user-1',
  outcome: 'failed',
  attempts,
  error: { kind: 'retryable', httpStatus: 503, message },
});

describe('the local table', () => {
  it('is created from resources/ledger-table.yml: key lockId, index byStatus on status + heartbeatAt', async () => {
    const { Table } = await dynamo.client.send(new DescribeTableCommand({ TableName: dynamo.tableName }));
    expect(Table?.KeySchema).toEqual([{ AttributeName: 'lockId', KeyType: 'HASH' }]);
    expect(Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(Table?.GlobalSecondaryIndexes).toEqual([
      expect.objectContaining({
        IndexName: 'byStatus',
        KeySchema: [
          { AttributeName: 'status', KeyType: 'HASH' },
          { AttributeName: 'heartbeatAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      }),
    ]);
  });

  it('the definition asks for TTL on expiresAt and point-in-time recovery (left out locally only)', () => {
    const text = readFileSync(LEDGER_TABLE_FILE, 'utf8');
    expect(text).toMatch(/TimeToLiveSpecification:\n\s+AttributeName: expiresAt\n\s+Enabled: true/);
    expect(text).toMatch(/PointInTimeRecoverySpecification:\n\s+PointInTimeRecoveryEnabled: true/);
    expect(text).not.toMatch(/^[^#\n]*!\w+/m); // plain YAML: no CloudFormation tags
    expect(Object.keys(ledgerTableInput('x')).sort()).toEqual([
      'AttributeDefinitions',
      'BillingMode',
      'GlobalSecondaryIndexes',
      'KeySchema',
      'TableName',
    ]);
  });
});

describe('holder side', () => {
  it('recordAcquired writes a HELD item at version 1, once', async () => {
    const item = await ledger.recordAcquired({
      lockId: id('a'),
      userId: 'u',
      moduleCode: '101',
      holder: 'w-1',
    });
    expect(await ledger.get(id('a'))).toEqual({
      lockId: id('a'),
      userId: 'u',
      moduleCode: '101',
      holder: 'w-1',
      status: 'HELD',
      acquiredAt: NOW,
      heartbeatAt: NOW,
      releaseAttempts: 0,
      version: 1,
    });
    expect(item.version).toBe(1);
    await expect(
      ledger.recordAcquired({ lockId: id('a'), userId: 'u', moduleCode: '101' }),
    ).rejects.toBeInstanceOf(LockExistsError);
  });

  it('recordHeartbeat moves heartbeatAt and the version while HELD', async () => {
    await ledger.recordAcquired({ lockId: id('a'), userId: 'u', moduleCode: '100', holder: 'w-1' });
    now += MINUTE;
    expect(await ledger.recordHeartbeat(id('a'), 'w-1')).toBe(NOW + MINUTE);
    expect(await ledger.get(id('a'))).toMatchObject({
      status: 'HELD',
      heartbeatAt: NOW + MINUTE,
      version: 2,
    });
  });

  it('recordHeartbeat on a lock no longer HELD, gone, or held by another holder throws LockLostError', async () => {
    await seed([
      ledgerItem({ lockId: id('claimed'), status: 'RELEASING' }),
      ledgerItem({ lockId: id('mine'), holder: 'w-1' }),
    ]);
    const lost = (promise: Promise<unknown>) =>
      promise.then(
        () => undefined,
        (error: unknown) => error as LockLostError,
      );

    const claimed = await lost(ledger.recordHeartbeat(id('claimed')));
    expect(claimed).toBeInstanceOf(LockLostError);
    expect(claimed).toMatchObject({ status: 'RELEASING', lockId: id('claimed') });
    expect(claimed?.message).toMatch(/status is RELEASING.*stop/);

    expect(await lost(ledger.recordHeartbeat(id('nothing')))).toMatchObject({ status: undefined });
    expect((await lost(ledger.recordHeartbeat(id('mine'), 'w-2')))?.message).toMatch(/held by w-1, not w-2/);
    expect(await ledger.get(id('claimed'))).toMatchObject({ version: 1 });
  });

  it('recordReleased marks RELEASED with a 7-day TTL, is idempotent, and refuses an unknown lock', async () => {
    await ledger.recordAcquired({ lockId: id('a'), userId: 'u', moduleCode: '100' });
    now += MINUTE;
    await ledger.recordReleased(id('a'));
    const expected = {
      status: 'RELEASED',
      releasedAt: NOW + MINUTE,
      expiresAt: Math.floor((NOW + MINUTE) / 1000) + RELEASED_RETENTION_SECONDS,
      version: 2,
    };
    expect(await ledger.get(id('a'))).toMatchObject(expected);
    now += MINUTE;
    await ledger.recordReleased(id('a'));
    expect(await ledger.get(id('a'))).toMatchObject(expected);
    await expect(ledger.recordReleased(id('nothing'))).rejects.toBeInstanceOf(LockNotFoundError);
  });
});

describe('record (the release path)', () => {
  it('released: RELEASED, releasedAt, expiresAt = now + 7 days, attempts added, one request', async () => {
    await seed([ledgerItem({ lockId: id('a'), version: 3, releaseAttempts: 2, status: 'RELEASE_FAILED' })]);
    const before = ledger.requests;
    await ledger.record(released(id('a'), { attempts: 2 }));
    expect(ledger.requests - before).toBe(1);
    const item = await ledger.get(id('a'));
    expect(item).toMatchObject({ status: 'RELEASED', releasedAt: NOW, releaseAttempts: 4, version: 4 });
    expect(item?.expiresAt).toBe(NOW / 1000 + 7 * 24 * 3600);
  });

  it('creates the item when absent', async () => {
    await ledger.record({ ...released(id('new')), userId: 'u-9', outcome: 'alreadyReleased' });
    expect(await ledger.get(id('new'))).toEqual({
      lockId: id('new'),
      userId: 'u-9',
      status: 'RELEASED',
      acquiredAt: NOW,
      heartbeatAt: NOW,
      releasedAt: NOW,
      expiresAt: NOW / 1000 + RELEASED_RETENTION_SECONDS,
      releaseAttempts: 1,
      version: 1,
    });
    await ledger.record(failed(id('new-failed'), 3));
    expect(await ledger.get(id('new-failed'))).toMatchObject({
      status: 'RELEASE_FAILED',
      userId: 'user-1',
      heartbeatAt: NOW,
      releaseAttempts: 3,
      lastError: 'retryable: unavailable',
      version: 1,
    });
  });

  it('failed: RELEASE_FAILED with the attempts added and the error, the rest kept', async () => {
    await seed([ledgerItem({ lockId: id('a'), releaseAttempts: 4, version: 5, holder: 'w-1' })]);
    await ledger.record(failed(id('a'), 4, 'x'.repeat(2000)));
    const item = await ledger.get(id('a'));
    expect(item).toMatchObject({ status: 'RELEASE_FAILED', releaseAttempts: 8, version: 6, holder: 'w-1' });
    expect(item?.heartbeatAt).toBe(NOW - MINUTE);
    expect(item?.lastError).toHaveLength(500);
    expect(item?.lastError?.startsWith('retryable: xxx')).toBe(true);
  });

  it('never turns a RELEASED item back into RELEASE_FAILED', async () => {
    await ledger.record(released(id('a')));
    now += MINUTE;
    await ledger.record(failed(id('a')));
    await ledger.record(released(id('a')));
    expect(await ledger.get(id('a'))).toMatchObject({ status: 'RELEASED', releasedAt: NOW, version: 1 });
  });

  it('does not record invalid-input failures or dry runs', async () => {
    await ledger.record({ ...failed(id('a')), error: { kind: 'invalid-input', message: 'bad' } });
    await ledger.record({ ...released(id('b')), outcome: 'wouldRelease', attempts: 0 });
    expect(await ledger.get(id('a'))).toBeUndefined();
    expect(await ledger.get(id('b'))).toBeUndefined();
  });
});

describe('sweep side', () => {
  // Every test here uses its own table: findCandidates sees the whole index.
  let local: LocalDynamo;
  beforeEach(async () => {
    local = await startDynalite();
    ledger = new DynamoLedger({ tableName: local.tableName, client: local.client, now: () => now });
    return () => local.close();
  });
  const seedLocal = (items: LedgerItem[]) => seedItems(local.client, local.tableName, items);
  const staleBefore = NOW - 15 * MINUTE;

  it('finds stale HELD, stale RELEASING and every RELEASE_FAILED item, oldest first, and nothing else', async () => {
    await seedLocal([
      ledgerItem({ lockId: 'held-fresh', heartbeatAt: NOW - 14 * MINUTE }),
      ledgerItem({ lockId: 'held-stale', heartbeatAt: NOW - 16 * MINUTE }),
      ledgerItem({ lockId: 'held-older', heartbeatAt: NOW - 60 * MINUTE }),
      ledgerItem({ lockId: 'releasing-live', status: 'RELEASING', heartbeatAt: NOW - MINUTE }),
      ledgerItem({ lockId: 'releasing-dead', status: 'RELEASING', heartbeatAt: NOW - 20 * MINUTE }),
      ledgerItem({ lockId: 'failed-now', status: 'RELEASE_FAILED', heartbeatAt: NOW }),
      ledgerItem({ lockId: 'released', status: 'RELEASED', heartbeatAt: NOW - 99 * MINUTE }),
    ]);
    const { items, requests } = await ledger.findCandidates({ staleBefore, limit: 100 });
    expect(items.map((i) => i.lockId)).toEqual(['held-older', 'held-stale', 'releasing-dead', 'failed-now']);
    expect(requests).toBe(3);
    expect(items[0]).toEqual(ledgerItem({ lockId: 'held-older', heartbeatAt: NOW - 60 * MINUTE }));
  });

  it('pages through more than one page and stops at the limit', async () => {
    await seedLocal([
      ...manyItems(2600, 'stale', (lockId) => ledgerItem({ lockId, heartbeatAt: NOW - 20 * MINUTE })),
      ...manyItems(50, 'failed', (lockId) => ledgerItem({ lockId, status: 'RELEASE_FAILED' })),
      ...manyItems(300, 'fresh', (lockId) => ledgerItem({ lockId })),
    ]);
    const all = await ledger.findCandidates({ staleBefore, limit: 10_000 });
    expect(all.items).toHaveLength(2650);
    expect(new Set(all.items.map((i) => i.lockId)).size).toBe(2650);
    expect(all.requests).toBe(3 + 1 + 1); // HELD: 1000 + 1000 + 600; RELEASING: empty; RELEASE_FAILED: 50

    const capped = await ledger.findCandidates({ staleBefore, limit: 2000 });
    expect(capped.items).toHaveLength(2000);
    expect(capped.requests).toBe(2);

    const small = new DynamoLedger({ tableName: local.tableName, client: local.client, pageSize: 100 });
    expect((await small.findCandidates({ staleBefore, limit: 250 })).requests).toBe(3);
  });

  it('claim: RELEASING at claim time, conditional on the version read', async () => {
    await seedLocal([ledgerItem({ lockId: 'a', heartbeatAt: NOW - 20 * MINUTE, version: 7 })]);
    const [candidate] = (await ledger.findCandidates({ staleBefore, limit: 10 })).items;
    now += 1000;
    const claimed = await ledger.claim(candidate!);
    expect(claimed).toMatchObject({ status: 'RELEASING', heartbeatAt: NOW + 1000, version: 8 });
    expect(await ledger.get('a')).toEqual(claimed);
    // A second claim from the same (now stale) read loses.
    expect(await ledger.claim(candidate!)).toBeUndefined();
  });

  it('the race: a heartbeat between the query and the claim keeps the lock', async () => {
    await ledger.recordAcquired({ lockId: 'a', userId: 'u', moduleCode: '100' });
    now += 20 * MINUTE;
    const [candidate] = (await ledger.findCandidates({ staleBefore: now - 15 * MINUTE, limit: 10 })).items;
    expect(candidate?.lockId).toBe('a');
    await ledger.recordHeartbeat('a');
    expect(await ledger.claim(candidate!)).toBeUndefined();
    expect(await ledger.get('a')).toMatchObject({ status: 'HELD', heartbeatAt: now, version: 2 });
  });

  it('the claim recorder writes failures only while the claim is current, releases always', async () => {
    await seedLocal([
      ledgerItem({ lockId: 'a', heartbeatAt: NOW - 20 * MINUTE }),
      ledgerItem({ lockId: 'b', heartbeatAt: NOW - 20 * MINUTE }),
      ledgerItem({ lockId: 'c', heartbeatAt: NOW - 20 * MINUTE }),
    ]);
    const { items } = await ledger.findCandidates({ staleBefore, limit: 10 });
    const claimed = await Promise.all(items.map((i) => ledger.claim(i)));
    const recorder = ledger.claimRecorder(claimed.map((c) => c!));

    await recorder.record(failed('a', 2));
    expect(await ledger.get('a')).toMatchObject({ status: 'RELEASE_FAILED', releaseAttempts: 2, version: 3 });

    // Someone else wrote b and c after the claim (the release path, say).
    await ledger.record(failed('b', 1));
    await ledger.record(failed('c', 1));
    await expect(recorder.record(failed('b', 2))).rejects.toBeInstanceOf(LedgerConflictError);
    await recorder.record(released('c'));
    expect(await ledger.get('b')).toMatchObject({ status: 'RELEASE_FAILED', releaseAttempts: 1 });
    expect(await ledger.get('c')).toMatchObject({ status: 'RELEASED', releaseAttempts: 2 });
  });
});
