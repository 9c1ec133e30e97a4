/**
 * What the ledger costs the release path, and which DynamoDB client keeps it small: the packaged release function
 * ("new": signed requests over undici) next to the same function with the ledger's calls through the AWS SDK v3
 * client ("sdk", the baseline: dev/bench/ledger-variants/sdk-client.ts), measured the same way in the same run,
 * interleaved where it is a median of fresh processes. Then the candidates alone (dynamo-clients.ts) and the cost
 * of a million SQS releases from the measured CPU.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { runBundle, median, startBundle } from './bundle';
import { PRICES, sqsReleaseBill, usd } from './cost';
import { CANDIDATES, measureClients, type ClientFigures } from './dynamo-clients';
import type { Context, ScaleFigures } from './ledger-scale';
import { deployed } from './ledger-scale';
import { buildWithLedger } from './ledger-bundles';
import { ms } from './report';

export interface LedgerCostSizes {
  loadRuns: number;
  coldRuns: number;
  /** Locks of the direct invokes (the whole-invocation latency goal and the CPU per lock). */
  directN: number;
  sqsBatches: number;
  memoryN: number;
  clients: { n: number; concurrency: number; rounds: number; warmup: number; loadRuns: number };
}

interface Side {
  loadMs: number;
  coldMs: number;
  cpuPerLockMs: number;
  directColdMs: number;
  directWarmMs: number;
  sqsBatchMs: number;
  sqsCpuPerLockMs: number;
  rssMb: number;
}

export interface LedgerCostFigures {
  sides: Partial<Record<'new' | 'sdk', Side>>;
  clients: ClientFigures[];
}

const BOUND_RATIO = 1.5;
/** The rows' item number in the tables (after the ledger-scale rows, 10.x). */
export const LEDGER_COST_ITEM = 11;

export async function measureLedgerCost(
  ctx: Context,
  m: ScaleFigures,
  packaged: string,
  sizes: LedgerCostSizes,
): Promise<LedgerCostFigures> {
  const s = ctx.sizes;
  ctx.log('ledger cost: building the release function with the ledger through the AWS SDK (the baseline)');
  const sdk = await buildWithLedger('sdk-client', join(ctx.scratch, 'ledger-cost-sdk'));
  const bundles = { new: packaged, sdk: sdk.bundle } as const;
  const env = ctx.stackEnv(ctx.ledgerDb);
  const figures: LedgerCostFigures = { sides: {}, clients: [] };
  const loads: Record<'new' | 'sdk', number[]> = { new: [], sdk: [] };
  const colds: Record<'new' | 'sdk', number[]> = { new: [], sdk: [] };
  await ctx.emulator.call('reset');
  await ctx.emulator.call('latency', s.latencyMs);
  ctx.log(
    `ledger cost: module load (${sizes.loadRuns}) and cold first release (${sizes.coldRuns}), interleaved`,
  );
  for (let i = 0; i < Math.max(sizes.loadRuns, sizes.coldRuns); i++) {
    for (const side of ['new', 'sdk'] as const) {
      if (i < sizes.loadRuns) loads[side].push((await runBundle(bundles[side])).loadMs);
      if (i < sizes.coldRuns) {
        const lockIds = await ctx.emulator.call('seed', ctx.userId, { count: 1 });
        const run = await runBundle(bundles[side], { env, events: [{ lockIds, userId: ctx.userId }] });
        if (run.invocations[0]?.summary?.released !== 1) throw new Error(`${side}: the cold release failed`);
        colds[side].push(run.firstMs ?? NaN);
      }
    }
  }
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
  for (const side of ['new', 'sdk'] as const) {
    ctx.log(
      `ledger cost, ${side}: direct invokes of ${sizes.directN} locks (cold, warm), ${sizes.sqsBatches} SQS batches`,
    );
    const { peer } = await startBundle(bundles[side], env);
    let direct: { cold: number; warm: number; cpu: number };
    let sqs = { ms: 0, cpu: 0 };
    try {
      const invoke = async (event: unknown) => {
        const inv = await peer.call('invoke', event);
        if (inv.error) throw new Error(`${side}: ${inv.error}`);
        return inv;
      };
      const seed = (count: number) => ctx.emulator.call('seed', ctx.userId, { count });
      const cold = await invoke({ lockIds: await seed(sizes.directN), userId: ctx.userId });
      const warm = await invoke({ lockIds: await seed(sizes.directN), userId: ctx.userId });
      if (warm.summary?.released !== sizes.directN)
        throw new Error(`${side}: ${JSON.stringify(warm.summary)}`);
      direct = { cold: cold.ms, warm: warm.ms, cpu: warm.cpuMs / sizes.directN };
      const batchMs: number[] = [];
      for (let i = 0; i < sizes.sqsBatches; i++) {
        const inv = await invoke(sqsEvent(await seed(10)));
        if (inv.summary?.batchItemFailures !== 0) throw new Error(`${side}: ${JSON.stringify(inv.summary)}`);
        batchMs.push(inv.ms);
        sqs = { ms: sqs.ms, cpu: sqs.cpu + inv.cpuMs };
      }
      sqs = { ms: median(batchMs), cpu: sqs.cpu / (10 * sizes.sqsBatches) };
    } finally {
      await peer.stop();
    }
    ctx.log(`ledger cost, ${side}: peak RSS releasing ${sizes.memoryN} locks`);
    await ctx.emulator.call('latency', 0);
    const rss = await runBundle(bundles[side], {
      env,
      events: [
        {
          lockIds: await ctx.emulator.call('seed', ctx.userId, { count: sizes.memoryN }),
          userId: ctx.userId,
        },
      ],
      nodeArgs: ctx.heapFlags(128),
    });
    await ctx.emulator.call('latency', s.latencyMs);
    figures.sides[side] = {
      loadMs: median(loads[side]),
      coldMs: median(colds[side]),
      cpuPerLockMs: direct.cpu,
      directColdMs: direct.cold,
      directWarmMs: direct.warm,
      sqsBatchMs: sqs.ms,
      sqsCpuPerLockMs: sqs.cpu,
      rssMb: rss.vmHwmMb ?? rss.maxRssMb,
    };
  }
  figures.clients = await measureClients(ctx.ledgerDb, sizes.clients, ctx.scratch, (text) => ctx.log(text));
  addRows(ctx, m, figures, sizes);
  return figures;
}

