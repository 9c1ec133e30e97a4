/**
 * A DynamoDB capacity model for the benchmark: what every request a run makes would cost in write and read
 * request units on DynamoDB, for the base table and for each global secondary index, per partition key value.
 *
 * DynamoDB's rules, as its developer guide states them ("Capacity unit consumption", "Global secondary indexes:
 * provisioned throughput considerations", "Item sizes"):
 * - an item's size is the sum of its attribute names' UTF-8 lengths and their values' sizes (a string's UTF-8
 *   length, a number ≈ 1 byte per 2 significant digits + 1, binary its byte length, boolean and null 1 byte, a
 *   list or map 3 bytes + 1 byte per element + the elements);
 * - a write costs 1 write unit per started KB of the larger of the item's images before and after it (at least
 *   1); a write whose condition fails costs the same for the image it read, and writes no index;
 * - a global secondary index is written only where the write changes it: 0 units when the item is in neither
 *   image's index (an index key attribute missing), 1 put when it enters, 1 delete when it leaves, a delete and
 *   a put (2) when an index key attribute changes, 1 update when only a projected attribute changes, 0 when
 *   nothing the index holds changes; each per started KB of the index entry;
 * - reads cost 1 unit per started 4 KB, half of it when eventually consistent: GetItem per item (an absent item
 *   still costs the minimum), BatchGetItem per item, Query and Scan over the sum of the entries read (the
 *   index entries, for an index), rounded up once per request.
 *
 * The model is pure (images in, charges out). `startMeteredDynamo` puts it in front of dynalite as a loopback
 * proxy so any process (a handler in a worker, the packaged bundle) is metered without knowing it: for each
 * write it reads the item before and after (consistently, straight from dynalite, never counted), one key at a
 * time, and it reads the read requests' answers.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { Pool } from 'undici';
import { closerOf, listenOnLoopback } from '../../src/testing/loopback';

/** An attribute value in DynamoDB's JSON wire format ({"S": "…"}, {"N": "12"}, {"M": {…}}, …). */
export type WireValue = Record<string, unknown>;
export type WireItem = Record<string, WireValue>;

// ---------------------------------------------------------------------------------------------------------
// Sizes

const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

/** Significant digits of a DynamoDB number (leading and trailing zeros, sign and point trimmed). */
export function significantDigits(text: string): number {
  const digits = text
    .trim()
    .replace(/^[-+]/, '')
    .replace(/[eE].*$/, '')
    .replace('.', '')
    .replace(/^0+/, '')
    .replace(/0+$/, '');
  return Math.max(1, digits.length);
}

/** Bytes of one attribute value (without its name). */
export function valueSize(value: WireValue): number {
  const [type, v] = Object.entries(value)[0] ?? [];
  switch (type) {
    case 'S':
      return utf8(v as string);
    case 'N':
      return Math.ceil(significantDigits(v as string) / 2) + 1;
    case 'B':
      return typeof v === 'string' ? Buffer.from(v, 'base64').length : (v as Uint8Array).length;
    case 'BOOL':
    case 'NULL':
      return 1;
    case 'SS':
      return (v as string[]).reduce((sum, s) => sum + utf8(s), 0);
    case 'NS':
      return (v as string[]).reduce((sum, n) => sum + Math.ceil(significantDigits(n) / 2) + 1, 0);
    case 'BS':
      return (v as string[]).reduce((sum, b) => sum + Buffer.from(b, 'base64').length, 0);
    case 'L':
      return 3 + (v as WireValue[]).reduce((sum, e) => sum + 1 + valueSize(e), 0);
    case 'M': {
      const entries = Object.entries(v as WireItem);
      return 3 + entries.reduce((sum, [name, e]) => sum + 1 + utf8(name) + valueSize(e), 0);
    }
    default:
      throw new Error(`unknown attribute value type ${String(type)}`);
  }
}

