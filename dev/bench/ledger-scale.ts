/**
 * The ledger at scale in `npm run bench`: each goal measured for the current ledger (the sparse `openLocks` index)
 * and for the baseline (today's ledger before it: the `byStatus` index, dev/bench/baseline-ledger.ts) in the same
 * run, the same way. DynamoDB units come from the capacity model (dev/bench/capacity.ts) in front of dynalite;
 * CPU and memory from the packaged release function, built once per ledger (dev/bench/ledger-bundles.ts).
 * The load model and the cost model turn the measured counts into figures at 100,000 holders and in dollars.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoLedger } from '../../src/ledger/ledger';
import { ledgerTableInput, startDynalite, type LocalDynamo } from '../dynalite';
import { BaselineLedger } from './baseline-ledger';
import { baselineTableInput } from './baseline-table';
import { readServerlessYml, runBundle, startBundle } from './bundle';
import {
  hottest,
  partitionsOf,
  requestCount,
  since,
  startMeteredDynamo,
  tableShape,
  type MeterSnapshot,
  type MeteredDynamo,
} from './capacity';
import {
  billRows,
  lifecycleBill,
  MONTH_SECONDS,
  PRICES,
  sqsReleaseBill,
  sweepMonthBill,
  usd,
  type Bill,
} from './cost';
import type { EmulatorApi } from './emulator-process';
import type { Peer } from './ipc';
import { buildWithLedger, LEDGER_VARIANTS, type LedgerVariant } from './ledger-bundles';
import { ms, type Row } from './report';
import {
  baselineHolderLedger,
  BY_STATUS_INDEX,
  holdersRun,
  indexCensus,
  releasePathWrites,
  seedOpenLocks,
  SPARSE_INDEX,
  VirtualClock,
  type Census,
  type Design,
  type HoldersResult,
} from './scale';
import type { WorkerApi } from './worker';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

export interface Sizes {
  /** Holders of the scale run (goal 1) and of the 5-minute lifecycle run (goal 4). */
  holders: number;
  holderHeartbeats: number;
  lifecycleHolders: number;
  /** Release-path outcome writes for locks the ledger never had (goal 3). */
  releasePath: number;
  /** Locks per direct invoke for the CPU comparison (goal 5) and SQS batches of 10. */
  cpuN: number;
  sqsBatches: number;
  latencyMs: number;
  concurrency: number;
  memoryN: number;
  sweepItems: number;
  sweepStale: readonly [number, number];
}

export interface Context {
  sizes: Sizes;
  quick: boolean;
  userId: string;
  emulator: Peer<EmulatorApi>;
  /** The ledger dynalite of the run (item 1 and 6 use it). */
  ledgerDb: LocalDynamo;
  stackEnv(
    ledger?: { endpoint: string; tableName: string },
    extra?: Record<string, string>,
  ): Record<string, string>;
  worker(env: Record<string, string>): Promise<Peer<WorkerApi>>;
  heapFlags(mb: number): string[];
  add(id: string, row: Omit<Row, 'id' | 'item'>): void;
  log(text: string): void;
  notes: string[];
  dynamos: LocalDynamo[];
  closers: Array<() => Promise<void>>;
  scratch: string;
}

const DESIGNS = ['sparse', 'byStatus'] as const;
const INDEX: Record<Design, string> = { sparse: SPARSE_INDEX, byStatus: BY_STATUS_INDEX };
const LABEL: Record<Design, string> = { sparse: 'openLocks (new)', byStatus: 'byStatus (baseline)' };