function addRows(ctx: Context, m: ScaleFigures, f: LedgerCostFigures, sizes: LedgerCostSizes): void {
  const n = f.sides.new;
  const b = f.sides.sdk;
  if (!n || !b) return;
  const s = ctx.sizes;
  const vs = (a: number, base: number, fmt: (v: number) => string) =>
    `${fmt(a)} — baseline (AWS SDK client) ${fmt(base)}, ${(a / base).toFixed(2)}×`;
  const per = (v: number) => `${v.toFixed(3)} ms`;
  const aws4 = f.clients.find((c) => c.name === 'aws4-undici');
  const requestCpu = aws4 ? median(aws4.cpuMsPerRequest) : NaN;
  ctx.add('ledger.cpu', {
    what: `CPU per released lock with the ledger on (packaged release function, warm direct invoke, N=${sizes.directN}, L=${s.latencyMs} ms, C=${s.concurrency})`,
    goal: '≤ 0.50 ms',
    measured: `${vs(n.cpuPerLockMs, b.cpuPerLockMs, per)}; SQS batches of 10: ${per(n.sqsCpuPerLockMs)} (baseline ${per(b.sqsCpuPerLockMs)}); each lock costs the outcome write and its share of the live-lease read before the DELETE (one consistent BatchGetItem per 100 locks of an invocation: an SQS batch of 10 reads in one request) (the client alone: ${per(requestCpu)} per request)`,
    value: n.cpuPerLockMs,
    ok: n.cpuPerLockMs <= 0.5,
  });
  ctx.add('ledger.load', {
    what: `Module load of the packaged release bundle (median of ${sizes.loadRuns} fresh processes, interleaved)`,
    goal: '≤ 60 ms',
    measured: vs(n.loadMs, b.loadMs, ms),
    value: n.loadMs,
    ok: n.loadMs <= 60,
  });
  ctx.add('ledger.cold', {
    what: `Cold first release with the ledger (load + 1 lock + secret read + 1 UpdateItem; median of ${sizes.coldRuns} fresh processes)`,
    goal: '≤ 120 ms',
    measured: vs(n.coldMs, b.coldMs, ms),
    value: n.coldMs,
    ok: n.coldMs <= 120,
  });
  ctx.add('ledger.rss', {
    what: `Peak RSS releasing ${sizes.memoryN} locks in one direct invoke (ledger on, L=0, V8 heap flags of a 128 MB Lambda)`,
    goal: '≤ 128 MB',
    measured: vs(n.rssMb, b.rssMb, (v) => `${v.toFixed(1)} MB`),
    value: n.rssMb,
    ok: n.rssMb <= 128,
  });
  const batchBound = Math.ceil(10 / s.concurrency) * s.latencyMs;
  ctx.add('ledger.sqs-batch', {
    what: `A whole SQS batch of 10 (warm; L=${s.latencyMs} ms, C=${s.concurrency}: bound ${batchBound} ms), median of ${sizes.sqsBatches}`,
    goal: `≤ ${BOUND_RATIO} × bound`,
    measured: `${ms(n.sqsBatchMs)} = ${(n.sqsBatchMs / batchBound).toFixed(2)} × — baseline ${ms(b.sqsBatchMs)} = ${(b.sqsBatchMs / batchBound).toFixed(2)} ×`,
    value: n.sqsBatchMs / batchBound,
    ok: n.sqsBatchMs / batchBound <= BOUND_RATIO,
  });
  const directBound = Math.ceil(sizes.directN / s.concurrency) * s.latencyMs;
  ctx.add('ledger.direct', {
    what: `A direct invoke of ${sizes.directN} locks (bound ${directBound} ms): first in a fresh process (secret read, connections), then warm`,
    goal: `≤ ${BOUND_RATIO} × bound`,
    measured: `first ${(n.directColdMs / directBound).toFixed(2)} ×, warm ${(n.directWarmMs / directBound).toFixed(2)} × — baseline first ${(b.directColdMs / directBound).toFixed(2)} ×, warm ${(b.directWarmMs / directBound).toFixed(2)} ×`,
    value: n.directColdMs / directBound,
    ok: n.directColdMs / directBound <= BOUND_RATIO,
  });
  const d = deployed();
  const inputs = {
    releases: 1_000_000,
    batchSize: d.batchSize,
    memoryMb: d.releaseMemoryMb,
    koodriveLatencyMs: 100,
    // Two ledger rounds per batch: the live-lease reads, then the outcome writes.
    dynamoLatencyMs: 20,
    concurrency: 8,
    wuPerRelease: 1,
    // The live-lease read before the DELETE: one consistent BatchGetItem per 100 locks, 1 RRU per item under 4 KB.
    ruPerRelease: 1,
    producersBatchSends: false,
    secretCacheSeconds: 300,
    containers: d.maxConcurrency,
  };
  const released = m.holders.sparse?.releasePathReleased;
  if (released) inputs.wuPerRelease = released.wu / s.releasePath;
  const ours = sqsReleaseBill({ ...inputs, cpuMsPerLock: n.sqsCpuPerLockMs });
  const base = sqsReleaseBill({ ...inputs, cpuMsPerLock: b.sqsCpuPerLockMs });
  const lean = sqsReleaseBill({
    ...inputs,
    cpuMsPerLock: n.sqsCpuPerLockMs,
    memoryMb: 256,
    producersBatchSends: true,
  });
  ctx.add('ledger.cost', {
    what: `1,000,000 releases through SQS all in (batch ${d.batchSize}, ${d.releaseMemoryMb} MB, measured CPU; per lock 1 RRU for the live-lease read and ${inputs.wuPerRelease} WU for the outcome; KooDrive 100 ms and DynamoDB 10 ms per round assumed; prices ${PRICES.checked})`,
    goal: '≤ $1.20',
    measured: `${usd(ours.usd)} (${ours.lines.map((l) => `${l.item.split(' (')[0]} ${usd(l.usd)}`).join(', ')}) — baseline ${usd(base.usd)}; at 256 MB with producers sending SendMessageBatch: ${usd(lean.usd)}`,
    value: ours.usd,
    ok: ours.usd <= 1.2,
  });
  ctx.add('ledger.clients', {
    what: `DynamoDB clients alone (each bundled alone, minified CJS): the outcome write (conditional UpdateItem) ${sizes.clients.rounds} × ${sizes.clients.n} at C=${sizes.clients.concurrency} against dynalite; load median of ${sizes.clients.loadRuns} fresh processes`,
    goal: '—',
    measured: f.clients
      .map(
        (c) =>
          `${c.name}: ${c.cpuMsPerRequest.map((v) => v.toFixed(3)).join('/')} ms CPU per request, load ${ms(c.loadMs)}, ${(c.bundleBytes / 1024).toFixed(0)} KB, old item on a failed condition: ${c.oldItemOnConditionFailure ? 'yes' : 'no'} (${CANDIDATES[c.name]})`,
      )
      .join('; '),
    value: requestCpu,
  });
}
