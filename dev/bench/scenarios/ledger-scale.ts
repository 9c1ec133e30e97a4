/**
 * The ledger at scale: holders through the real LockHolder on a virtual clock (so heartbeats of 40 s take no real
 * time), the release path's outcome writes, and the sweep over a large ledger of open items, all on dynalite behind
 * the capacity model (dev/bench/capacity.ts), which prices every request per partition key value. The load model
 * and the cost model turn the measured units into figures at 100,000 holders and in dollars.
 */
import {
  BatchWriteItemCommand,
  ScanCommand,
  UpdateItemCommand,
  type AttributeValue,
  type BatchWriteItemCommandOutput,
  type DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { mapConcurrently } from '../../../src/core/engine';
import { SWEEP_SHARDS } from '../../../src/core/lease';
import type { Clock, LockResult, Timer } from '../../../src/core/model';
import { LockHolder } from '../../../src/ledger/holder';
import { DynamoLedger } from '../../../src/ledger/ledger';
import { httpDynamoCallsFor } from '../../../src/ledger/dynamo-http';
import { deployed } from '../bundle';
import {
  hottest,
  partitionsOf,
  requestCount,
  since,
  type MeterSnapshot,
  type MeteredDynamo,
} from '../capacity';
import { billRows, lifecycleBill, MONTH_SECONDS, PRICES, sweepMonthBill, usd } from '../cost';
import type { Harness } from '../harness';
import { ms, table } from '../report';

const INDEX = 'openLocks';
const LOAD = { holders: 100_000, heartbeatSeconds: 40, leaseSeconds: 120, holdSeconds: 300 } as const;

/** A clock whose time moves only when told to, firing due timers in order and letting I/O settle after each. */
class VirtualClock implements Clock {
  private t = 0;
  private readonly timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  private readonly epoch = Date.now();
  now = (): number => this.epoch + this.t;
  monotonic = (): number => this.t;
  sleep = (ms: number): Promise<void> => new Promise((resolve) => this.setTimer(ms, resolve));
  setTimer(ms: number, fn: () => void): Timer {
    const timer = { at: this.t + Math.max(0, ms), fn, live: true };
    this.timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }
  async advance(ms: number, settle: () => Promise<void>): Promise<void> {
    const until = this.t + ms;
    for (;;) {
      const next = this.timers.filter((x) => x.live && x.at <= until).sort((a, b) => a.at - b.at)[0];
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

interface HoldersRun {
  holders: number;
  heartbeatsPerHolder: number;
  acquire: MeterSnapshot;
  heartbeats: MeterSnapshot;
  release: MeterSnapshot;
  all: MeterSnapshot;
}

/** `holders` LockHolder.hold() calls at once, each working `workSeconds` on the virtual clock, then released. */
async function holdersRun(
  proxy: MeteredDynamo & { client: DynamoDBClient },
  tableName: string,
  holders: number,
  workSeconds: number,
) {
  const clock = new VirtualClock();
  const l = new DynamoLedger({ tableName, calls: httpDynamoCallsFor(proxy.client), now: clock.now });
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
  let created = 0;
  const prefix = `${tableName}-${workSeconds}s`;
  const holder = new LockHolder({
    name: 'bench-worker',
    leaseSeconds: LOAD.leaseSeconds,
    heartbeatSeconds: LOAD.heartbeatSeconds,
    clockSkewSeconds: 10,
    // A KooDrive that always agrees, in memory: the scenario counts ledger writes, not KooDrive calls.
    koodrive: {
      createLock: (userId, moduleCode) =>
        Promise.resolve({ ok: true as const, lockId: `${prefix}-${created++}-${userId}@${moduleCode}` }),
      renewLock: () => Promise.resolve({ ok: true as const }),
      releaseLock: () => Promise.resolve({ ok: true as const, outcome: 'released' as const }),
    },
    ledger: {
      recordAcquired: counted(
        (lock) => l.recordAcquired(lock),
        () => (acquired += 1),
      ),
      recordHeartbeat: counted((id, name, lease) => l.recordHeartbeat(id, name, lease)),
      recordReleased: counted((id) => l.recordReleased(id)),
      record: counted((result) => l.record(result)),
    },
    clock,
    random: Math.random,
  });
  /** Waits until no ledger call is in flight (twice in a row: a call may follow a resolved promise). */
  const settle = async (more: () => boolean = () => false) => {
    for (let quiet = 0; quiet < 2;) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      quiet = inFlight === 0 && !more() ? quiet + 1 : 0;
    }
  };
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const users = Math.max(1, Math.floor(holders / 4));
  const s0 = proxy.meter.snapshot();
  const held = Array.from({ length: holders }, (_, i) =>
    holder.hold(`bench-user-${i % users}`, '102', () => done),
  );
  await settle(() => acquired < holders);
  const s1 = proxy.meter.snapshot();
  await clock.advance(workSeconds * 1000 - 1, () => settle());
  const s2 = proxy.meter.snapshot();
  finish();
  await Promise.all(held);
  await settle();
  const s3 = proxy.meter.snapshot();
  const heartbeats = since(s1, s2);
  return {
    holders,
    heartbeatsPerHolder: (heartbeats.requests.UpdateItem ?? 0) / holders,
    acquire: since(s0, s1),
    heartbeats,
    release: since(s2, s3),
    all: since(s0, s3),
  } satisfies HoldersRun;
}

async function scanAll(client: DynamoDBClient, TableName: string, IndexName?: string) {
  const items: Array<Record<string, AttributeValue>> = [];
  let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName, IndexName, ExclusiveStartKey }));
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

/** `total` HELD items written straight to dynalite (not metered), `stale` of them with a heartbeat an hour old. */
async function seedOpenLocks(
  client: DynamoDBClient,
  tableName: string,
  total: number,
  stale: number,
  userId: string,
) {
  const now = Date.now();
  const staleIds: string[] = [];
  const item = (i: number): WriteRequest => {
    const isStale = i < stale;
    const lockId = `sweep-${isStale ? 'stale' : 'fresh'}-${i}@102`;
    if (isStale) staleIds.push(lockId);
    const beat = String(isStale ? now - 3_600_000 : now);
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
          leaseSeconds: { N: isStale ? '120' : '600' },
          sweepShard: { S: String(i % SWEEP_SHARDS) },
          openUserId: { S: userId },
        },
      },
    };
  };
  await writeAll(client, tableName, total, item);
  return staleIds;
}