/** What serverless.yml deploys, as the cost and load models need it. */
export function deployed(): {
  releaseMemoryMb: number;
  batchSize: number;
  maxConcurrency: number;
  sweepMemoryMb: number;
  sweepPeriodSeconds: number;
} {
  const doc = readServerlessYml();
  const params = doc.params?.default ?? {};
  const resolve = (value: unknown, fallback: number): number => {
    const param = typeof value === 'string' ? /^\$\{param:(\w+)\}$/.exec(value)?.[1] : undefined;
    const v = Number(param === undefined ? value : params[param]);
    return Number.isFinite(v) ? v : fallback;
  };
  const release = doc.functions?.release;
  const sqs = release?.events?.find((e) => 'sqs' in e)?.sqs as Record<string, unknown> | undefined;
  return {
    releaseMemoryMb: resolve(release?.memorySize ?? doc.provider?.memorySize, 1024),
    batchSize: resolve(sqs?.batchSize, 10),
    maxConcurrency: resolve(sqs?.maximumConcurrency, 5),
    sweepMemoryMb: resolve(doc.functions?.sweep?.memorySize ?? doc.provider?.memorySize, 1024),
    sweepPeriodSeconds: resolve(params.sweepPeriodSeconds, 60),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Measurements

interface DesignHolders {
  scale: HoldersResult;
  lifecycle: HoldersResult;
  /** Units of one release-path outcome for a lock the ledger never had (released, failed). */
  releasePathReleased: MeterSnapshot;
  releasePathFailed: MeterSnapshot;
  census: Census;
}

interface SweepRun {
  ms: number;
  usage: MeterSnapshot;
  released: number;
  expected: number;
}

interface DesignSweep {
  many: SweepRun;
  few: SweepRun;
}

interface Cpu {
  perLockMs: number;
  wallMs: number;
  released: number;
}

export interface ScaleFigures {
  holders: Partial<Record<Design, DesignHolders>>;
  sweep: Partial<Record<Design, DesignSweep>>;
  cpu: Record<string, Cpu>;
  sqs: Partial<Record<'sparse' | 'byStatus', { cpuPerLockMs: number; wallPerBatchMs: number }>>;
  rss: Partial<Record<Design, number>>;
}

export function newScaleFigures(): ScaleFigures {
  return { holders: {}, sweep: {}, cpu: {}, sqs: {}, rss: {} };
}

/** A dynalite with the current table and the baseline's, behind one metering proxy. */
async function meteredPair(ctx: Context): Promise<{
  db: LocalDynamo;
  proxy: MeteredDynamo;
  tables: Record<Design, string>;
  client: DynamoDBClient;
}> {
  const db = await startDynalite();
  ctx.dynamos.push(db);
  const baseline = `baseline-${randomUUID().slice(0, 8)}`;
  await db.client.send(new CreateTableCommand(baselineTableInput(baseline)));
  const proxy = await startMeteredDynamo(db.endpoint, {
    [db.tableName]: tableShape(ledgerTableInput(db.tableName)),
    [baseline]: tableShape(baselineTableInput(baseline)),
  });
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint: proxy.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  ctx.closers.push(async () => {
    client.destroy();
    await proxy.close();
  });
  return { db, proxy, tables: { sparse: db.tableName, byStatus: baseline }, client };
}

/** Goals 1–4: holders through LockHolder, their writes per key, the lifecycle, the release path, the census. */
export async function measureHolders(ctx: Context, m: ScaleFigures): Promise<void> {
  const s = ctx.sizes;
  const { db, proxy, tables, client } = await meteredPair(ctx);
  for (const design of DESIGNS) {
    const ledgerFor = (clock: VirtualClock) =>
      design === 'sparse'
        ? new DynamoLedger({ tableName: tables.sparse, calls: httpDynamoCallsFor(client), now: clock.now })
        : baselineHolderLedger(new BaselineLedger({ tableName: tables.byStatus, client, now: clock.now }));
    ctx.log(`ledger scale: ${s.holders} holders, ${s.holderHeartbeats} heartbeats each (${LABEL[design]})`);
    const c1 = new VirtualClock();
    const scale = await holdersRun({
      ledger: ledgerFor(c1),
      clock: c1,
      meter: proxy.meter,
      holders: s.holders,
      users: Math.max(1, Math.floor(s.holders / 4)),
      prefix: `${design}-scale`,
      workSeconds: s.holderHeartbeats * 40 + 20,
    });
    ctx.log(`ledger scale: ${s.lifecycleHolders} five-minute lifecycles (${LABEL[design]})`);
    const c2 = new VirtualClock();
    const lifecycle = await holdersRun({
      ledger: ledgerFor(c2),
      clock: c2,
      meter: proxy.meter,
      holders: s.lifecycleHolders,
      users: Math.max(1, Math.floor(s.lifecycleHolders / 4)),
      prefix: `${design}-life`,
      workSeconds: 300,
    });
    const recorder =
      design === 'sparse'
        ? new DynamoLedger({ tableName: tables.sparse, calls: httpDynamoCallsFor(client) })
        : new BaselineLedger({ tableName: tables.byStatus, client });
    const r0 = proxy.meter.snapshot();
    const releasedIds = await releasePathWrites(
      (r) => recorder.record(r),
      s.releasePath,
      `${design}-rp-ok`,
      'released',
    );
    const r1 = proxy.meter.snapshot();
    const failedIds = await releasePathWrites(
      (r) => recorder.record(r),
      s.releasePath,
      `${design}-rp-failed`,
      'failed',
    );
    const r2 = proxy.meter.snapshot();
    const census = await indexCensus(
      db.client,
      tables[design],
      INDEX[design],
      new Set([...releasedIds, ...failedIds]),
    );
    m.holders[design] = {
      scale,
      lifecycle,
      releasePathReleased: since(r0, r1),
      releasePathFailed: since(r1, r2),
      census,
    };
  }
  const sp = m.holders.sparse as DesignHolders;
  const bs = m.holders.byStatus as DesignHolders;

  // Goal 1: writes per partition key value, measured.
  const keyLine = (h: DesignHolders, design: Design) => {
    const idx = INDEX[design];
    const hot = hottest(h.scale.all, idx);
    const keys = partitionsOf(h.scale.all, idx).length;
    const table = hottest(h.scale.all, 'table');
    return `${LABEL[design]}: index ${h.scale.all.byScope[idx]?.wu ?? 0} WU over ${keys} key value(s), the hottest (${hot?.key ?? '—'}) ${hot?.wu ?? 0} WU; table: at most ${table?.wu ?? 0} WU on one lockId`;
  };
  ctx.add('10.1-holders', {
    what: `Scale: ${s.holders} holders through LockHolder (lease 120 s, heartbeat 40 s, virtual clock), ${s.holderHeartbeats} heartbeats each, then released: write units per partition key value (capacity model on dynalite)`,
    goal: 'spread over many key values',
    measured: `${keyLine(sp, 'sparse')} — vs ${keyLine(bs, 'byStatus')}`,
    value: hottest(sp.scale.all, SPARSE_INDEX)?.wu ?? 0,
  });

  // Goal 2: a heartbeat's units.
  const perBeat = (h: DesignHolders) =>
    h.scale.heartbeats.wu / Math.max(1, h.scale.heartbeats.requests.UpdateItem ?? 0);
  const beatIndex = (h: DesignHolders, design: Design) =>
    (h.scale.heartbeats.byScope[INDEX[design]]?.wu ?? 0) /
    Math.max(1, h.scale.heartbeats.requests.UpdateItem ?? 0);
  ctx.add('10.2-heartbeat', {
    what: 'Cost per heartbeat: write units (table + index) of one heartbeat, measured over every heartbeat of the scale run',
    goal: '1 WU, no index write',
    measured: `${perBeat(sp)} WU (index ${beatIndex(sp, 'sparse')}) — baseline ${perBeat(bs)} WU (index ${beatIndex(bs, 'byStatus')}, a delete and a put on key HELD)`,
    value: perBeat(sp),
    ok: perBeat(sp) === 1 && beatIndex(sp, 'sparse') === 0,
  });

  // Goal 3: what sits in the index at the end.
  const censusLine = (c: Census) =>
    `${c.final} final and ${c.releasePath} release-path items in the index (${c.entries} entries, ${c.open} open)`;
  ctx.add('10.3-sparse', {
    what: `Sparse index: after every holder released and ${2 * s.releasePath} release-path outcomes (${s.releasePath} released, ${s.releasePath} failed) for locks never HELD`,
    goal: '0 and 0',
    measured: `${censusLine(sp.census)} — baseline ${censusLine(bs.census)}`,
    value: sp.census.final + sp.census.releasePath,
    ok: sp.census.final === 0 && sp.census.releasePath === 0,
  });

  // Goal 4: the lifecycle's units.
  const life = (h: DesignHolders) => h.lifecycle.all.wu / h.lifecycle.holders;
  const lifeParts = (h: DesignHolders) =>
    `acquire ${h.lifecycle.acquire.wu / h.lifecycle.holders} + ${h.lifecycle.heartbeatsPerHolder} heartbeats ${h.lifecycle.heartbeats.wu / h.lifecycle.holders} + release ${h.lifecycle.release.wu / h.lifecycle.holders}`;
  ctx.add('10.4-lifecycle', {
    what: `Cost model: one lock lifecycle (acquire, heartbeats for 5 minutes, release) in write units, ${s.lifecycleHolders} lifecycles through LockHolder`,
    goal: '≤ 12 WU',
    measured: `${life(sp)} WU = ${lifeParts(sp)}; ${usd(lifecycleBill(life(sp), sp.lifecycle.all.ru / sp.lifecycle.holders).usd * 1e6)} per million lifecycles — baseline ${life(bs)} WU = ${lifeParts(bs)}; ${usd(lifecycleBill(life(bs), 0).usd * 1e6)} per million`,
    value: life(sp),
    ok: life(sp) <= 12,
  });
}

/** Goal 5: handler CPU per released lock and peak RSS, the packaged function with each ledger. */
export async function measureCpu(ctx: Context, m: ScaleFigures, bundle: string): Promise<void> {
  const s = ctx.sizes;
  const baselineTable = `baseline-${randomUUID().slice(0, 8)}`;
  await ctx.ledgerDb.client.send(new CreateTableCommand(baselineTableInput(baselineTable)));
  const baselineEnv = ctx.stackEnv({ endpoint: ctx.ledgerDb.endpoint, tableName: baselineTable });
  const bundles: Array<{ name: string; bundle: string; env: Record<string, string>; note: string }> = [
    {
      name: 'new',
      bundle,
      env: ctx.stackEnv(ctx.ledgerDb),
      note: 'the packaged function (low-level UpdateItem, values marshalled by hand)',
    },
    {
      name: 'no-ledger',
      bundle,
      env: ctx.stackEnv(),
      note: 'LOCK_LEDGER_TABLE unset: the KooDrive side alone',
    },
  ];
  for (const variant of Object.keys(LEDGER_VARIANTS) as LedgerVariant[]) {
    ctx.log(`ledger scale: building the release function with the ${variant} ledger`);
    const built = await buildWithLedger(variant, join(ctx.scratch, `ledger-${variant}`));
    bundles.push({
      name: variant,
      bundle: built.bundle,
      env: variant === 'baseline' ? baselineEnv : ctx.stackEnv(ctx.ledgerDb),
      note: LEDGER_VARIANTS[variant],
    });
  }
  await ctx.emulator.call('reset');
  await ctx.emulator.call('latency', s.latencyMs);
  const sqsEvent = (ids: string[]) => ({
    Records: ids.map((lockId, i) => ({
      messageId: `bench-${randomUUID()}-${i}`,
      receiptHandle: `bench-${i}`,
      body: JSON.stringify({ lockId, userId: ctx.userId }),
      attributes: { ApproximateReceiveCount: '1' },
      messageAttributes: {},
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:bench-release',
      awsRegion: 'us-east-1',
    })),
  });
  for (const b of bundles) {
    ctx.log(
      `ledger scale: handler CPU per lock, ${b.name} (N=${s.cpuN}, L=${s.latencyMs} ms, C=${s.concurrency})`,
    );
    const { peer } = await startBundle(b.bundle, b.env);
    try {
      const invoke = async (event: unknown) => {
        const inv = await peer.call('invoke', event);
        if (inv.error) throw new Error(`${b.name}: ${inv.error}`);
        return inv;
      };
      await invoke({
        lockIds: await ctx.emulator.call('seed', ctx.userId, { count: s.cpuN }),
        userId: ctx.userId,
      });
      const warm = await invoke({
        lockIds: await ctx.emulator.call('seed', ctx.userId, { count: s.cpuN }),
        userId: ctx.userId,
      });
      m.cpu[b.name] = {
        perLockMs: warm.cpuMs / s.cpuN,
        wallMs: warm.ms,
        released: Number(warm.summary?.released ?? 0),
      };
      if (b.name === 'new' || b.name === 'baseline') {
        let cpu = 0;
        let wall = 0;
        for (let i = 0; i < s.sqsBatches; i++) {
          const inv = await invoke(sqsEvent(await ctx.emulator.call('seed', ctx.userId, { count: 10 })));
          if (inv.summary?.batchItemFailures !== 0)
            throw new Error(`${b.name}: SQS batch failures ${JSON.stringify(inv.summary)}`);
          cpu += inv.cpuMs;
          wall += inv.ms;
        }
        m.sqs[b.name === 'new' ? 'sparse' : 'byStatus'] = {
          cpuPerLockMs: cpu / (10 * s.sqsBatches),
          wallPerBatchMs: wall / s.sqsBatches,
        };
      }
    } finally {
      await peer.stop();
    }
  }
  const cpu = (name: string) => m.cpu[name]?.perLockMs ?? NaN;
  ctx.add('10.5-cpu', {
    what: `CPU: handler CPU per released lock with the ledger on (packaged release function, warm direct invoke, N=${s.cpuN}, L=${s.latencyMs} ms, C=${s.concurrency})`,
    goal: '≤ 0.30 ms',
    measured: `${cpu('new').toFixed(3)} ms — baseline ${cpu('baseline').toFixed(3)} ms; without the ledger ${cpu('no-ledger').toFixed(3)} ms; SQS batches of 10: ${m.sqs.sparse?.cpuPerLockMs.toFixed(3)} ms per lock (baseline ${m.sqs.byStatus?.cpuPerLockMs.toFixed(3)})`,
    value: cpu('new'),
    ok: cpu('new') <= 0.3,
  });
  ctx.add('10.5-variants', {
    what: 'CPU: the outcome write done other ways (each a build of the release function with that ledger; same measurement)',
    goal: '—',
    measured: bundles
      .filter((b) => b.name !== 'new')
      .map(
        (b) =>
          `${b.name} ${cpu(b.name).toFixed(3)} ms (${b.note}; ${cpu(b.name) >= cpu('new') ? '+' : ''}${(cpu(b.name) - cpu('new')).toFixed(3)} vs new)`,
      )
      .join('; '),
    value: cpu('coalesced'),
  });

  ctx.log(`ledger scale: peak RSS releasing ${s.memoryN} locks, baseline bundle`);
  await ctx.emulator.call('reset');
  const ids = await ctx.emulator.call('seed', ctx.userId, { count: s.memoryN });
  const base = bundles.find((b) => b.name === 'baseline');
  if (base) {
    const run = await runBundle(base.bundle, {
      env: base.env,
      events: [{ lockIds: ids, userId: ctx.userId }],
      nodeArgs: ctx.heapFlags(128),
    });
    m.rss.byStatus = run.vmHwmMb ?? run.maxRssMb;
  }
}

/** Goal 6: one sweep over a large ledger, each design in its own dynalite behind a metering proxy. */
export async function measureSweep(ctx: Context, m: ScaleFigures): Promise<void> {
  const s = ctx.sizes;
  const [many, few] = s.sweepStale;
  for (const design of DESIGNS) {
    const db = await startDynalite();
    ctx.dynamos.push(db);
    let table = db.tableName;
    if (design === 'byStatus') {
      table = `baseline-${randomUUID().slice(0, 8)}`;
      await db.client.send(new CreateTableCommand(baselineTableInput(table)));
    }
    const proxy = await startMeteredDynamo(db.endpoint, {
      [table]: tableShape(design === 'sparse' ? ledgerTableInput(table) : baselineTableInput(table)),
    });
    ctx.closers.push(() => proxy.close());
    ctx.log(`ledger scale: seeding ${s.sweepItems} open locks (${many} stale) for ${LABEL[design]}`);
    const seedStarted = performance.now();
    const prefix = `${design}-sweep`;
    const staleIds = await seedOpenLocks(db.client, table, design, s.sweepItems, many, prefix, ctx.userId);
    ctx.notes.push(
      `Ledger scale, sweep: ${s.sweepItems} items seeded for ${LABEL[design]} with BatchWriteItem in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s (not part of the figures).`,
    );
    await ctx.emulator.call('reset');
    await ctx.emulator.call('latency', s.latencyMs);
    const sweepOnce = async (expected: number) => {
      const w = await ctx.worker(ctx.stackEnv({ endpoint: proxy.endpoint, tableName: table }));
      try {
        await w.call('prepare');
        await w.call('load', 'sweep');
        const before = proxy.meter.snapshot();
        let released: number;
        let took: number;
        let failed: number;
        if (design === 'sparse') {
          const inv = await w.call('invoke', 'sweep', {}, 300_000);
          if (inv.error) throw new Error(`sweep failed: ${inv.error}`);
          released = Number(inv.summary?.released ?? 0) + Number(inv.summary?.alreadyReleased ?? 0);
          failed = Number(inv.summary?.failed ?? 0);
          took = inv.ms;
        } else {
          const run = await w.call('baselineSweep', table, 900, 1000, s.concurrency);
          released = run.released;
          failed = run.failed;
          took = run.ms;
        }
        if (released !== expected) {
          ctx.notes.push(
            `Ledger scale, sweep: the ${LABEL[design]} sweep released ${released} of ${expected} stale locks (${failed} failed, the rest not reached before its 300 s deadline).`,
          );
        }
        return { ms: took, usage: since(before, proxy.meter.snapshot()), released, expected };
      } finally {
        await w.stop();
      }
    };
    await ctx.emulator.call('seed', ctx.userId, { lockIds: staleIds });
    ctx.log(`ledger scale: sweeping ${many} stale of ${s.sweepItems} (${LABEL[design]})`);
    const a = await sweepOnce(many);
    // Stale locks the first sweep did not reach are made fresh again: the second sweep sees `few` stale.
    if (a.released < many) {
      const now = String(Date.now());
      for (const lockId of staleIds) {
        await db.client
          .send(
            new UpdateItemCommand({
              TableName: table,
              Key: { lockId: { S: lockId } },
              UpdateExpression: 'SET heartbeatAt = :now',
              ConditionExpression: '#s = :held',
              ExpressionAttributeNames: { '#s': 'status' },
              ExpressionAttributeValues: { ':now': { N: now }, ':held': { S: 'HELD' } },
            }),
          )
          .catch(() => undefined);
      }
    }
    const fewIds = Array.from({ length: few }, (_, i) => `${prefix}-fresh-${many + i}@102`);
    const hourAgo = String(Date.now() - 3_600_000);
    for (const lockId of fewIds) {
      await db.client.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { lockId: { S: lockId } },
          UpdateExpression: 'SET heartbeatAt = :old',
          ExpressionAttributeValues: { ':old': { N: hourAgo } },
        }),
      );
    }
    await ctx.emulator.call('seed', ctx.userId, { lockIds: fewIds });
    ctx.log(`ledger scale: sweeping ${few} stale (${LABEL[design]})`);
    const b = await sweepOnce(few);
    m.sweep[design] = { many: a, few: b };
  }
  const sp = m.sweep.sparse as DesignSweep;
  const bs = m.sweep.byStatus as DesignSweep;
  const line = (r: SweepRun) =>
    `${ms(r.ms)}, released ${r.released} of ${r.expected}, ${requestCount(r.usage)} requests (${Object.entries(
      r.usage.requests,
    )
      .map(([op, n]) => `${op} ${n}`)
      .join(', ')}), ${r.usage.ru} RRU, ${r.usage.wu} WU`;
  for (const [id, key, stale] of [
    ['10.6-sweep-many', 'many', many],
    ['10.6-sweep-few', 'few', few],
  ] as const) {
    ctx.add(id, {
      what: `Sweep at scale: ${s.sweepItems} open locks, ${stale} stale (dynalite, capacity model in front; L=${s.latencyMs} ms, C=${s.concurrency}; fresh process)`,
      goal: '≤ 30 s',
      measured: `${line(sp[key])} — baseline ${line(bs[key])}`,
      value: sp[key].ms,
      ok: sp[key].ms <= 30_000 && sp[key].released === sp[key].expected,
    });
  }
  const per1000 = (r: DesignSweep['few']) => r.usage.ru / (s.sweepItems / 1000);
  ctx.add('10.2-sweep-read', {
    what: `Sweep read cost per run per 1,000 held locks (the ${few}-stale sweep's read units over ${s.sweepItems} open locks)`,
    goal: 'stated',
    measured: `${per1000(sp.few).toFixed(1)} RRU (${usd(per1000(sp.few) * PRICES.dynamoReadUnit)} per sweep) — baseline ${per1000(bs.few).toFixed(2)} RRU`,
    value: per1000(sp.few),
  });
}

