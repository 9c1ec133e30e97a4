/**
 * What only DynamoLedger has (the shared behaviour is in ledger.contract.test.ts): the table definition, the
 * requests each operation costs, capacity accounting, the index read's paging and retries, the item codec.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  LEDGER_TABLE_FILE,
  ledgerTableInput,
  startDynalite,
  waitUntilActive,
  type LocalDynamo,
} from '../../dev/dynalite';
import { listenOnLoopback } from '../../src/testing/loopback';
import { DEFAULT_ENGINE_OPTIONS, releaseLocks } from '../../src/core/engine';
import type { LockResult } from '../../src/core/model';
import type { DynamoCalls } from '../../src/ledger/dynamo-calls';
import {
  DynamoLedger,
  fromItem,
  OPEN_BY_USER_INDEX,
  OPEN_LOCKS_INDEX,
  toItem,
  type LedgerItem,
} from '../../src/ledger/ledger';
import { FakeClock, FakeGateway } from '../helpers/fakes';
import { ledgerItem, manyItems, MINUTE, NOW, rawItem, seedItems } from '../helpers/ledger-fakes';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

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
  ledger = new DynamoLedger({
    tableName: dynamo.tableName,
    calls: httpDynamoCallsFor(dynamo.client),
    now: () => now,
  });
});

/** A lock ID unique to this test, so the tests share one table without seeing each other's items. */
const id = (name: string) => `t${run}-${name}`;
const failed = (lockId: string): LockResult => ({
  lockId,
  userId: 'user-1',
  outcome: 'failed',
  attempts: 1,
  error: { kind: 'retryable', message: 'x' },
});

