/**
 * The benchmark's DynamoDB capacity model against cases computed by hand from DynamoDB's published rules
 * (item sizes, 1 KB write units, 4 KB read units, the index writes a change causes), and its metering proxy
 * against dynalite with the real SDK client.
 */
import {
  BatchGetItemCommand,
  CreateTableCommand,
  DynamoDBClient,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getCharge,
  hottest,
  itemSize,
  partitionKeyOfQuery,
  queryCharge,
  readUnitsOf,
  since,
  startMeteredDynamo,
  tableShape,
  valueSize,
  writeCharge,
  type MeteredDynamo,
  type WireItem,
} from '../../dev/bench/capacity';
import { startDynalite, type LocalDynamo } from '../../dev/dynalite';

/** The sparse design: HASH sweepShard, RANGE lockId, keys only. */
const OPEN_LOCKS: Pick<
  CreateTableCommandInput,
  'KeySchema' | 'GlobalSecondaryIndexes' | 'AttributeDefinitions'
> = {
  AttributeDefinitions: [
    { AttributeName: 'lockId', AttributeType: 'S' },
    { AttributeName: 'sweepShard', AttributeType: 'S' },
  ],
  KeySchema: [{ AttributeName: 'lockId', KeyType: 'HASH' }],
  GlobalSecondaryIndexes: [
    {
      IndexName: 'openLocks',
      KeySchema: [
        { AttributeName: 'sweepShard', KeyType: 'HASH' },
        { AttributeName: 'lockId', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'KEYS_ONLY' },
    },
  ],
};
/** Today's design: HASH status, RANGE heartbeatAt, all attributes. */
const BY_STATUS: typeof OPEN_LOCKS = {
  AttributeDefinitions: [
    { AttributeName: 'lockId', AttributeType: 'S' },
    { AttributeName: 'status', AttributeType: 'S' },
    { AttributeName: 'heartbeatAt', AttributeType: 'N' },
  ],
  KeySchema: [{ AttributeName: 'lockId', KeyType: 'HASH' }],
  GlobalSecondaryIndexes: [
    {
      IndexName: 'byStatus',
      KeySchema: [
        { AttributeName: 'status', KeyType: 'HASH' },
        { AttributeName: 'heartbeatAt', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    },
  ],
};
const INCLUDE: typeof OPEN_LOCKS = {
  KeySchema: [{ AttributeName: 'lockId', KeyType: 'HASH' }],
  GlobalSecondaryIndexes: [
    {
      IndexName: 'byUser',
      KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }],
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['status'] },
    },
  ],
};

const S = (s: string) => ({ S: s });
/** A wire-format item as the SDK's type. */
const av = (item: WireItem) => item as unknown as Record<string, AttributeValue>;
const N = (n: number | string) => ({ N: String(n) });

/** 9 + 9 + 7 + 8 + 13 + 18 = 64 bytes, by hand below. */
const held: WireItem = {
  lockId: S('abc'), // 6 + 3 = 9
  userId: S('user1'), // 6 + 5 = 11
  status: S('HELD'), // 6 + 4 = 10
  version: N(1), // 7 + (1 + 1) = 9
  heartbeatAt: N(1000), // 11 + (1 + 1) = 13  ("1000": 1 significant digit)
  sweepShard: S('3'), // 10 + 1 = 11
};
const HELD_BYTES = 9 + 11 + 10 + 9 + 13 + 11;

