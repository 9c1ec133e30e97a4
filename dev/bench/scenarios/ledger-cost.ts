/**
 * What the ledger costs the release path, and which DynamoDB client keeps it small: the packaged release function
 * ("new": signed requests over undici) next to the same function with the ledger's calls through the AWS SDK v3
 * client ("sdk", the baseline: dev/bench/ledger-variants/sdk-client.ts), measured the same way in the same run,
 * interleaved where it is a median of fresh processes; and the cost of a million SQS releases from the measured CPU.
 */
import { join } from 'node:path';
import type * as esbuild from 'esbuild';
import { buildRelease, configuredBuildOptions, deployed, ROOT, runBundle, startBundle } from '../bundle';
import { PRICES, sqsReleaseBill, usd } from '../cost';
import { peakRss, type Harness } from '../harness';
import { median, ms } from '../report';

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

const BOUND_RATIO = 1.5;

/** The release function built with custom.esbuild, src/wiring.ts's `./ledger/ledger` resolved to `file`. */
async function buildWithLedger(file: string, dir: string) {
  const options = await configuredBuildOptions();
  const swap: esbuild.Plugin = {
    name: 'swap-ledger',
    setup(build) {
      build.onResolve({ filter: /^\.\/ledger\/ledger$/ }, (args) =>
        args.importer.endsWith(join('src', 'wiring.ts')) ? { path: file } : undefined,
      );
    },
  };
  return buildRelease({ ...options, plugins: [...(options.plugins ?? []), swap] }, dir);
}