/** Bytes of an item: each attribute's name and value. */
export function itemSize(item: WireItem | undefined): number {
  if (!item) return 0;
  return Object.entries(item).reduce((sum, [name, value]) => sum + utf8(name) + valueSize(value), 0);
}

export const writeUnitsOf = (bytes: number): number => Math.max(1, Math.ceil(bytes / 1024));
export const readUnitsOf = (bytes: number, consistent: boolean): number =>
  Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);

// ---------------------------------------------------------------------------------------------------------
// Table shapes

export interface IndexShape {
  name: string;
  hashKey: string;
  rangeKey?: string;
  projection: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
  nonKeyAttributes: string[];
}

export interface TableShape {
  hashKey: string;
  rangeKey?: string;
  indexes: IndexShape[];
}

/** The shape of a table from its CreateTable input (resources/ledger-table.yml and its kind). */
export function tableShape(
  input: Pick<CreateTableCommandInput, 'KeySchema' | 'GlobalSecondaryIndexes'>,
): TableShape {
  const keys = (schema: Array<{ AttributeName?: string; KeyType?: string }> | undefined) => {
    const hash = schema?.find((k) => k.KeyType === 'HASH')?.AttributeName;
    if (!hash) throw new Error('a key schema without a HASH key');
    const range = schema?.find((k) => k.KeyType === 'RANGE')?.AttributeName;
    return { hashKey: hash, ...(range ? { rangeKey: range } : {}) };
  };
  return {
    ...keys(input.KeySchema),
    indexes: (input.GlobalSecondaryIndexes ?? []).map((gsi) => ({
      name: gsi.IndexName ?? '?',
      ...keys(gsi.KeySchema),
      projection: gsi.Projection?.ProjectionType ?? 'ALL',
      nonKeyAttributes: gsi.Projection?.NonKeyAttributes ?? [],
    })),
  };
}

/** The item's key attributes in the table. */
export function keyOf(shape: TableShape, item: WireItem): WireItem {
  const key: WireItem = {};
  for (const name of [shape.hashKey, shape.rangeKey]) {
    if (name === undefined) continue;
    const value = item[name];
    if (value === undefined) throw new Error(`item without its key attribute ${name}`);
    key[name] = value;
  }
  return key;
}

/** What the index holds of the item, or undefined when the item is not in it (an index key attribute absent). */
export function indexEntry(
  shape: TableShape,
  index: IndexShape,
  item: WireItem | undefined,
): WireItem | undefined {
  if (!item) return undefined;
  const indexKeys = [index.hashKey, index.rangeKey].filter((k): k is string => k !== undefined);
  if (indexKeys.some((k) => item[k] === undefined)) return undefined;
  if (index.projection === 'ALL') return item;
  const names = new Set([...indexKeys, shape.hashKey, ...(shape.rangeKey ? [shape.rangeKey] : [])]);
  if (index.projection === 'INCLUDE') for (const n of index.nonKeyAttributes) names.add(n);
  const entry: WireItem = {};
  for (const n of names) if (item[n] !== undefined) entry[n] = item[n];
  return entry;
}

/** A partition key value as text ("S:HELD", "N:12"): what the per-key counts are grouped by. */
export function keyText(value: WireValue | undefined): string {
  const [type, v] = Object.entries(value ?? {})[0] ?? ['?', '?'];
  return `${type}:${Array.isArray(v) ? v.join(',') : String(v)}`;
}

const same = (a: WireValue | undefined, b: WireValue | undefined) => JSON.stringify(a) === JSON.stringify(b);
const sameItem = (a: WireItem, b: WireItem) => {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const n of names) if (!same(a[n], b[n])) return false;
  return true;
};

// ---------------------------------------------------------------------------------------------------------
// Charges

export type IndexWriteKind = 'put' | 'delete' | 'update';