// ---------------------------------------------------------------------------------------------------------
// The load model and the cost model

export interface LoadFigures {
  design: Design;
  /** Write units per holder per operation, on the hottest key of each scope. */
  perKey: Array<{
    scope: string;
    key: string;
    acquire: number;
    heartbeat: number;
    release: number;
    wuPerSecond: number;
  }>;
  hottest: { scope: string; key: string; wuPerSecond: number };
  maxHolders: number;
  /** Reads per second on the hottest read key at N (sweeps every period). */
  hottestRead: { scope: string; key: string; ruPerSecond: number } | undefined;
}

export const LOAD = { holders: 100_000, heartbeatSeconds: 40, leaseSeconds: 120, holdSeconds: 300 } as const;

/**
 * Per partition key value k of every scope: W_k = N × (a_k / T + h_k / H + r_k / T), with a_k, h_k, r_k the
 * write units k took per holder for acquire, per heartbeat, and for release (measured), N holders, H the
 * heartbeat period, T the mean hold time (acquire and release once per T).
 */
export function loadModel(
  design: Design,
  h: DesignHolders,
  sweep: DesignSweep | undefined,
  sweeps: { items: number; periodSeconds: number },
): LoadFigures {
  const N = LOAD.holders;
  const n = h.scale.holders;
  const beats = Math.max(1, h.scale.heartbeatsPerHolder);
  const ids = new Set([
    ...Object.keys(h.scale.acquire.byPartition),
    ...Object.keys(h.scale.heartbeats.byPartition),
    ...Object.keys(h.scale.release.byPartition),
  ]);
  const phase = (snap: MeterSnapshot, id: string) => snap.byPartition[id]?.wu ?? 0;
  const perKey = [...ids]
    .filter((id) => !id.startsWith('table\u0000'))
    .map((id) => {
      const [scope = '', key = ''] = id.split('\u0000');
      const a = phase(h.scale.acquire, id) / n;
      const hb = phase(h.scale.heartbeats, id) / n / beats;
      const r = phase(h.scale.release, id) / n;
      return {
        scope,
        key,
        acquire: a,
        heartbeat: hb,
        release: r,
        wuPerSecond: N * (a / LOAD.holdSeconds + hb / LOAD.heartbeatSeconds + r / LOAD.holdSeconds),
      };
    });
  // The table's key values are lock IDs: one takes its own lock's writes only, whatever N.
  const lockKey = [...ids]
    .filter((id) => id.startsWith('table\u0000'))
    .map((id) => ({
      scope: 'table',
      key: 'one lockId',
      acquire: phase(h.scale.acquire, id),
      heartbeat: phase(h.scale.heartbeats, id) / beats,
      release: phase(h.scale.release, id),
      wuPerSecond: 0,
    }))
    .map((p) => ({
      ...p,
      wuPerSecond:
        p.acquire / LOAD.holdSeconds + p.heartbeat / LOAD.heartbeatSeconds + p.release / LOAD.holdSeconds,
    }))
    .reduce<LoadFigures['perKey'][number] | undefined>(
      (best, p) => (!best || p.wuPerSecond > best.wuPerSecond ? p : best),
      undefined,
    );
  if (lockKey) perKey.push(lockKey);
  const hottestKey = perKey.reduce(
    (best, p) => (p.wuPerSecond > best.wuPerSecond ? p : best),
    perKey[0] ?? { scope: '', key: '', acquire: 0, heartbeat: 0, release: 0, wuPerSecond: 0 },
  );
  const indexHot = perKey
    .filter((p) => p.scope !== 'table')
    .reduce((best, p) => (p.wuPerSecond > best ? p.wuPerSecond : best), 0);
  const maxHolders = indexHot > 0 ? Math.floor((1000 / indexHot) * N) : Infinity;
  let hottestRead: LoadFigures['hottestRead'];
  if (sweep) {
    const r = hottest(sweep.few.usage, INDEX[design], 'ru');
    if (r)
      hottestRead = {
        scope: r.scope,
        key: r.key,
        ruPerSecond: (r.ru * (N / sweeps.items)) / sweeps.periodSeconds,
      };
  }
  return {
    design,
    perKey: perKey.sort((a, b) => b.wuPerSecond - a.wuPerSecond),
    hottest: hottestKey,
    maxHolders,
    hottestRead,
  };
}