export async function ledgerCost(h: Harness): Promise<void> {
  const s = h.sizes;
  const sizes = {
    loadRuns: s.coldRuns,
    coldRuns: s.coldRuns,
    directN: s.n,
    sqsBatches: s.sqsBatches,
    memoryN: s.memoryN,
  };
  h.log('ledger cost: building the release function with the ledger through the AWS SDK (the baseline)');
  const sdk = await buildWithLedger(
    join(ROOT, 'dev', 'bench', 'ledger-variants', 'sdk-client.ts'),
    join(h.scratch, 'ledger-cost-sdk'),
  );
  const bundles = { new: (await h.packaged()).bundle, sdk: sdk.bundle } as const;
  const env = h.stackEnv(h.ledgerDb);
  const sides: Partial<Record<'new' | 'sdk', Side>> = {};
  const loads: Record<'new' | 'sdk', number[]> = { new: [], sdk: [] };
  const colds: Record<'new' | 'sdk', number[]> = { new: [], sdk: [] };
  await h.resetEmulator();
  h.log(
    `ledger cost: module load (${sizes.loadRuns}) and cold first release (${sizes.coldRuns}), interleaved`,
  );
  for (let i = 0; i < Math.max(sizes.loadRuns, sizes.coldRuns); i++) {
    for (const side of ['new', 'sdk'] as const) {
      if (i < sizes.loadRuns) loads[side].push((await runBundle(bundles[side])).loadMs);
      if (i < sizes.coldRuns) {
        const lockIds = await h.seed(1);
        const run = await runBundle(bundles[side], { env, events: [{ lockIds, userId: h.userId }] });
        if (run.invocations[0]?.summary?.released !== 1) throw new Error(`${side}: the cold release failed`);
        colds[side].push(run.firstMs ?? NaN);
      }
    }
  }
  for (const side of ['new', 'sdk'] as const) {
    h.log(
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
      const cold = await invoke({ lockIds: await h.seed(sizes.directN), userId: h.userId });
      const warm = await invoke({ lockIds: await h.seed(sizes.directN), userId: h.userId });
      if (warm.summary?.released !== sizes.directN)
        throw new Error(`${side}: ${JSON.stringify(warm.summary)}`);
      direct = { cold: cold.ms, warm: warm.ms, cpu: warm.cpuMs / sizes.directN };
      const batchMs: number[] = [];
      for (let i = 0; i < sizes.sqsBatches; i++) {
        const inv = await invoke(h.sqsEvent(await h.seed(10)));
        if (inv.summary?.batchItemFailures !== 0) throw new Error(`${side}: ${JSON.stringify(inv.summary)}`);
        batchMs.push(inv.ms);
        sqs = { ms: sqs.ms, cpu: sqs.cpu + inv.cpuMs };
      }
      sqs = { ms: median(batchMs), cpu: sqs.cpu / (10 * sizes.sqsBatches) };
    } finally {
      await peer.stop();
    }
    h.log(`ledger cost, ${side}: peak RSS releasing ${sizes.memoryN} locks`);
    await h.emulator.call('latency', 0);
    const rss = await runBundle(bundles[side], {
      env,
      events: [
        {
          lockIds: await h.seed(sizes.memoryN),
          userId: h.userId,
        },
      ],
      nodeArgs: h.heapFlags(128),
    });
    await h.emulator.call('latency', s.latencyMs);
    sides[side] = {
      loadMs: median(loads[side]),
      coldMs: median(colds[side]),
      cpuPerLockMs: direct.cpu,
      directColdMs: direct.cold,
      directWarmMs: direct.warm,
      sqsBatchMs: sqs.ms,
      sqsCpuPerLockMs: sqs.cpu,
      rssMb: peakRss(rss),
    };
  }
  const n = sides.new as Side;
  const b = sides.sdk as Side;
  const vs = (a: number, base: number, fmt: (v: number) => string) =>
    `${fmt(a)} — baseline (AWS SDK client) ${fmt(base)}, ${(a / base).toFixed(2)}×`;
  const per = (v: number) => `${v.toFixed(3)} ms`;
  h.add('cpu', {
    what: `CPU per released lock with the ledger on (packaged release function, warm direct invoke, N=${sizes.directN}, L=${s.latencyMs} ms, C=${s.concurrency})`,
    goal: '≤ 0.50 ms',
    measured: `${vs(n.cpuPerLockMs, b.cpuPerLockMs, per)}; SQS batches of 10: ${per(n.sqsCpuPerLockMs)} (baseline ${per(b.sqsCpuPerLockMs)}); each lock costs the outcome write and its share of the live-lease read before the DELETE (one consistent BatchGetItem per 100 locks of an invocation: an SQS batch of 10 reads in one request) (the DynamoDB clients alone: row dynamodb-clients.update)`,
    value: n.cpuPerLockMs,
    ok: n.cpuPerLockMs <= 0.5,
  });
  h.add('load', {
    what: `Module load of the packaged release bundle (median of ${sizes.loadRuns} fresh processes, interleaved)`,
    goal: '≤ 60 ms',
    measured: vs(n.loadMs, b.loadMs, ms),
    value: n.loadMs,
    ok: n.loadMs <= 60,
  });
  h.add('cold', {
    what: `Cold first release with the ledger (load + 1 lock + secret read + the ledger's requests; median of ${sizes.coldRuns} fresh processes)`,
    goal: '≤ 120 ms',
    measured: vs(n.coldMs, b.coldMs, ms),
    value: n.coldMs,
    ok: n.coldMs <= 120,
  });
  h.add('rss', {
    what: `Peak RSS releasing ${sizes.memoryN} locks in one direct invoke (ledger on, L=0, V8 heap flags of a 128 MB Lambda)`,
    goal: '≤ 128 MB',
    measured: vs(n.rssMb, b.rssMb, (v) => `${v.toFixed(1)} MB`),
    value: n.rssMb,
    ok: n.rssMb <= 128,
  });
  const batchBound = Math.ceil(10 / s.concurrency) * s.latencyMs;
  h.add('sqs-batch', {
    what: `A whole SQS batch of 10 (warm; L=${s.latencyMs} ms, C=${s.concurrency}: bound ${batchBound} ms), median of ${sizes.sqsBatches}`,
    goal: `≤ ${BOUND_RATIO} × bound`,
    measured: `${ms(n.sqsBatchMs)} = ${(n.sqsBatchMs / batchBound).toFixed(2)} × — baseline ${ms(b.sqsBatchMs)} = ${(b.sqsBatchMs / batchBound).toFixed(2)} ×`,
    value: n.sqsBatchMs / batchBound,
    ok: n.sqsBatchMs / batchBound <= BOUND_RATIO,
  });
  const directBound = Math.ceil(sizes.directN / s.concurrency) * s.latencyMs;
  h.add('direct', {
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
  const ours = sqsReleaseBill({ ...inputs, cpuMsPerLock: n.sqsCpuPerLockMs });
  const base = sqsReleaseBill({ ...inputs, cpuMsPerLock: b.sqsCpuPerLockMs });
  const lean = sqsReleaseBill({
    ...inputs,
    cpuMsPerLock: n.sqsCpuPerLockMs,
    memoryMb: 256,
    producersBatchSends: true,
  });
  h.add('cost', {
    what: `1,000,000 releases through SQS all in (batch ${d.batchSize}, ${d.releaseMemoryMb} MB, measured CPU; per lock 1 RRU for the live-lease read and ${inputs.wuPerRelease} WU for the outcome; KooDrive 100 ms and DynamoDB 10 ms per round assumed; prices ${PRICES.checked})`,
    goal: '≤ $1.20',
    measured: `${usd(ours.usd)} (${ours.lines.map((l) => `${l.item.split(' (')[0]} ${usd(l.usd)}`).join(', ')}) — baseline ${usd(base.usd)}; at 256 MB with producers sending SendMessageBatch: ${usd(lean.usd)}`,
    value: ours.usd,
    ok: ours.usd <= 1.2,
  });
}