/** Units charged to one partition key value of the table or of an index. */
export interface PartitionCharge {
  /** "table" or the index name. */
  scope: string;
  /** The partition key value ("S:HELD"). */
  key: string;
  wu: number;
  ru: number;
  /** For index writes: put, delete or update. */
  kind?: IndexWriteKind;
}

export interface Charge {
  operation: string;
  table: string;
  wu: number;
  ru: number;
  parts: PartitionCharge[];
  conditionFailed?: boolean;
}

/**
 * The write units of one write to an item, from its images before and after (undefined: absent). A failed
 * condition (or any write that left the item as it was because it was refused) passes `failed`.
 */
export function writeCharge(
  shape: TableShape,
  before: WireItem | undefined,
  after: WireItem | undefined,
  options: { operation?: string; table?: string; failed?: boolean } = {},
): Charge {
  const image = after ?? before;
  const hashValue = image?.[shape.hashKey];
  const baseWu = writeUnitsOf(Math.max(itemSize(before), options.failed ? 0 : itemSize(after)));
  const parts: PartitionCharge[] = [{ scope: 'table', key: keyText(hashValue), wu: baseWu, ru: 0 }];
  if (!options.failed) {
    for (const index of shape.indexes) {
      const old = indexEntry(shape, index, before);
      const neu = indexEntry(shape, index, after);
      if (!old && !neu) continue;
      const keyChanged =
        old !== undefined &&
        neu !== undefined &&
        (!same(old[index.hashKey], neu[index.hashKey]) ||
          (index.rangeKey !== undefined && !same(old[index.rangeKey], neu[index.rangeKey])));
      if (neu && (!old || keyChanged)) {
        if (old) {
          parts.push({
            scope: index.name,
            key: keyText(old[index.hashKey]),
            wu: writeUnitsOf(itemSize(old)),
            ru: 0,
            kind: 'delete',
          });
        }
        parts.push({
          scope: index.name,
          key: keyText(neu[index.hashKey]),
          wu: writeUnitsOf(itemSize(neu)),
          ru: 0,
          kind: 'put',
        });
      } else if (old && !neu) {
        parts.push({
          scope: index.name,
          key: keyText(old[index.hashKey]),
          wu: writeUnitsOf(itemSize(old)),
          ru: 0,
          kind: 'delete',
        });
      } else if (old && neu && !sameItem(old, neu)) {
        parts.push({
          scope: index.name,
          key: keyText(neu[index.hashKey]),
          wu: writeUnitsOf(Math.max(itemSize(old), itemSize(neu))),
          ru: 0,
          kind: 'update',
        });
      }
    }
  }
  return {
    operation: options.operation ?? 'write',
    table: options.table ?? '',
    wu: parts.reduce((sum, p) => sum + p.wu, 0),
    ru: 0,
    parts,
    ...(options.failed ? { conditionFailed: true } : {}),
  };
}

/** Query / Scan: the entries read, summed and rounded up once; charged to the partition key value queried. */
export function queryCharge(
  shape: TableShape,
  entries: readonly WireItem[],
  options: {
    operation?: string;
    table?: string;
    index?: string;
    consistent?: boolean;
    partitionKey?: WireValue;
  },
): Charge {
  const bytes = entries.reduce((sum, e) => sum + itemSize(e), 0);
  const ru = readUnitsOf(bytes, options.consistent ?? false);
  const scope = options.index ?? 'table';
  return {
    operation: options.operation ?? 'Query',
    table: options.table ?? '',
    wu: 0,
    ru,
    parts: [{ scope, key: options.partitionKey ? keyText(options.partitionKey) : '*', wu: 0, ru }],
  };
}