describe('item sizes', () => {
  it('adds names and values as DynamoDB documents them', () => {
    expect(itemSize(held)).toBe(HELD_BYTES);
    expect(valueSize(S('é'))).toBe(2); // UTF-8 bytes
    expect(valueSize(N('12345'))).toBe(4); // 5 digits: 3 bytes + 1
    expect(valueSize(N('1764460000000'))).toBe(4); // trailing zeros trimmed: 176446, 6 digits
    expect(valueSize(N('-0.00123'))).toBe(3); // 123: 2 + 1
    expect(valueSize({ BOOL: true })).toBe(1);
    expect(valueSize({ NULL: true })).toBe(1);
    expect(valueSize({ B: Buffer.from('abcd').toString('base64') })).toBe(4);
    expect(valueSize({ SS: ['ab', 'c'] })).toBe(3);
    // map: 3 + per element 1 + name + value
    expect(valueSize({ M: { a: S('x') } })).toBe(3 + 1 + 1 + 1);
    // list: 3 + per element 1 + value
    expect(valueSize({ L: [N(1), { BOOL: false }] })).toBe(3 + (1 + 2) + (1 + 1));
  });

  it('prices reads per started 4 KB, half when eventually consistent, at least one unit', () => {
    expect(readUnitsOf(0, false)).toBe(0.5);
    expect(readUnitsOf(4096, false)).toBe(0.5);
    expect(readUnitsOf(4097, false)).toBe(1);
    expect(readUnitsOf(4097, true)).toBe(2);
  });
});

describe('write charges', () => {
  const sparse = tableShape(OPEN_LOCKS);
  const old = tableShape(BY_STATUS);
  const beat = { ...held, heartbeatAt: N(2000), version: N(2) };
  const { sweepShard: _shard, ...unindexed } = held;
  const released = { ...unindexed, status: S('RELEASED'), heartbeatAt: N(2000), version: N(2) };

  it('sparse index: acquire puts one entry, a heartbeat writes none, the final write deletes it', () => {
    const acquire = writeCharge(sparse, undefined, held);
    expect(acquire.wu).toBe(2);
    expect(acquire.parts).toEqual([
      { scope: 'table', key: 'S:abc', wu: 1, ru: 0 },
      { scope: 'openLocks', key: 'S:3', wu: 1, ru: 0, kind: 'put' },
    ]);
    expect(writeCharge(sparse, held, beat).wu).toBe(1);
    // the claim changes status, which the index does not hold
    expect(writeCharge(sparse, beat, { ...beat, status: S('RELEASING') }).wu).toBe(1);
    const final = writeCharge(sparse, beat, released);
    expect(final.wu).toBe(2);
    expect(final.parts[1]).toEqual({ scope: 'openLocks', key: 'S:3', wu: 1, ru: 0, kind: 'delete' });
    // an item the release path creates without a shard never enters the index
    expect(writeCharge(sparse, undefined, released).parts).toEqual([
      { scope: 'table', key: 'S:abc', wu: 1, ru: 0 },
    ]);
  });

  it('byStatus: a heartbeat moves the index sort key, a delete and a put on the one HELD key', () => {
    expect(writeCharge(old, undefined, held).wu).toBe(2);
    const heartbeat = writeCharge(old, held, beat);
    expect(heartbeat.wu).toBe(3);
    expect(heartbeat.parts.slice(1)).toEqual([
      { scope: 'byStatus', key: 'S:HELD', wu: 1, ru: 0, kind: 'delete' },
      { scope: 'byStatus', key: 'S:HELD', wu: 1, ru: 0, kind: 'put' },
    ]);
    // HELD -> RELEASED: leaves the HELD key, enters the RELEASED key
    const final = writeCharge(old, beat, released);
    expect(final.parts.slice(1).map((p) => `${p.kind} ${p.key}`)).toEqual([
      'delete S:HELD',
      'put S:RELEASED',
    ]);
    // the release path's item for an unknown lock enters the index too
    expect(writeCharge(old, undefined, released).wu).toBe(2);
  });

  it('an index key change moves the entry between partition key values', () => {
    const parts = writeCharge(sparse, held, { ...held, sweepShard: S('7') }).parts;
    expect(parts.slice(1).map((p) => `${p.kind} ${p.key}`)).toEqual(['delete S:3', 'put S:7']);
  });

  it('INCLUDE: a projected attribute changing is one index update; others cost nothing there', () => {
    const shape = tableShape(INCLUDE);
    expect(writeCharge(shape, held, { ...held, status: S('RELEASED') }).parts[1]).toEqual({
      scope: 'byUser',
      key: 'S:user1',
      wu: 1,
      ru: 0,
      kind: 'update',
    });
    expect(writeCharge(shape, held, beat).wu).toBe(1);
  });

  it('counts started kilobytes of the larger image, for the table and for each index entry', () => {
    const pad = (bytes: number) => ({ pad: S('x'.repeat(bytes - 3 - HELD_BYTES)) }); // "pad" is 3 bytes
    const small = { ...held, ...pad(900) };
    const big = { ...held, ...pad(1100) };
    expect(itemSize(big)).toBe(1100);
    expect(writeCharge(sparse, small, big).wu).toBe(2); // 1100 bytes: 2 units, index untouched
    expect(writeCharge(sparse, big, small).wu).toBe(2); // the larger image counts, shrinking too
    // ALL projection: the 1100-byte entry costs 2 to delete and 2 to put
    expect(writeCharge(old, big, { ...big, heartbeatAt: N(5) }).wu).toBe(2 + 2 + 2);
    // keys only: the entry is small whatever the item
    expect(writeCharge(sparse, undefined, big).wu).toBe(2 + 1);
  });

  it('a failed condition costs the item it read and writes no index', () => {
    const failed = writeCharge(old, held, held, { failed: true });
    expect(failed.wu).toBe(1);
    expect(failed.conditionFailed).toBe(true);
    expect(failed.parts).toHaveLength(1);
    expect(writeCharge(old, undefined, undefined, { failed: true }).wu).toBe(1);
  });
});