export function loadRows(ctx: Context, m: ScaleFigures): LoadFigures[] {
  const d = deployed();
  const out: LoadFigures[] = [];
  for (const design of DESIGNS) {
    const h = m.holders[design];
    if (!h) continue;
    out.push(
      loadModel(design, h, m.sweep[design], {
        items: ctx.sizes.sweepItems,
        periodSeconds: d.sweepPeriodSeconds,
      }),
    );
  }
  const sp = out.find((f) => f.design === 'sparse');
  const bs = out.find((f) => f.design === 'byStatus');
  if (sp && bs) {
    const text = (f: LoadFigures) =>
      `${Math.round(f.hottest.wuPerSecond)} WU/s on ${f.hottest.scope} ${f.hottest.key} (limit reached at ≈ ${f.maxHolders.toLocaleString('en-US')} holders)${f.hottestRead ? `; hottest read key ${f.hottestRead.key} ${f.hottestRead.ruPerSecond.toFixed(1)} RRU/s` : ''}`;
    ctx.add('10.1-load', {
      what: `Load model at ${LOAD.holders.toLocaleString('en-US')} holders (heartbeat ${LOAD.heartbeatSeconds} s, hold ${LOAD.holdSeconds} s, sweep every ${d.sweepPeriodSeconds} s): writes per second on the hottest partition key value of the table or any index, from the measured units per key`,
      goal: '≤ 1,000 WU/s and ≤ 3,000 RRU/s per key',
      measured: `${text(sp)} — baseline ${text(bs)}`,
      value: sp.hottest.wuPerSecond,
      ok: sp.hottest.wuPerSecond <= 1000 && (sp.hottestRead?.ruPerSecond ?? 0) <= 3000,
    });
  }
  return out;
}