/** BatchWriteItem of `total` items made by `item`, four writers at once, unprocessed items retried. */
export async function writeAll(
  client: DynamoDBClient,
  tableName: string,
  total: number,
  item: (i: number) => WriteRequest,
): Promise<void> {
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
  await Promise.all([writer(), writer(), writer(), writer()]);
}

export async function ledgerScale(h: Harness): Promise<void> {
  const s = h.sizes;
  const d = deployed();
  const tableName = await h.newTable();
  const proxy = await h.metered(tableName);

  h.log(`ledger scale: ${s.holders} holders, ${s.holderHeartbeats} heartbeats each`);
  const scale = await holdersRun(
    proxy,
    tableName,
    s.holders,
    s.holderHeartbeats * LOAD.heartbeatSeconds + 20,
  );
  h.log(`ledger scale: ${s.lifecycleHolders} five-minute lifecycles`);
  const life = await holdersRun(proxy, tableName, s.lifecycleHolders, LOAD.holdSeconds);
  // The release path's outcome writes for locks the ledger never had: released, then failed.
  const recorder = new DynamoLedger({ tableName, calls: httpDynamoCallsFor(proxy.client) });
  const releasePathIds = new Set<string>();
  const outcomes = async (kind: 'released' | 'failed') => {
    const before = proxy.meter.snapshot();
    await mapConcurrently(
      Array.from({ length: s.releasePath }, (_, i) => `release-path-${kind}-${i}@102`),
      16,
      async (lockId) => {
        releasePathIds.add(lockId);
        const result: LockResult =
          kind === 'released'
            ? { lockId, userId: 'bench-user', outcome: 'released', attempts: 1 }
            : {
                lockId,
                userId: 'bench-user',
                outcome: 'failed',
                attempts: 4,
                error: { kind: 'retryable', httpStatus: 503, message: 'KooDrive answered 503' },
              };
        await recorder.record(result);
      },
    );
    return since(before, proxy.meter.snapshot());
  };
  await outcomes('released');
  await outcomes('failed');

  const hot = hottest(scale.all, INDEX);
  const lockHot = hottest(scale.all, 'table');
  h.add('holders', {
    what: `${s.holders} holders through LockHolder (lease ${LOAD.leaseSeconds} s, heartbeat ${LOAD.heartbeatSeconds} s, virtual clock), ${s.holderHeartbeats} heartbeats each, then released: write units per partition key value`,
    goal: 'spread over many key values',
    measured: `index ${scale.all.byScope[INDEX]?.wu ?? 0} WU over ${partitionsOf(scale.all, INDEX).length} key value(s), the hottest (${hot?.key ?? '—'}) ${hot?.wu ?? 0} WU; table: at most ${lockHot?.wu ?? 0} WU on one lockId`,
    value: hot?.wu ?? 0,
  });
  const beats = Math.max(1, scale.heartbeats.requests.UpdateItem ?? 0);
  const perBeat = scale.heartbeats.wu / beats;
  const beatIndex = (scale.heartbeats.byScope[INDEX]?.wu ?? 0) / beats;
  h.add('heartbeat', {
    what: 'Write units (table + index) of one heartbeat, over every heartbeat of the holders run',
    goal: '1 WU, no index write',
    measured: `${perBeat} WU (index ${beatIndex})`,
    value: perBeat,
    ok: perBeat === 1 && beatIndex === 0,
  });
  const status = new Map(
    (await scanAll(h.ledgerDb.client, tableName)).map((i) => [i.lockId?.S, i.status?.S]),
  );
  const entries = await scanAll(h.ledgerDb.client, tableName, INDEX);
  const final = entries.filter((e) => ['RELEASED', 'EXPIRED'].includes(status.get(e.lockId?.S) ?? '')).length;
  const fromReleasePath = entries.filter((e) => releasePathIds.has(e.lockId?.S ?? '')).length;
  h.add('sparse-index', {
    what: `Sparse index: after every holder released and ${2 * s.releasePath} release-path outcomes (${s.releasePath} released, ${s.releasePath} failed) for locks never HELD, final and release-path items in the index`,
    goal: '0 and 0',
    measured: `${final} final and ${fromReleasePath} release-path items in the index (${entries.length} entries, ${entries.length - final} open)`,
    value: final + fromReleasePath,
    ok: final === 0 && fromReleasePath === 0,
  });
  const lifeWu = life.all.wu / life.holders;
  const lifeBill = lifecycleBill(lifeWu, life.all.ru / life.holders);
  h.add('lifecycle', {
    what: `One lock lifecycle (acquire, heartbeats for 5 minutes, release) in write units, ${s.lifecycleHolders} lifecycles through LockHolder`,
    // 12 WU before the user index (openByUser), which may add 2 per lifecycle (a put on acquire, a delete on release).
    goal: '≤ 14 WU',
    measured: `${lifeWu} WU = acquire ${life.acquire.wu / life.holders} + ${life.heartbeatsPerHolder} heartbeats ${life.heartbeats.wu / life.holders} + release ${life.release.wu / life.holders}; ${usd(lifeBill.usd * 1e6)} per million lifecycles`,
    value: lifeWu,
    ok: lifeWu <= 14,
  });

  // The sweep over a large ledger: `many` stale, then `few`, each in a fresh worker running the sweep handler.
  const [many, few] = s.sweepStale;
  const sweepTable = await h.newTable();
  const sweepProxy = await h.metered(sweepTable);
  h.log(`ledger scale: seeding ${s.sweepItems} open items (${many} stale)`);
  const seedStarted = performance.now();
  const staleIds = await seedOpenLocks(h.ledgerDb.client, sweepTable, s.sweepItems, many, h.userId);
  h.note(
    `Sweep: ${s.sweepItems} items seeded with BatchWriteItem in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s (not part of the figures).`,
  );
  await h.resetEmulator();
  const sweepOnce = async (expected: number) => {
    const w = await h.worker(h.stackEnv({ endpoint: sweepProxy.endpoint, tableName: sweepTable }));
    try {
      await w.call('prepare');
      await w.call('load', 'sweep');
      const before = sweepProxy.meter.snapshot();
      const inv = await w.call('invoke', 'sweep', {}, 300_000);
      const usage = since(before, sweepProxy.meter.snapshot());
      // A failed sweep is a figure too (Lambda retries it at the next period): its row says so.
      if (inv.error) return { ms: inv.ms, usage, released: 0, expected, error: inv.error.split('\n')[0] };
      const released = Number(inv.summary?.released ?? 0) + Number(inv.summary?.alreadyReleased ?? 0);
      if (released !== expected)
        h.note(
          `Sweep: released ${released} of ${expected} stale locks (${String(inv.summary?.failed)} failed, the rest not reached before its 300 s deadline).`,
        );
      return { ms: inv.ms, usage, released, expected, error: undefined };
    } finally {
      await w.stop();
    }
  };
  await h.emulator.call('seed', h.userId, { lockIds: staleIds });
  h.log(`ledger scale: sweeping ${many} stale of ${s.sweepItems}`);
  const a = await sweepOnce(many);
  // Stale locks the first sweep did not reach are made fresh again; then `few` fresh ones are made stale.
  const setBeat = (lockId: string, at: number, onlyHeld: boolean) =>
    h.ledgerDb.client.send(
      new UpdateItemCommand({
        TableName: sweepTable,
        Key: { lockId: { S: lockId } },
        UpdateExpression: 'SET heartbeatAt = :at',
        ...(onlyHeld
          ? { ConditionExpression: '#s = :held', ExpressionAttributeNames: { '#s': 'status' } }
          : {}),
        ExpressionAttributeValues: {
          ':at': { N: String(at) },
          ...(onlyHeld ? { ':held': { S: 'HELD' } } : {}),
        },
      }),
    );
  if (a.released < many)
    for (const id of staleIds) await setBeat(id, Date.now(), true).catch(() => undefined);
  const fewIds = Array.from({ length: few }, (_, i) => `sweep-fresh-${many + i}@102`);
  for (const id of fewIds) await setBeat(id, Date.now() - 3_600_000, false);
  await h.emulator.call('seed', h.userId, { lockIds: fewIds });
  h.log(`ledger scale: sweeping ${few} stale`);
  const b = await sweepOnce(few);
  for (const [id, r, stale] of [
    ['sweep-many', a, many],
    ['sweep-few', b, few],
  ] as const) {
    h.add(id, {
      what: `Sweep: ${s.sweepItems} open items, ${stale} stale (capacity model in front; L=${s.latencyMs} ms, C=${s.concurrency}; fresh process)`,
      goal: '≤ 30 s',
      measured: `${r.error ? `failed after ${ms(r.ms)}: ${r.error}; ` : ''}${ms(r.ms)} (${(r.ms / h.ideal(stale)).toFixed(2)} × the ${h.ideal(stale)} ms its releases need), released ${r.released} of ${r.expected}, ${requestCount(r.usage)} requests (${Object.entries(
        r.usage.requests,
      )
        .map(([op, k]) => `${op} ${k}`)
        .join(', ')}), ${r.usage.ru} RRU, ${r.usage.wu} WU`,
      value: r.ms,
      ok: !r.error && r.ms <= 30_000 && r.released === r.expected,
    });
  }
  const per1000 = s.sweepItems / 1000;
  const ruPer1000 = b.usage.ru / per1000;
  h.add('sweep-read', {
    what: `Sweep read cost per run per 1,000 open items (the ${few}-stale sweep's read units over ${s.sweepItems} open items)`,
    goal: 'stated',
    measured: `${ruPer1000.toFixed(1)} RRU (${usd(ruPer1000 * PRICES.dynamoReadUnit)} per sweep)`,
    value: ruPer1000,
  });
  const month = sweepMonthBill({
    sweeps: Math.round(MONTH_SECONDS / d.sweepPeriodSeconds),
    openLocks: 1000,
    ruPerSweepPer1000: ruPer1000,
    msPerSweepPer1000: b.ms / per1000,
    fixedMsPerSweep: 0,
    memoryMb: d.sweepMemoryMb,
    secretCacheSeconds: 300,
    heartbeatSeconds: LOAD.heartbeatSeconds,
    wuPerHeartbeat: perBeat,
  });
  h.add('sweep-month', {
    what: `A month of sweeps every ${d.sweepPeriodSeconds} s per 1,000 open locks (sweep reads, Lambda, secret reads), and those locks' heartbeats`,
    goal: 'stated',
    measured: `sweeps ${usd(month.usd)} + heartbeats ${usd(month.heartbeats.usd)} = ${usd(month.usd + month.heartbeats.usd)}`,
    value: month.usd + month.heartbeats.usd,
  });

  // The load model: per index key value k, W_k = N × (a_k / T + h_k / H + r_k / T) from the measured units.
  const n = scale.holders;
  const phase = (snap: MeterSnapshot, id: string) => snap.byPartition[id]?.wu ?? 0;
  const ids = new Set(
    [scale.acquire, scale.heartbeats, scale.release].flatMap((p) => Object.keys(p.byPartition)),
  );
  const perKey = [...ids]
    .filter((id) => !id.startsWith('table\u0000'))
    .map((id) => {
      const [scope = '', key = ''] = id.split('\u0000');
      const [ak, hk, rk] = [
        phase(scale.acquire, id) / n,
        phase(scale.heartbeats, id) / n / Math.max(1, scale.heartbeatsPerHolder),
        phase(scale.release, id) / n,
      ];
      const wuPerSecond =
        LOAD.holders * (ak / LOAD.holdSeconds + hk / LOAD.heartbeatSeconds + rk / LOAD.holdSeconds);
      return { scope, key, ak, hk, rk, wuPerSecond };
    })
    .sort((x, y) => y.wuPerSecond - x.wuPerSecond);
  const top = perKey[0];
  const maxHolders =
    top && top.wuPerSecond > 0 ? Math.floor((1000 / top.wuPerSecond) * LOAD.holders) : Infinity;
  const read = hottest(b.usage, INDEX, 'ru');
  const ruPerSecond = read ? (read.ru * (LOAD.holders / s.sweepItems)) / d.sweepPeriodSeconds : 0;
  h.add('load-model', {
    what: `Load model at ${LOAD.holders.toLocaleString('en-US')} holders (heartbeat ${LOAD.heartbeatSeconds} s, hold ${LOAD.holdSeconds} s, sweep every ${d.sweepPeriodSeconds} s): writes per second on the hottest index key value, from the measured units per key`,
    goal: '≤ 1,000 WU/s and ≤ 3,000 RRU/s per key',
    measured: `${Math.round(top?.wuPerSecond ?? 0)} WU/s on ${top?.scope ?? '—'} ${top?.key ?? ''} (limit reached at ≈ ${maxHolders.toLocaleString('en-US')} holders); hottest read key ${read?.key ?? '—'} ${ruPerSecond.toFixed(1)} RRU/s`,
    value: top?.wuPerSecond ?? 0,
    ok: (top?.wuPerSecond ?? 0) <= 1000 && ruPerSecond <= 3000,
  });
  h.markdown(
    [
      '#### Load model',
      '',
      `DynamoDB takes at most 1,000 write units and 3,000 read units per second on one partition key value (of the table or of an index). For every index key value k the scenario counts the write units k took per holder for an acquire (a_k), a heartbeat (h_k) and a release (r_k), from ${s.holders} holders. With N holders, heartbeat period H and mean hold time T: W_k = N × (a_k / T + h_k / H + r_k / T); a lock ID key of the table takes its own lock's writes only. At N = ${LOAD.holders.toLocaleString('en-US')}, H = ${LOAD.heartbeatSeconds} s, T = ${LOAD.holdSeconds} s:`,
      '',
      table(
        ['key value', 'a_k', 'h_k', 'r_k', `W_k at ${LOAD.holders / 1000}k (WU/s)`],
        perKey
          .slice(0, 3)
          .map((p) => [
            `${p.scope} ${p.key}`,
            p.ak.toFixed(3),
            p.hk.toFixed(3),
            p.rk.toFixed(3),
            Math.round(p.wuPerSecond).toLocaleString('en-US'),
          ]),
      ),
      '',
      '#### Cost',
      '',
      `Prices: ${PRICES.checked}. One lock's ledger over a 5-minute lifecycle: ${lifeWu} WU = ${usd(lifeBill.usd * 1e6)} per million lifecycles. A month (30 days) per 1,000 open locks:`,
      '',
      table(
        ['item', 'quantity', 'cost'],
        [
          ...billRows(month),
          ...billRows(month.heartbeats).map((r) => [`heartbeats: ${r[0] ?? ''}`, r[1] ?? '', r[2] ?? '']),
        ],
      ),
    ].join('\n'),
  );
}