describe('read charges', () => {
  const sparse = tableShape(OPEN_LOCKS);
  it('Query sums the entries then rounds once; BatchGet rounds each item', () => {
    const entry = { sweepShard: S('3'), lockId: S('x'.repeat(33)) }; // 11 + 6 + 33 = 50 bytes
    const entries = Array.from({ length: 100 }, () => entry); // 5000 bytes
    const q = queryCharge(sparse, entries, { index: 'openLocks', partitionKey: S('3') });
    expect(q.ru).toBe(1); // ceil(5000 / 4096) = 2 × 0.5
    expect(q.parts).toEqual([{ scope: 'openLocks', key: 'S:3', wu: 0, ru: 1 }]);
    const reads = [held, held, held].map((item) => ({ key: { lockId: S('abc') }, item }));
    expect(getCharge(sparse, reads, {}).ru).toBe(1.5);
    expect(
      getCharge(sparse, [{ key: { lockId: S('gone') }, item: undefined }], { consistent: true }).ru,
    ).toBe(1);
  });

  it('finds the partition key value in a key condition', () => {
    expect(
      partitionKeyOfQuery('#s = :s AND heartbeatAt < :b', 'status', { '#s': 'status' }, { ':s': S('HELD') }),
    ).toEqual(S('HELD'));
    expect(partitionKeyOfQuery('sweepShard = :shard', 'sweepShard', undefined, { ':shard': S('9') })).toEqual(
      S('9'),
    );
    expect(partitionKeyOfQuery('lockId = :x', 'sweepShard', undefined, { ':x': S('9') })).toBeUndefined();
  });
});