export interface Bills {
  lifecycle: Partial<Record<Design, Bill>>;
  sqs: Partial<Record<Design, ReturnType<typeof sqsReleaseBill>>>;
  sqsAlternatives: Array<{ what: string; bill: ReturnType<typeof sqsReleaseBill> }>;
  month: Partial<Record<Design, ReturnType<typeof sweepMonthBill>>>;
  assumptions: string[];
}

/** Goal 4: the bills, from the measured counts. */
export function costRows(ctx: Context, m: ScaleFigures): Bills {
  const d = deployed();
  const bills: Bills = { lifecycle: {}, sqs: {}, sqsAlternatives: [], month: {}, assumptions: [] };
  const koodriveLatencyMs = 100;
  const dynamoLatencyMs = 10;
  bills.assumptions.push(
    `Prices: ${PRICES.checked}: DynamoDB on-demand $0.625 per million write request units and $0.125 per million read request units; Lambda arm64 $0.0000133334 per GB-s and $0.20 per million requests; SQS standard $0.40 per million requests (64 KB each); Secrets Manager $0.05 per 10,000 calls; scheduled EventBridge rules invoke Lambda free. Free tiers left out.`,
    `Production latencies assumed (not measurable here): a KooDrive DELETE answers in ${koodriveLatencyMs} ms, a DynamoDB write in ${dynamoLatencyMs} ms; an invocation of a batch of ${d.batchSize} takes ⌈${d.batchSize} / RELEASE_CONCURRENCY 8⌉ KooDrive rounds + one ledger write + its measured CPU × 1769 / memory MB.`,
  );
  for (const design of DESIGNS) {
    const h = m.holders[design];
    if (h)
      bills.lifecycle[design] = lifecycleBill(
        h.lifecycle.all.wu / h.lifecycle.holders,
        h.lifecycle.all.ru / h.lifecycle.holders,
      );
    const sqs = m.sqs[design];
    if (h && sqs) {
      const rp = h.releasePathReleased;
      const inputs = {
        releases: 1_000_000,
        batchSize: d.batchSize,
        memoryMb: d.releaseMemoryMb,
        cpuMsPerLock: sqs.cpuPerLockMs,
        koodriveLatencyMs,
        dynamoLatencyMs,
        concurrency: 8,
        wuPerRelease: rp.wu / ctx.sizes.releasePath,
        ruPerRelease: rp.ru / ctx.sizes.releasePath,
        producersBatchSends: false,
        secretCacheSeconds: 300,
        containers: d.maxConcurrency,
      };
      bills.sqs[design] = sqsReleaseBill(inputs);
      if (design === 'sparse') {
        bills.sqsAlternatives.push(
          {
            what: 'producers send with SendMessageBatch (10 a request)',
            bill: sqsReleaseBill({ ...inputs, producersBatchSends: true }),
          },
          { what: 'release at 256 MB', bill: sqsReleaseBill({ ...inputs, memoryMb: 256 }) },
          { what: 'both', bill: sqsReleaseBill({ ...inputs, memoryMb: 256, producersBatchSends: true }) },
          {
            what: `each lock was an open ledger item (its outcome write also leaves the index: ${h.lifecycle.release.wu / h.lifecycle.holders} WU)`,
            bill: sqsReleaseBill({ ...inputs, wuPerRelease: h.lifecycle.release.wu / h.lifecycle.holders }),
          },
        );
      }
    }
    const sw = m.sweep[design];
    if (h && sw) {
      const per1000 = ctx.sizes.sweepItems / 1000;
      bills.month[design] = sweepMonthBill({
        sweeps: Math.round(MONTH_SECONDS / d.sweepPeriodSeconds),
        openLocks: 1000,
        ruPerSweepPer1000: sw.few.usage.ru / per1000,
        msPerSweepPer1000: sw.few.ms / per1000,
        fixedMsPerSweep: 0,
        memoryMb: d.sweepMemoryMb,
        secretCacheSeconds: 300,
        heartbeatSeconds: LOAD.heartbeatSeconds,
        wuPerHeartbeat: h.scale.heartbeats.wu / Math.max(1, h.scale.heartbeats.requests.UpdateItem ?? 0),
      });
    }
  }
  const sqsSp = bills.sqs.sparse;
  const sqsBs = bills.sqs.byStatus;
  if (sqsSp && sqsBs) {
    ctx.add('10.4-sqs', {
      what: `Cost model: 1,000,000 releases through SQS all in (batch ${d.batchSize}, ${d.releaseMemoryMb} MB, measured CPU and DynamoDB units; KooDrive ${koodriveLatencyMs} ms assumed)`,
      goal: '≤ $1.20',
      measured: `${usd(sqsSp.usd)} (${sqsSp.lines.map((l) => `${l.item.split(' (')[0]} ${usd(l.usd)}`).join(', ')}) — baseline ${usd(sqsBs.usd)}; ${bills.sqsAlternatives.map((a) => `${a.what}: ${usd(a.bill.usd)}`).join('; ')}`,
      value: sqsSp.usd,
      ok: sqsSp.usd <= 1.2,
    });
  }
  const mSp = bills.month.sparse;
  const mBs = bills.month.byStatus;
  if (mSp && mBs) {
    ctx.add('10.4-month', {
      what: `Cost model: a month of sweeps every ${d.sweepPeriodSeconds} s per 1,000 open locks (sweep reads, Lambda, secret reads), and those locks' heartbeats`,
      goal: 'stated',
      measured: `sweeps ${usd(mSp.usd)} + heartbeats ${usd(mSp.heartbeats.usd)} = ${usd(mSp.usd + mSp.heartbeats.usd)} — baseline sweeps ${usd(mBs.usd)} + heartbeats ${usd(mBs.heartbeats.usd)} = ${usd(mBs.usd + mBs.heartbeats.usd)}`,
      value: mSp.usd + mSp.heartbeats.usd,
    });
  }
  return bills;
}