/** GetItem / BatchGetItem: per item read (an absent one costs the minimum). */
export function getCharge(
  shape: TableShape,
  reads: ReadonlyArray<{ key: WireItem; item: WireItem | undefined }>,
  options: { operation?: string; table?: string; consistent?: boolean },
): Charge {
  const parts = reads.map(({ key, item }) => ({
    scope: 'table',
    key: keyText(key[shape.hashKey]),
    wu: 0,
    ru: readUnitsOf(itemSize(item), options.consistent ?? false),
  }));
  return {
    operation: options.operation ?? 'GetItem',
    table: options.table ?? '',
    wu: 0,
    ru: parts.reduce((sum, p) => sum + p.ru, 0),
    parts,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The meter: charges added up

export interface PartitionTotal {
  scope: string;
  key: string;
  wu: number;
  ru: number;
  /** Index writes by kind (puts, deletes, updates); table writes count as writes. */
  writes: number;
}

export interface MeterSnapshot {
  requests: Record<string, number>;
  conditionFailed: number;
  wu: number;
  ru: number;
  /** Units by scope ("table" or an index name). */
  byScope: Record<string, { wu: number; ru: number; puts: number; deletes: number; updates: number }>;
  /** Units by scope and partition key value, as "scope\u0000key". */
  byPartition: Record<string, PartitionTotal>;
}

const emptySnapshot = (): MeterSnapshot => ({
  requests: {},
  conditionFailed: 0,
  wu: 0,
  ru: 0,
  byScope: {},
  byPartition: {},
});

export class CapacityMeter {
  private totals = emptySnapshot();

  add(charge: Charge): void {
    const t = this.totals;
    t.requests[charge.operation] = (t.requests[charge.operation] ?? 0) + 1;
    if (charge.conditionFailed) t.conditionFailed += 1;
    t.wu += charge.wu;
    t.ru += charge.ru;
    for (const part of charge.parts) {
      const scope = (t.byScope[part.scope] ??= { wu: 0, ru: 0, puts: 0, deletes: 0, updates: 0 });
      scope.wu += part.wu;
      scope.ru += part.ru;
      if (part.kind === 'put') scope.puts += 1;
      if (part.kind === 'delete') scope.deletes += 1;
      if (part.kind === 'update') scope.updates += 1;
      const id = `${part.scope}\u0000${part.key}`;
      const p = (t.byPartition[id] ??= { scope: part.scope, key: part.key, wu: 0, ru: 0, writes: 0 });
      p.wu += part.wu;
      p.ru += part.ru;
      if (part.wu > 0) p.writes += 1;
    }
  }

  /** A request the model does not price (DescribeTable, …): counted only. */
  count(operation: string): void {
    this.totals.requests[operation] = (this.totals.requests[operation] ?? 0) + 1;
  }

  snapshot(): MeterSnapshot {
    return structuredClone(this.totals);
  }

  reset(): void {
    this.totals = emptySnapshot();
  }
}

/** What happened between two snapshots (b − a); partitions with nothing charged are left out. */
export function since(a: MeterSnapshot, b: MeterSnapshot): MeterSnapshot {
  const out = emptySnapshot();
  for (const [op, n] of Object.entries(b.requests)) {
    const d = n - (a.requests[op] ?? 0);
    if (d) out.requests[op] = d;
  }
  out.conditionFailed = b.conditionFailed - a.conditionFailed;
  out.wu = b.wu - a.wu;
  out.ru = b.ru - a.ru;
  for (const [scope, s] of Object.entries(b.byScope)) {
    const o = a.byScope[scope] ?? { wu: 0, ru: 0, puts: 0, deletes: 0, updates: 0 };
    const d = {
      wu: s.wu - o.wu,
      ru: s.ru - o.ru,
      puts: s.puts - o.puts,
      deletes: s.deletes - o.deletes,
      updates: s.updates - o.updates,
    };
    if (d.wu || d.ru) out.byScope[scope] = d;
  }
  for (const [id, p] of Object.entries(b.byPartition)) {
    const o = a.byPartition[id];
    const d = { ...p, wu: p.wu - (o?.wu ?? 0), ru: p.ru - (o?.ru ?? 0), writes: p.writes - (o?.writes ?? 0) };
    if (d.wu || d.ru) out.byPartition[id] = d;
  }
  return out;
}

export const requestCount = (s: MeterSnapshot): number =>
  Object.values(s.requests).reduce((sum, n) => sum + n, 0);

/** The partition key value of a scope that took the most units (write or read). */
export function hottest(s: MeterSnapshot, scope: string, by: 'wu' | 'ru' = 'wu'): PartitionTotal | undefined {
  let best: PartitionTotal | undefined;
  for (const p of Object.values(s.byPartition)) {
    if (p.scope !== scope) continue;
    if (!best || p[by] > best[by]) best = p;
  }
  return best;
}

/** Distinct partition key values of a scope that were charged. */
export const partitionsOf = (s: MeterSnapshot, scope: string): PartitionTotal[] =>
  Object.values(s.byPartition).filter((p) => p.scope === scope);

// ---------------------------------------------------------------------------------------------------------
// The metering proxy in front of dynalite

const TARGET_PREFIX = 'DynamoDB_20120810.';
/** dynalite wants an Authorization header of the SigV4 form; it checks no signature. */
const LOCAL_AUTH =
  'AWS4-HMAC-SHA256 Credential=local/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=00';

export interface MeteredDynamo {
  /** http://127.0.0.1:<port>: give this to clients instead of dynalite's endpoint. */
  endpoint: string;
  meter: CapacityMeter;
  /** Tables the model prices, by name (others are forwarded and counted only). */
  shapes: Map<string, TableShape>;
  /** Off: forward only (requests still counted), no images read. */
  pricing: boolean;
  close(): Promise<void>;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * A loopback proxy that forwards every request to `target` (a dynalite endpoint) unchanged and prices it with
 * the model. Writes to one key are serialised through the proxy (image before, write, image after), so
 * concurrent writers to the same item are priced against the right images.
 */
export async function startMeteredDynamo(
  target: string,
  shapes: Record<string, TableShape> = {},
): Promise<MeteredDynamo> {
  const pool = new Pool(target, { connections: 32 });
  const meter = new CapacityMeter();
  const shapeMap = new Map(Object.entries(shapes));
  const locks = new Map<string, Promise<void>>();

  const call = async (
    operation: string,
    body: unknown,
    headers?: IncomingMessage['headers'],
  ): Promise<Answer> => {
    const sent = headers
      ? Object.fromEntries(
          Object.entries(headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k)),
        )
      : {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `${TARGET_PREFIX}${operation}`,
          'x-amz-date': '20200101T000000Z',
          authorization: LOCAL_AUTH,
        };
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const res = await pool.request({
      path: '/',
      method: 'POST',
      headers: sent as Record<string, string>,
      body: payload,
    });
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) chunks.push(chunk as Buffer);
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
  };

  const image = async (table: string, key: WireItem): Promise<WireItem | undefined> => {
    const answer = await call('GetItem', { TableName: table, Key: key, ConsistentRead: true });
    if (answer.status !== 200) throw new Error(`image read failed: ${answer.body.toString()}`);
    return (JSON.parse(answer.body.toString()) as { Item?: WireItem }).Item;
  };

  /** Runs fn while holding every named key (taken in sorted order: no deadlock). */
  const withKeys = async <T>(keys: string[], fn: () => Promise<T>): Promise<T> => {
    const releases: Array<() => void> = [];
    for (const k of [...new Set(keys)].sort()) {
      const previous = locks.get(k) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((resolve) => (release = resolve));
      const chained = previous.then(() => mine);
      locks.set(k, chained);
      await previous;
      releases.push(() => {
        release();
        if (locks.get(k) === chained) locks.delete(k);
      });
    }
    try {
      return await fn();
    } finally {
      for (const r of releases) r();
    }
  };

  const isConditionFailure = (a: Answer) =>
    a.status === 400 && a.body.toString().includes('ConditionalCheckFailedException');

  async function handle(
    operation: string,
    raw: Buffer,
    headers: IncomingMessage['headers'],
  ): Promise<Answer> {
    const req = JSON.parse(raw.toString() || '{}') as Record<string, unknown>;
    const table = req.TableName as string | undefined;
    const shape = table ? shapeMap.get(table) : undefined;
    const forward = () => call(operation, raw, headers);
    if (!metered.pricing) {
      meter.count(operation);
      return forward();
    }

    if (
      (operation === 'PutItem' || operation === 'UpdateItem' || operation === 'DeleteItem') &&
      shape &&
      table
    ) {
      const key = operation === 'PutItem' ? keyOf(shape, req.Item as WireItem) : (req.Key as WireItem);
      return withKeys([`${table}\u0000${JSON.stringify(key)}`], async () => {
        const before = await image(table, key);
        const answer = await forward();
        if (answer.status === 200) {
          const after = await image(table, key);
          meter.add(writeCharge(shape, before, after, { operation, table }));
        } else if (isConditionFailure(answer)) {
          meter.add(writeCharge(shape, before, before, { operation, table, failed: true }));
        } else meter.count(operation);
        return answer;
      });
    }

    if (operation === 'BatchWriteItem') {
      const items = req.RequestItems as Record<
        string,
        Array<Record<string, { Item?: WireItem; Key?: WireItem }>>
      >;
      const writes: Array<{ table: string; shape: TableShape; key: WireItem }> = [];
      for (const [name, list] of Object.entries(items)) {
        const s = shapeMap.get(name);
        if (!s) continue;
        for (const w of list) {
          const key = w.PutRequest?.Item ? keyOf(s, w.PutRequest.Item) : (w.DeleteRequest?.Key as WireItem);
          writes.push({ table: name, shape: s, key });
        }
      }
      return withKeys(
        writes.map((w) => `${w.table}\u0000${JSON.stringify(w.key)}`),
        async () => {
          const befores = await Promise.all(writes.map((w) => image(w.table, w.key)));
          const answer = await forward();
          if (answer.status !== 200) {
            meter.count(operation);
            return answer;
          }
          const unprocessed = new Set(
            Object.entries(
              (JSON.parse(answer.body.toString()) as { UnprocessedItems?: typeof items }).UnprocessedItems ??
                {},
            ).flatMap(([name, list]) =>
              list.map((w) => {
                const s = shapeMap.get(name);
                const key = w.PutRequest?.Item && s ? keyOf(s, w.PutRequest.Item) : w.DeleteRequest?.Key;
                return `${name}\u0000${JSON.stringify(key)}`;
              }),
            ),
          );
          const charge: Charge = { operation, table: '', wu: 0, ru: 0, parts: [] };
          await Promise.all(
            writes.map(async (w, i) => {
              if (unprocessed.has(`${w.table}\u0000${JSON.stringify(w.key)}`)) return;
              const one = writeCharge(w.shape, befores[i], await image(w.table, w.key));
              charge.wu += one.wu;
              charge.parts.push(...one.parts);
            }),
          );
          meter.add(charge);
          return answer;
        },
      );
    }

    const answer = await forward();
    if (answer.status !== 200 || !shape || !table) {
      meter.count(operation);
      return answer;
    }
    const out = JSON.parse(answer.body.toString()) as Record<string, unknown>;
    const consistent = req.ConsistentRead === true;
    if (operation === 'GetItem') {
      meter.add(
        getCharge(shape, [{ key: req.Key as WireItem, item: out.Item as WireItem | undefined }], {
          operation,
          table,
          consistent,
        }),
      );
    } else if (operation === 'Query' || operation === 'Scan') {
      const index = req.IndexName as string | undefined;
      const hashName = index ? shape.indexes.find((i) => i.name === index)?.hashKey : shape.hashKey;
      const values = req.ExpressionAttributeValues as WireItem | undefined;
      const names = req.ExpressionAttributeNames as Record<string, string> | undefined;
      meter.add(
        queryCharge(shape, (out.Items as WireItem[]) ?? [], {
          operation,
          table,
          consistent,
          ...(index ? { index } : {}),
          ...(operation === 'Query' && hashName
            ? {
                partitionKey: partitionKeyOfQuery(
                  req.KeyConditionExpression as string,
                  hashName,
                  names,
                  values,
                ),
              }
            : {}),
        }),
      );
    } else meter.count(operation);
    return answer;
  }

  async function handleBatchGet(raw: Buffer, headers: IncomingMessage['headers']): Promise<Answer> {
    const answer = await call('BatchGetItem', raw, headers);
    if (answer.status !== 200 || !metered.pricing) {
      meter.count('BatchGetItem');
      return answer;
    }
    const req = JSON.parse(raw.toString()) as {
      RequestItems: Record<string, { Keys: WireItem[]; ConsistentRead?: boolean }>;
    };
    const out = JSON.parse(answer.body.toString()) as {
      Responses?: Record<string, WireItem[]>;
      UnprocessedKeys?: Record<string, { Keys: WireItem[] }>;
    };
    const charge: Charge = { operation: 'BatchGetItem', table: '', wu: 0, ru: 0, parts: [] };
    for (const [name, { Keys, ConsistentRead }] of Object.entries(req.RequestItems)) {
      const shape = shapeMap.get(name);
      if (!shape) continue;
      const found = new Map(
        (out.Responses?.[name] ?? []).map((item) => [JSON.stringify(keyOf(shape, item)), item]),
      );
      const skipped = new Set(
        (out.UnprocessedKeys?.[name]?.Keys ?? []).map((k) => JSON.stringify(keyOf(shape, k))),
      );
      const reads = Keys.filter((k) => !skipped.has(JSON.stringify(keyOf(shape, k)))).map((k) => ({
        key: k,
        item: found.get(JSON.stringify(keyOf(shape, k))),
      }));
      const one = getCharge(shape, reads, { consistent: ConsistentRead === true });
      charge.ru += one.ru;
      charge.parts.push(...one.parts);
    }
    meter.add(charge);
    return answer;
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : target;
      const work =
        operation === 'BatchGetItem' ? handleBatchGet(raw, req.headers) : handle(operation, raw, req.headers);
      work.then(
        (answer) => {
          const headers: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(answer.headers)) {
            if (v !== undefined && !['connection', 'transfer-encoding', 'keep-alive'].includes(k))
              headers[k] = v;
          }
          headers['content-length'] = String(answer.body.length);
          res.writeHead(answer.status, headers);
          res.end(answer.body);
        },
        (error: unknown) => {
          res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
          res.end(
            JSON.stringify({
              __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
              message: `metering proxy: ${error instanceof Error ? error.message : String(error)}`,
            }),
          );
        },
      );
    });
  });
  const endpoint = await listenOnLoopback(server);
  const closeServer = closerOf(server);
  const metered: MeteredDynamo = {
    endpoint,
    meter,
    shapes: shapeMap,
    pricing: true,
    async close() {
      await closeServer();
      await pool.close();
    },
  };
  return metered;
}

/** The value a Query's key condition gives the partition key ("#s = :s AND …" or "sweepShard = :shard"). */
export function partitionKeyOfQuery(
  expression: string | undefined,
  hashName: string,
  names: Record<string, string> | undefined,
  values: WireItem | undefined,
): WireValue | undefined {
  if (!expression) return undefined;
  for (const clause of expression.split(/\s+AND\s+/i)) {
    const m = /^\s*\(?\s*([#\w.]+)\s*=\s*(:\w+)\s*\)?\s*$/.exec(clause);
    if (!m) continue;
    const name = m[1]?.startsWith('#') ? names?.[m[1]] : m[1];
    if (name === hashName) return values?.[m[2] as string];
  }
  return undefined;
}