describe('the metering proxy in front of dynalite', () => {
  let db: LocalDynamo;
  let proxy: MeteredDynamo;
  let client: DynamoDBClient;
  const sparseTable = 'metered-open-locks';
  const oldTable = 'metered-by-status';

  beforeAll(async () => {
    db = await startDynalite();
    for (const [name, def] of [
      [sparseTable, OPEN_LOCKS],
      [oldTable, BY_STATUS],
    ] as const) {
      await db.client.send(
        new CreateTableCommand({ TableName: name, BillingMode: 'PAY_PER_REQUEST', ...def }),
      );
    }
    proxy = await startMeteredDynamo(db.endpoint, {
      [sparseTable]: tableShape(OPEN_LOCKS),
      [oldTable]: tableShape(BY_STATUS),
    });
    client = new DynamoDBClient({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  });

  afterAll(async () => {
    client?.destroy();
    await proxy?.close();
    await db?.close();
  });

  const heartbeat = (TableName: string, at: number) =>
    new UpdateItemCommand({
      TableName,
      Key: { lockId: S('abc') },
      UpdateExpression: 'SET heartbeatAt = :now, version = version + :one',
      ConditionExpression: '#s = :held',
      ExpressionAttributeNames: { '#s': 'status' },
      ExpressionAttributeValues: { ':now': N(at), ':one': N(1), ':held': S('HELD') },
    });

  it('prices a lifecycle from the images it reads, per partition key value, and forwards answers unchanged', async () => {
    const start = proxy.meter.snapshot();
    await client.send(new PutItemCommand({ TableName: sparseTable, Item: av(held) }));
    await client.send(heartbeat(sparseTable, 2000));
    await client.send(heartbeat(sparseTable, 3000));
    const error = await client
      .send(
        new UpdateItemCommand({
          TableName: sparseTable,
          Key: { lockId: S('abc') },
          UpdateExpression: 'SET heartbeatAt = :now',
          ConditionExpression: 'heartbeatAt < :now',
          ExpressionAttributeValues: { ':now': N(1) },
        }),
      )
      .catch((e: unknown) => e);
    expect((error as Error).name).toBe('ConditionalCheckFailedException');
    const page = await client.send(
      new QueryCommand({
        TableName: sparseTable,
        IndexName: 'openLocks',
        KeyConditionExpression: 'sweepShard = :s',
        ExpressionAttributeValues: { ':s': S('3') },
      }),
    );
    expect(page.Items).toEqual([{ lockId: S('abc'), sweepShard: S('3') }]);
    await client.send(
      new UpdateItemCommand({
        TableName: sparseTable,
        Key: { lockId: S('abc') },
        UpdateExpression: 'SET #s = :r REMOVE sweepShard',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':r': S('RELEASED') },
      }),
    );
    const got = await client.send(
      new BatchGetItemCommand({
        RequestItems: { [sparseTable]: { Keys: [{ lockId: S('abc') }, { lockId: S('nope') }] } },
      }),
    );
    expect(got.Responses?.[sparseTable]?.[0]?.status).toEqual(S('RELEASED'));

    const d = since(start, proxy.meter.snapshot());
    // put 2 + heartbeats 1 + 1 + failed condition 1 + final 2
    expect(d.wu).toBe(7);
    expect(d.conditionFailed).toBe(1);
    expect(d.byScope.openLocks).toMatchObject({ wu: 2, puts: 1, deletes: 1, updates: 0 });
    expect(d.byPartition['openLocks\u0000S:3']).toMatchObject({ wu: 2, ru: 0.5, writes: 2 });
    expect(d.byPartition['table\u0000S:abc']).toMatchObject({ wu: 5, writes: 5 });
    // Query 0.5 + BatchGet 0.5 + 0.5 (the absent key costs the minimum)
    expect(d.ru).toBe(1.5);
    expect(d.requests).toEqual({ PutItem: 1, UpdateItem: 4, Query: 1, BatchGetItem: 1 });
  });

  it('prices the same heartbeats at 3 units on byStatus, all on the HELD key', async () => {
    await client.send(new PutItemCommand({ TableName: oldTable, Item: av(held) }));
    const start = proxy.meter.snapshot();
    for (const at of [2000, 3000, 4000]) await client.send(heartbeat(oldTable, at));
    const d = since(start, proxy.meter.snapshot());
    expect(d.wu).toBe(9);
    expect(hottest(d, 'byStatus')).toMatchObject({ key: 'S:HELD', wu: 6, writes: 6 });
  });

  it('agrees with dynalite on the base table units of a 1967-byte put', async () => {
    const big = { ...held, lockId: S('big'), pad: S('x'.repeat(1900)) }; // 64 + 3 + 1900 = 1967 bytes: 2 units
    const start = proxy.meter.snapshot();
    const answer = await client.send(
      new PutItemCommand({
        TableName: sparseTable,
        Item: av(big),
        ReturnConsumedCapacity: 'TOTAL',
      }),
    );
    const d = since(start, proxy.meter.snapshot());
    expect(d.byScope.table?.wu).toBe(answer.ConsumedCapacity?.CapacityUnits);
    expect(d.byScope.table?.wu).toBe(2);
  });
});