// ---------------------------------------------------------------------------------------------------------
// The README sections

const table = (header: string[], lines: string[][]) =>
  [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...lines.map((l) => `| ${l.join(' | ')} |`),
  ].join('\n');

export function loadSection(ctx: Context, figures: LoadFigures[], m: ScaleFigures): string {
  const d = deployed();
  const lines: string[] = [
    '#### Load model',
    '',
    `DynamoDB takes at most 1,000 write units and 3,000 read units per second on one partition key value (of the table or of an index); a throttled index throttles the table's writes too. For every key value k the benchmark counts the write units k took per holder for an acquire (a_k), a heartbeat (h_k) and a release (r_k), from ${ctx.sizes.holders} holders through LockHolder on dynalite (capacity model: item images before and after each write). With N holders, heartbeat period H and mean hold time T:`,
    '',
    "    W_k = N × (a_k / T + h_k / H + r_k / T)        (an index key; a lock ID key takes its own lock's writes only)",
    '    R_k = ρ_k × N / P                              (ρ_k: read units per open lock per sweep on k, P the sweep period)',
    '',
    `At N = ${LOAD.holders.toLocaleString('en-US')}, H = ${LOAD.heartbeatSeconds} s (lease ${LOAD.leaseSeconds} s), T = ${LOAD.holdSeconds} s, P = ${d.sweepPeriodSeconds} s:`,
    '',
  ];
  const rows: string[][] = [];
  for (const f of figures) {
    for (const p of f.perKey.filter((x) => x.scope !== 'table').slice(0, f.design === 'sparse' ? 3 : 2)) {
      rows.push([
        LABEL[f.design],
        `${p.scope} ${p.key}`,
        p.acquire.toFixed(3),
        p.heartbeat.toFixed(3),
        p.release.toFixed(3),
        Math.round(p.wuPerSecond).toLocaleString('en-US'),
      ]);
    }
    const t = f.perKey.find((x) => x.scope === 'table');
    if (t)
      rows.push([
        LABEL[f.design],
        'table, one lockId (its own lock)',
        String(t.acquire),
        String(t.heartbeat),
        String(t.release),
        t.wuPerSecond.toFixed(3),
      ]);
  }
  lines.push(
    table(['design', 'key value', 'a_k', 'h_k', 'r_k', `W_k at ${LOAD.holders / 1000}k (WU/s)`], rows),
    '',
  );
  for (const f of figures) {
    lines.push(
      `- ${LABEL[f.design]}: the hottest key takes ${Math.round(f.hottest.wuPerSecond).toLocaleString('en-US')} WU/s (${f.hottest.scope} ${f.hottest.key}); 1,000 WU/s is reached at about ${f.maxHolders.toLocaleString('en-US')} holders${f.hottestRead ? `; the sweep's hottest read key (${f.hottestRead.key}) takes ${f.hottestRead.ruPerSecond.toFixed(1)} RRU/s` : ''}.`,
    );
  }
  const sp = figures.find((f) => f.design === 'sparse');
  if (sp) {
    lines.push(
      '',
      `The sparse index is written only on acquire and release, spread over ${m.holders.sparse ? partitionsOf(m.holders.sparse.scale.all, SPARSE_INDEX).length : 16} shards: a shard stays under 1,000 WU/s while N × 2 / (16 × T) ≤ 1,000, i.e. T ≥ N / 8,000 s (12.5 s at 100,000 holders). The measured a_k and r_k of the hottest shard (above 1/16 by the randomness of ${ctx.sizes.holders} shard draws) make the figure conservative.`,
    );
  }
  return lines.join('\n');
}