describe('the local table', () => {
  it('is created from resources/ledger-table.yml: key lockId, the sparse indexes openLocks and openByUser', async () => {
    const { Table } = await dynamo.client.send(new DescribeTableCommand({ TableName: dynamo.tableName }));
    expect(Table?.KeySchema).toEqual([{ AttributeName: 'lockId', KeyType: 'HASH' }]);
    expect(Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(Table?.AttributeDefinitions).toEqual([
      { AttributeName: 'lockId', AttributeType: 'S' },
      { AttributeName: 'sweepShard', AttributeType: 'S' },
      { AttributeName: 'openUserId', AttributeType: 'S' },
    ]);
    expect(Table?.GlobalSecondaryIndexes).toEqual([
      expect.objectContaining({
        IndexName: 'openLocks',
        KeySchema: [
          { AttributeName: 'sweepShard', KeyType: 'HASH' },
          { AttributeName: 'lockId', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      }),
      expect.objectContaining({
        IndexName: 'openByUser',
        KeySchema: [
          { AttributeName: 'openUserId', KeyType: 'HASH' },
          { AttributeName: 'lockId', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['moduleCode'] },
      }),
    ]);
    expect(OPEN_LOCKS_INDEX).toBe('openLocks');
    expect(OPEN_BY_USER_INDEX).toBe('openByUser');
  });

  it('is ACTIVE, with its index, when startDynalite returns', async () => {
    const local = await startDynalite();
    try {
      const { Table } = await local.client.send(new DescribeTableCommand({ TableName: local.tableName }));
      expect(Table?.TableStatus).toBe('ACTIVE');
      expect(Table?.GlobalSecondaryIndexes?.map((i) => i.IndexStatus)).toEqual(['ACTIVE', 'ACTIVE']);
    } finally {
      await local.close();
    }
  });

  it('waitUntilActive waits for a table that takes its time to be created', async () => {
    const require = createRequire(import.meta.url);
    const dynalite = require('dynalite') as (options: { createTableMs: number }) => Server;
    const server = dynalite({ createTableMs: 300 });
    const endpoint = await listenOnLoopback(server);
    const client = new DynamoDBClient({
      region: 'us-east-1',
      endpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      await client.send(new CreateTableCommand(ledgerTableInput('slow')));
      const describe = () => client.send(new DescribeTableCommand({ TableName: 'slow' }));
      expect((await describe()).Table?.TableStatus).toBe('CREATING');
      const startedAt = Date.now();
      await waitUntilActive(client, 'slow');
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(200);
      expect((await describe()).Table?.TableStatus).toBe('ACTIVE');
      await expect(waitUntilActive(client, 'slow', 0)).resolves.toBeUndefined();
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('the definition asks for TTL on expiresAt and point-in-time recovery (left out locally only), and has no byStatus', () => {
    const text = readFileSync(LEDGER_TABLE_FILE, 'utf8');
    expect(text).toMatch(/TimeToLiveSpecification:\n\s+AttributeName: expiresAt\n\s+Enabled: true/);
    expect(text).toMatch(/PointInTimeRecoverySpecification:\n\s+PointInTimeRecoveryEnabled: true/);
    expect(text).toMatch(/BillingMode: PAY_PER_REQUEST/);
    expect(text).not.toMatch(/byStatus/);
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

describe('requests and capacity', () => {
  it('each holder, outcome, claim and close write is one request of one write unit', async () => {
    const count = async (write: () => Promise<unknown>) => {
      const [requests, units] = [ledger.requests, ledger.writeUnits];
      await write();
      return [ledger.requests - requests, ledger.writeUnits - units];
    };
    expect(
      await count(() =>
        ledger.recordAcquired({ lockId: id('a'), userId: 'u', moduleCode: '1', leaseSeconds: 60 }),
      ),
    ).toEqual([1, 1]);
    now += MINUTE;
    expect(await count(() => ledger.recordHeartbeat(id('a'), undefined, 60))).toEqual([1, 1]);
    const read = (await ledger.get(id('a')))!;
    const claimed = await ledger.claim(read, 120);
    expect(claimed).toBeDefined();
    expect(await count(() => ledger.claim(read, 120))).toEqual([1, 1]); // lost: still charged
    expect(await count(() => ledger.claimRecorder([claimed!]).record(failed(id('a'))))).toEqual([1, 1]);
    expect(await count(() => ledger.record(failed(id('b'))))).toEqual([1, 1]);
    expect(await count(() => ledger.recordReleased(id('a')))).toEqual([1, 1]);
    const c = ledgerItem({ lockId: id('c'), status: 'RELEASE_FAILED' });
    await seedItems(dynamo.client, dynamo.tableName, [c]);
    expect(await count(() => ledger.closeExpired(c))).toEqual([1, 1]);
  });

  it('the live-lease check reads the locks of a request in one consistent BatchGetItem: 1 RRU per lock on top of the outcome write, and a held lock costs only the read', async () => {
    const policy = { staleAfterSeconds: 900, clockSkewSeconds: 10 };
    await seedItems(dynamo.client, dynamo.tableName, [
      ledgerItem({ lockId: id('live'), heartbeatAt: NOW - MINUTE }),
      ledgerItem({ lockId: id('dead'), heartbeatAt: NOW - 3 * MINUTE }),
    ]);
    const gateway = new FakeGateway();
    const [requests, reads, writes] = [ledger.requests, ledger.readUnits, ledger.writeUnits];
    const results = await releaseLocks(
      [id('live'), id('dead'), id('absent')].map((lockId) => ({ lockId, userId: 'user-1' })),
      {
        gateway,
        clock: new FakeClock(NOW),
        random: () => 0.5,
        remainingMs: () => 60_000,
        recorder: ledger,
        liveLeases: { ledger, policy, force: false },
      },
      DEFAULT_ENGINE_OPTIONS,
    );
    expect(results.map((r) => r.outcome)).toEqual(['held', 'released', 'released']);
    // One read request of three read units (one per lock, the absent one too), two outcome writes (none for the
    // held lock).
    expect([ledger.requests - requests, ledger.readUnits - reads, ledger.writeUnits - writes]).toEqual([
      3, 3, 2,
    ]);
  });

  it('a lost heartbeat costs the failed write and one consistent read (dynalite returns no item with the failure)', async () => {
    await seedItems(dynamo.client, dynamo.tableName, [ledgerItem({ lockId: id('a'), status: 'RELEASING' })]);
    const [requests, reads] = [ledger.requests, ledger.readUnits];
    await expect(ledger.recordHeartbeat(id('a'), undefined, 60)).rejects.toThrow(/status is RELEASING/);
    expect(ledger.requests - requests).toBe(2);
    expect(ledger.readUnits - reads).toBe(1);
  });

  it('a new item gets the shard its random source picks', async () => {
    const pick = (random: number) =>
      new DynamoLedger({
        tableName: dynamo.tableName,
        calls: httpDynamoCallsFor(dynamo.client),
        now: () => now,
        random: () => random,
      });
    await pick(0).recordAcquired({ lockId: id('low'), userId: 'u', moduleCode: '1', leaseSeconds: 60 });
    await pick(0.999).recordAcquired({ lockId: id('high'), userId: 'u', moduleCode: '1', leaseSeconds: 60 });
    expect((await rawItem(dynamo.client, dynamo.tableName, id('low')))?.sweepShard).toBe('0');
    expect((await rawItem(dynamo.client, dynamo.tableName, id('high')))?.sweepShard).toBe('15');
  });
});

describe('openItems on DynamoDB', () => {
  let local: LocalDynamo;
  beforeEach(async () => {
    local = await startDynalite();
    return () => local.close();
  });
  const localLedger = (pageSize?: number) =>
    new DynamoLedger({
      tableName: local.tableName,
      calls: httpDynamoCallsFor(local.client),
      now: () => now,
      ...(pageSize ? { pageSize } : {}),
    });

  it('costs one Query per shard and index page, and one BatchGetItem per 100 keys', async () => {
    // Shard "3" holds 250 open items, shard "7" 40, the others none; 30 final items are not in the index.
    await seedItems(local.client, local.tableName, [
      ...manyItems(250, 'a', (lockId) => ledgerItem({ lockId, sweepShard: '3' })),
      ...manyItems(40, 'b', (lockId) => ledgerItem({ lockId, status: 'RELEASE_FAILED', sweepShard: '7' })),
      ...manyItems(30, 'c', (lockId) => ledgerItem({ lockId, status: 'RELEASED' })),
    ]);
    const reader = localLedger();
    const pages: LedgerItem[][] = [];
    for await (const page of reader.openItems()) pages.push(page);
    expect(pages.flat()).toHaveLength(290);
    // 16 Queries (each shard's keys fit one page) + ⌈250/100⌉ + ⌈40/100⌉ BatchGetItems.
    expect(reader.requests).toBe(16 + 3 + 1);
    expect(pages.map((p) => p.length).sort((a, b) => a - b)).toEqual([40, 50, 100, 100]);

    const small = localLedger(100);
    for await (const _ of small.openItems()) void _;
    // Shard "3" now takes Query pages of 100, 100, 50; shard "7" one; each BatchGetItem follows a page.
    expect(small.requests).toBe(16 + 2 + 3 + 1);
  });

  it('counts the read units DynamoDB reports: key-only index entries and eventually consistent reads', async () => {
    await seedItems(
      local.client,
      local.tableName,
      manyItems(200, 'a', (lockId) => ledgerItem({ lockId, sweepShard: '1' })),
    );
    const reader = localLedger();
    for await (const _ of reader.openItems()) void _;
    // dynalite charges a Query by the size of what it read (200 small keys: 1 unit at 4 KB per unit, halved for an
    // eventually consistent read), a BatchGetItem ½ unit per item under 4 KB.
    expect(reader.readUnits).toBeGreaterThanOrEqual(100);
    expect(reader.readUnits).toBeLessThan(110);
  });
});

describe('openItems paging and retries (a scripted DynamoDB port)', () => {
  const unexpected = () => Promise.reject(new Error('unexpected request'));
  /** A port whose Query and BatchGetItem answers are scripted; it records the requests. */
  function scripted(
    shards: Record<string, string[]>,
    unprocessedOnce: boolean,
    failQuery?: string,
  ): { calls: DynamoCalls; sent: string[] } {
    const sent: string[] = [];
    let held = unprocessedOnce;
    const calls: DynamoCalls = {
      putItem: unexpected,
      updateItem: unexpected,
      getItem: unexpected,
      query: (input) => {
        const shard = input.ExpressionAttributeValues?.[':shard']?.S ?? '';
        sent.push(`Query ${shard}`);
        if (shard === failQuery) return Promise.reject(new Error('throttled'));
        const keys = (shards[shard] ?? []).map((lockId) => ({
          lockId: { S: lockId },
          sweepShard: { S: shard },
        }));
        return Promise.resolve({ Items: keys });
      },
      batchGetItem: (input) => {
        const keys = input.RequestItems.t?.Keys ?? [];
        sent.push(`BatchGetItem ${keys.length}`);
        const served = held ? keys.slice(0, 1) : keys;
        const unprocessed = held ? keys.slice(1) : [];
        held = false;
        const items = served.map((key) => toItem(ledgerItem({ lockId: key.lockId!.S! })));
        return Promise.resolve({
          Responses: { t: items },
          ...(unprocessed.length > 0 ? { UnprocessedKeys: { t: { Keys: unprocessed } } } : {}),
        });
      },
    };
    return { calls, sent };
  }

  it('retries unprocessed keys after a pause, and yields every item', async () => {
    const { calls, sent } = scripted({ '0': ['a', 'b', 'c'] }, true);
    const sleeps: number[] = [];
    const reader = new DynamoLedger({
      tableName: 't',
      calls,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
      random: () => 0.5,
    });
    const items: LedgerItem[] = [];
    for await (const page of reader.openItems()) items.push(...page);
    expect(items.map((i) => i.lockId).sort()).toEqual(['a', 'b', 'c']);
    expect(sent.filter((s) => s.startsWith('BatchGetItem'))).toEqual(['BatchGetItem 3', 'BatchGetItem 2']);
    expect(sleeps).toHaveLength(1);
    expect(sent.filter((s) => s.startsWith('Query'))).toHaveLength(16);
  });

  it('a failed read ends the iteration with its error, after the other readers stopped', async () => {
    const { calls } = scripted({ '0': ['a'], '5': ['b'] }, false, '9');
    const reader = new DynamoLedger({ tableName: 't', calls });
    const read = async () => {
      for await (const _ of reader.openItems()) void _;
    };
    await expect(read()).rejects.toThrow('throttled');
  });

  it('reads at most `readConcurrency` shards at once', async () => {
    let inFlight = 0;
    let most = 0;
    const calls: DynamoCalls = {
      putItem: unexpected,
      updateItem: unexpected,
      getItem: unexpected,
      batchGetItem: unexpected,
      query: async () => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 2));
        inFlight -= 1;
        return { Items: [] };
      },
    };
    const reader = new DynamoLedger({ tableName: 't', calls, readConcurrency: 3 });
    for await (const _ of reader.openItems()) void _;
    expect(reader.requests).toBe(16);
    expect(most).toBe(3);
  });
});

describe('the live-lease read (a scripted DynamoDB port)', () => {
  const unexpected = () => Promise.reject(new Error('unexpected request'));
  /**
   * A port that answers BatchGetItem with an item per key, leaving unprocessed the keys `unprocessed` names for as
   * many requests as it says, and failing the requests `fail` names (by their order); it records each request.
   */
  function scripted(script: { unprocessed?: Record<string, number>; fail?: number[] }) {
    const sent: Array<{ keys: string[]; consistent: boolean | undefined }> = [];
    const left = new Map(Object.entries(script.unprocessed ?? {}));
    const calls: DynamoCalls = {
      putItem: unexpected,
      updateItem: unexpected,
      getItem: unexpected,
      query: unexpected,
      batchGetItem: (input) => {
        const request = input.RequestItems.t;
        const keys = (request?.Keys ?? []).map((key) => key.lockId!.S!);
        sent.push({ keys, consistent: request?.ConsistentRead });
        if (script.fail?.includes(sent.length)) return Promise.reject(new Error('throttled'));
        const withheld = keys.filter((key) => (left.get(key) ?? 0) > 0);
        for (const key of withheld) left.set(key, (left.get(key) ?? 0) - 1);
        const served = keys.filter((key) => !withheld.includes(key) && !key.startsWith('absent'));
        return Promise.resolve({
          Responses: { t: served.map((lockId) => toItem(ledgerItem({ lockId }))) },
          ...(withheld.length > 0
            ? { UnprocessedKeys: { t: { Keys: withheld.map((lockId) => ({ lockId: { S: lockId } })) } } }
            : {}),
        });
      },
    };
    const sleeps: number[] = [];
    const reader = new DynamoLedger({
      tableName: 't',
      calls,
      random: () => 0.999,
      sleep: (ms) => Promise.resolve(void sleeps.push(ms)),
    });
    return { reader, sent, sleeps };
  }

  it('reads consistently, one BatchGetItem per 100 distinct IDs', async () => {
    const { reader, sent } = scripted({});
    const ids = Array.from({ length: 150 }, (_, i) => `k${i}`);
    const readings = await reader.readItems([...ids, 'k0', 'absent']);
    expect(sent.map((r) => [r.keys.length, r.consistent])).toEqual([
      [100, true],
      [51, true],
    ]);
    expect(readings.size).toBe(151);
    expect(readings.get('k149')).toMatchObject({ ok: true, item: { lockId: 'k149', status: 'HELD' } });
    expect(readings.get('absent')).toEqual({ ok: true, item: undefined });
  });

  it('retries unprocessed keys with a bounded backoff; a key still unprocessed after 3 retries is unread, alone', async () => {
    const { reader, sent, sleeps } = scripted({ unprocessed: { b: 1, c: 9 } });
    const readings = await reader.readItems(['a', 'b', 'c']);
    expect(sent.map((r) => r.keys)).toEqual([['a', 'b', 'c'], ['b', 'c'], ['c'], ['c']]);
    expect(sleeps).toEqual([49, 99, 199]);
    expect(readings.get('a')).toMatchObject({ ok: true, item: { lockId: 'a' } });
    expect(readings.get('b')).toMatchObject({ ok: true, item: { lockId: 'b' } });
    expect(readings.get('c')).toEqual({
      ok: false,
      message: 'BatchGetItem left 1 keys unprocessed after 3 retries',
    });
  });

  it('a failed request leaves exactly its keys unread; the other requests are read', async () => {
    const { reader } = scripted({ fail: [1] });
    const ids = Array.from({ length: 120 }, (_, i) => `k${i}`);
    const readings = await reader.readItems(ids);
    expect(readings.get('k0')).toEqual({ ok: false, message: 'Error: throttled' });
    expect(readings.get('k99')).toEqual({ ok: false, message: 'Error: throttled' });
    expect(readings.get('k100')).toMatchObject({ ok: true, item: { lockId: 'k100' } });
    // A retry that fails leaves the keys still pending unread, and keeps what the first request read.
    const again = scripted({ unprocessed: { b: 1 }, fail: [2] });
    const partly = await again.reader.readItems(['a', 'b']);
    expect(partly.get('a')).toMatchObject({ ok: true });
    expect(partly.get('b')).toEqual({ ok: false, message: 'Error: throttled' });
  });
});

describe('the item codec', () => {
  it('round-trips every attribute of the schema and drops what it does not know', () => {
    const item: LedgerItem = {
      lockId: 'l',
      userId: 'u',
      moduleCode: '100',
      status: 'RELEASE_FAILED',
      holder: 'w',
      acquiredAt: 1,
      heartbeatAt: 2,
      leaseSeconds: 30,
      releasedAt: 3,
      releaseAttempts: 4,
      lastError: 'e',
      version: 5,
      expiresAt: 6,
      sweepShard: '7',
    };
    const stored = toItem(item);
    expect(stored.heartbeatAt).toEqual({ N: '2' });
    expect(stored.status).toEqual({ S: 'RELEASE_FAILED' });
    expect(fromItem({ ...stored, workerVersion: { S: '1.2' }, tags: { L: [] } })).toEqual(item);
    expect(Object.keys(toItem({ ...item, holder: undefined }))).not.toContain('holder');
  });
});