export function costSection(ctx: Context, bills: Bills, m: ScaleFigures): string {
  const lines: string[] = ['#### Cost', '', ...bills.assumptions.map((a) => `- ${a}`), ''];
  const lc = bills.lifecycle;
  if (lc.sparse && lc.byStatus) {
    lines.push(
      `One lock's ledger over a 5-minute lifecycle (acquire, 7 heartbeats, release; measured): ${lc.sparse.lines[0]?.quantity} WU = ${usd(lc.sparse.usd * 1e6)} per million lifecycles (baseline ${lc.byStatus.lines[0]?.quantity} WU = ${usd(lc.byStatus.usd * 1e6)}).`,
      '',
    );
  }
  for (const design of DESIGNS) {
    const b = bills.sqs[design];
    if (!b) continue;
    lines.push(
      `1,000,000 releases through SQS, ${LABEL[design]}: ${usd(b.usd)} (${b.invocations.toLocaleString('en-US')} invocations of ${b.durationMsPerInvocation} ms; measured ${m.sqs[design]?.cpuPerLockMs.toFixed(3)} ms CPU per lock)`,
      '',
      table(['item', 'quantity', 'cost'], billRows(b)),
      '',
    );
  }
  if (bills.sqsAlternatives.length) {
    lines.push(
      'Alternatives (new ledger): ' +
        bills.sqsAlternatives.map((a) => `${a.what}: ${usd(a.bill.usd)}`).join('; ') +
        '.',
      '',
    );
  }
  for (const design of DESIGNS) {
    const b = bills.month[design];
    if (!b) continue;
    lines.push(
      `A month (30 days) per 1,000 open locks, ${LABEL[design]}: sweeps ${usd(b.usd)}, heartbeats ${usd(b.heartbeats.usd)}`,
      '',
      table(
        ['item', 'quantity', 'cost'],
        [
          ...billRows(b),
          ...billRows(b.heartbeats).map((r) => [`heartbeats: ${r[0] ?? ''}`, r[1] ?? '', r[2] ?? '']),
        ],
      ),
      '',
    );
  }
  return lines.join('\n');
}
