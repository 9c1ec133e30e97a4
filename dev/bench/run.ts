/**
 * `npm run bench` (`-- --quick` for a seconds-long version; `--out <file>` to write the results elsewhere than
 * bench/results.json; `--only 2,4` for some items while working on them): measures the release path against the
 * KooDrive emulator, prints a table with each goal next to its measurement and writes the results as JSON.
 * Items 1–7 measure the release path; the ledger at scale (`--only 10`) is the rows numbered 10.x, each with its baseline
 * (dev/bench/ledger-scale.ts).
 *
 * Processes: this one hosts Secrets Manager and DynamoDB (dynalite) and drives the others; the KooDrive
 * emulator runs in a child of its own; the code under test runs in fresh worker processes (tsx, source) or in
 * fresh plain `node` processes that require() the packaged bundle. So the client's CPU time is its own, and the
 * emulator's and dynalite's CPU are measured apart.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startDynalite, type LocalDynamo } from '../dynalite';
import { startSecretsManager } from '../secrets-manager';
import { LOCAL_APP_ID, LOCAL_APP_SECRET, LOCAL_SECRET_NAME, LOCAL_USER_ID } from '../stack';
import {
  buildRelease,
  bundlesUndiciRoot,
  cleanEnv,
  composition,
  configuredBuildOptions,
  measureVariants,
  median,
  releaseFunctionConfig,
  ROOT,
  runBundle,
  slsPackage,
  startBundle,
  undici7,
  variants,
} from './bundle';
import type { EmulatorApi, EmulatorStats } from './emulator-process';
import {
  costRows,
  costSection,
  loadRows,
  loadSection,
  measureCpu,
  measureHolders,
  measureSweep,
  newScaleFigures,
  type Context,
} from './ledger-scale';
import { startChild, type Peer } from './ipc';
import { RESULTS_FILE, updateDocs } from './docs';
import { LEDGER_COST_ITEM, measureLedgerCost } from './ledger-cost';
import {
  calibrate,
  endLoad,
  kb,
  machine,
  markdown,
  ms,
  round,
  ROW_IDS,
  type Results,
  type Row,
  type RowId,
} from './report';
import type { WorkerApi } from './worker';
import { estimateZipSize } from './zip';

const { values: flags } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, out: { type: 'string' }, only: { type: 'string' } },
});
/** `--only 1,6,ledger`: just those items (for working on one; the table then lacks the other rows). */
const only = flags.only === undefined ? undefined : new Set(flags.only.split(','));
const wants = (item: number | 'ledger') => only === undefined || only.has(String(item));
const quick = flags.quick;
const outFile = flags.out ?? RESULTS_FILE;

/** The sizes of each item; --quick keeps every step but makes it tiny. */
const P = quick
  ? {
      n: 80,
      latencyMs: 10,
      concurrency: 16,
      overheadN: 200,
      overheadWarmup: 50,
      overheadRounds: 1,
      loadRuns: 2,
      coldRuns: 1,
      variantRuns: 1,
      memoryN: 300,
      sweepItems: 300,
      sweepStale: [20, 2] as const,
      fetchUndici7: false,
      holders: 20,
      holderHeartbeats: 2,
      lifecycleHolders: 5,
      releasePath: 6,
      cpuN: 40,
      sqsBatches: 2,
      ledgerCost: {
        loadRuns: 2,
        coldRuns: 1,
        directN: 40,
        sqsBatches: 2,
        memoryN: 300,
        clients: { n: 100, concurrency: 16, rounds: 1, warmup: 20, loadRuns: 1 },
      },
    }
  : {
      n: 1000,
      latencyMs: 25,
      concurrency: 16,
      overheadN: 5000,
      overheadWarmup: 500,
      overheadRounds: 3,
      loadRuns: 15,
      coldRuns: 9,
      variantRuns: 9,
      memoryN: 10_000,
      sweepItems: 100_000,
      sweepStale: [1000, 10] as const,
      fetchUndici7: true,
      holders: 2000,
      holderHeartbeats: 2,
      lifecycleHolders: 200,
      releasePath: 200,
      cpuN: 1000,
      sqsBatches: 20,
      ledgerCost: {
        loadRuns: 9,
        coldRuns: 9,
        directN: 1000,
        sqsBatches: 20,
        memoryN: 10_000,
        clients: { n: 2000, concurrency: 16, rounds: 3, warmup: 300, loadRuns: 5 },
      },
    };

/** Lambda's CPU share grows with memory: 1769 MB is one vCPU. */
const MB_PER_VCPU = 1769;
/** The most locks one direct invoke may name (MAX_LOCKS_PER_INVOKE's default, src/config.ts). */
const MAX_LOCKS_PER_INVOKE = 10_000;

const WORKER = join(import.meta.dirname, 'worker.ts');
const EMULATOR = join(import.meta.dirname, 'emulator-process.ts');
const USER = LOCAL_USER_ID;

const runStarted = performance.now();
const calibrationAtStart = calibrate();
const results: Results = {
  machine: { ...machine(), calibrationMs: { start: calibrationAtStart } },
  mode: quick ? 'quick' : 'full',
  startedAt: new Date().toISOString(),
  durationS: 0,
  parameters: { ...P },
  rows: [],
  alternatives: [],
  composition: { totalBytes: 0, packages: [], files: [] },
  notes: [],
};
const rows = new Map<RowId, Row>();
/** Rows are numbered by item ("1.calls": 1), the ledger at scale by goal ("10.4-sqs": 10.4), the ledger's cost 11. */
const add = (id: RowId, row: Omit<Row, 'id' | 'item'>) => {
  const item = id.startsWith('ledger.')
    ? LEDGER_COST_ITEM
    : id.startsWith('10.')
      ? Number(id.split('-')[0])
      : Number(id.split('.')[0]);
  rows.set(id, { id, item, ...row });
};
const log = (text: string) =>
  process.stderr.write(`[bench ${((performance.now() - runStarted) / 1000).toFixed(1)} s] ${text}\n`);

const scratch = mkdtempSync(join(tmpdir(), 'koodrive-bench-'));
const ideal = (n: number) => Math.ceil(n / P.concurrency) * P.latencyMs;

// ---------------------------------------------------------------------------------------------------------
// The local stack, in its processes.

const emulatorChild = await startChild<EmulatorApi>(EMULATOR, { cwd: ROOT, env: cleanEnv({}) });
const emulator = emulatorChild.peer;
const emulatorUrl = (emulatorChild.info as { url: string }).url;
const secrets = await startSecretsManager();
secrets.putSecret(LOCAL_SECRET_NAME, {
  endpoint: emulatorUrl,
  appId: LOCAL_APP_ID,
  appSecret: LOCAL_APP_SECRET,
  defaultUserId: USER,
});
const ledgerDb = await startDynalite();
const dynamos: LocalDynamo[] = [ledgerDb];

/** What the handlers need to reach the stack; with the ledger when a table is given. */
function stackEnv(
  ledger?: Pick<LocalDynamo, 'endpoint' | 'tableName'>,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    KOODRIVE_SECRET_ID: LOCAL_SECRET_NAME,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    RELEASE_CONCURRENCY: String(P.concurrency),
    // The deployed level: one JSON line per lock (the children's stdout is dropped, as Lambda ships it away).
    LOG_LEVEL: 'INFO',
    ...(ledger ? { AWS_ENDPOINT_URL_DYNAMODB: ledger.endpoint, LOCK_LEDGER_TABLE: ledger.tableName } : {}),
    ...extra,
  };
}

async function worker(env: Record<string, string>): Promise<Peer<WorkerApi>> {
  const { peer } = await startChild<WorkerApi>(WORKER, {
    cwd: ROOT,
    env: cleanEnv(env),
    nodeArgs: ['--expose-gc'],
  });
  return peer;
}

async function seed(count: number): Promise<string[]> {
  return emulator.call('seed', USER, { count });
}

const locksOf = (ids: string[]) => ids.map((lockId) => ({ lockId, userId: USER }));
const cpuOfThisProcess = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

// ---------------------------------------------------------------------------------------------------------
// Item 4: cold start (first: item 6 runs the bundle it builds).

interface Packaged {
  bundle: string;
  zipBytes: number;
  source: string;
}

/** The release function as deployed: `sls package` (or, in --quick or without item 4, esbuild with its options). */
async function packageRelease(): Promise<Packaged> {
  log('packaging the release function');
  const pkgDir = join(scratch, 'package');
  if (quick || !wants(4)) {
    const built = await buildRelease(await configuredBuildOptions(), pkgDir);
    return {
      bundle: built.bundle,
      zipBytes: estimateZipSize(built.files),
      source: 'esbuild with custom.esbuild, zip estimated',
    };
  }
  const pkg = await slsPackage(pkgDir);
  return {
    bundle: pkg.bundle,
    zipBytes: pkg.zipBytes,
    source: `sls package; ${kb(pkg.unzippedBytes)} unzipped`,
  };
}

async function coldStart({ bundle, zipBytes, source }: Packaged): Promise<void> {
  const configured = await configuredBuildOptions();
  add('4.zip', {
    what: 'Cold start: zipped size of the release function',
    goal: '≤ 250 KB',
    measured: `${kb(zipBytes)} (${source})`,
    value: zipBytes / 1024,
    ok: zipBytes <= 250 * 1024,
  });

  const meta = await buildRelease(configured, join(scratch, 'metafile'));
  const parts = composition(meta.metafile);
  results.composition = {
    totalBytes: parts.total,
    packages: parts.packages,
    files: parts.files.slice(0, 15),
  };

  log(`item 4: module load time, ${P.loadRuns} fresh processes`);
  const loads: number[] = [];
  for (let i = 0; i < P.loadRuns; i++) loads.push((await runBundle(bundle)).loadMs);
  const load = median(loads);
  add('4.load', {
    what: `Cold start: module load time of the packaged bundle (median of ${P.loadRuns} fresh processes)`,
    goal: '≤ 50 ms',
    measured: `${ms(load)} (min ${ms(Math.min(...loads))}, max ${ms(Math.max(...loads))})`,
    value: load,
    ok: load <= 50,
  });

  log(`item 4: cold first release, ${P.coldRuns} fresh processes`);
  await emulator.call('reset');
  const cold = async (ledger: LocalDynamo | undefined, runs: number) => {
    const firsts: number[] = [];
    const cpus: number[] = [];
    let loadsMs: number[] = [];
    const secretReads = secrets.getSecretValueCalls;
    for (let i = 0; i < runs; i++) {
      const [lockId] = await seed(1);
      const run = await runBundle(bundle, {
        env: stackEnv(ledger),
        events: [{ lockIds: [lockId], userId: USER }],
      });
      const released = run.invocations[0]?.summary?.released;
      if (released !== 1)
        throw new Error(`cold first release did not release its lock: ${JSON.stringify(run.invocations[0])}`);
      firsts.push(run.firstMs ?? NaN);
      cpus.push(run.cpuAtFirstMs ?? NaN);
      loadsMs = [...loadsMs, run.loadMs];
    }
    return {
      first: median(firsts),
      load: median(loadsMs),
      processCpu: median(cpus),
      secretReads: (secrets.getSecretValueCalls - secretReads) / runs,
    };
  };
  const coldPlain = await cold(undefined, P.coldRuns);
  add('4.cold', {
    what: 'Cold start: first release in a fresh process (load + 1 lock, secret read included), no ledger',
    goal: '≤ 100 ms',
    measured: `${ms(coldPlain.first)} median (load ${ms(coldPlain.load)} + invocation ${ms(coldPlain.first - coldPlain.load)}, ${coldPlain.secretReads} secret read)`,
    value: coldPlain.first,
    ok: coldPlain.first <= 100,
  });
  const coldLedger = await cold(ledgerDb, Math.max(1, Math.ceil(P.coldRuns / 2)));
  add('4.cold-ledger', {
    what: 'Cold start: the same with LOCK_LEDGER_TABLE set (as deployed: + DynamoDB client, 1 UpdateItem)',
    goal: '—',
    measured: `${ms(coldLedger.first)} median (invocation ${ms(coldLedger.first - coldLedger.load)})`,
    value: coldLedger.first,
  });
  coldCpuMs = coldPlain.processCpu;

  log('item 4: alternative builds');
  const u7 = await undici7(P.fetchUndici7);
  if (!u7)
    results.notes.push('undici 7 not measured: no copy under .local/bench/ and npm could not fetch one.');
  const list = variants(configured, u7?.dir, bundlesUndiciRoot(meta.metafile));
  await emulator.call('reset');
  results.alternatives = await measureVariants(configured, list, P.variantRuns, join(scratch, 'variants'), {
    env: stackEnv(),
    event: async () => ({ lockIds: await seed(1), userId: USER }),
  });
  if (u7) results.notes.push(`undici 7 is ${u7.version} (npm pack undici@7, cached in .local/bench/).`);
}

let coldCpuMs = NaN;

// ---------------------------------------------------------------------------------------------------------
// Items 1, 3, 5: latency-bound release, connection reuse, the secret cache.

let handlerCpuPerLockMs = NaN;
/** Client CPU per lock of the calls-alone run (item 1): the KooDrive part of the handler's CPU. */
let callsCpuPerLockMs = NaN;

async function latencyBound(bundle: string): Promise<void> {
  const budget = ideal(P.n);
  const params = `N=${P.n}, L=${P.latencyMs} ms, C=${P.concurrency}`;

  log(`item 1: KooDrive calls alone (${params})`);
  await emulator.call('reset');
  await emulator.call('latency', P.latencyMs);
  const calls = await worker(stackEnv());
  try {
    await calls.call('prepare');
    const ids = await seed(P.n);
    const before = await emulator.call('stats');
    const run = await calls.call('engine', locksOf(ids), P.concurrency);
    const after = await emulator.call('stats');
    const emuCpu = after.cpuMs - before.cpuMs;
    const requests = after.requests - before.requests;
    callsCpuPerLockMs = run.cpuMs / P.n;
    add('1.calls', {
      what: `Latency-bound release, KooDrive calls alone (engine + KooDriveClient as wired, no ledger; ${params})`,
      goal: '≤ 1.10 × ideal',
      measured: `${run.ms.toFixed(0)} ms = ${(run.ms / budget).toFixed(3)} × ideal ${budget} ms (${run.released} released; client CPU ${ms(run.cpuMs)}, emulator CPU ${ms(emuCpu)} = ${(emuCpu / requests).toFixed(3)} ms/request)`,
      value: run.ms / budget,
      ok: run.ms / budget <= 1.1 && run.released === P.n,
    });
    const opened = after.connectionsOpened - before.connectionsOpened;
    const floorIds = await seed(P.n);
    const floor = await calls.call('floor', emulatorUrl, locksOf(floorIds), P.concurrency);
    const f1 = await emulator.call('stats');
    add('1.floor', {
      what: `Latency-bound floor of this setup: the same ${P.n} requests signed beforehand, over a bare undici pool (no engine, no client)`,
      goal: '—',
      measured: `${floor.ms.toFixed(0)} ms = ${(floor.ms / budget).toFixed(3)} × ideal (${floor.released} released; the emulator spent ${((f1.cpuMs - after.cpuMs) / P.n).toFixed(3)} ms CPU per request)`,
      value: floor.ms / budget,
    });
    add('3.connections', {
      what: 'Connection reuse: TCP connections opened during the calls of item 1',
      goal: `≤ C = ${P.concurrency}`,
      measured: `${opened} for ${requests} requests`,
      value: opened,
      ok: opened <= P.concurrency,
    });
  } finally {
    await calls.stop();
  }

  log('item 1: the whole invocation (packaged release handler, ledger on dynalite)');
  const { peer: whole } = await startBundle(bundle, stackEnv(ledgerDb));
  try {
    const invokeSeeded = async (count: number) => {
      const ids = await seed(count);
      const s0 = await emulator.call('stats');
      const reads0 = secrets.getSecretValueCalls;
      const cpu0 = cpuOfThisProcess();
      const inv = await whole.call('invoke', { lockIds: ids, userId: USER });
      if (inv.error) throw new Error(`release invocation failed: ${inv.error}`);
      const s1 = await emulator.call('stats');
      return {
        inv,
        opened: s1.connectionsOpened - s0.connectionsOpened,
        secretReads: secrets.getSecretValueCalls - reads0,
        emulatorCpu: s1.cpuMs - s0.cpuMs,
        hostCpu: cpuOfThisProcess() - cpu0,
        released: Number(inv.summary?.released ?? 0),
      };
    };
    const first = await invokeSeeded(P.n);
    const warm = await invokeSeeded(P.n);
    const ratio = first.inv.ms / budget;
    add('1.whole', {
      what: `Latency-bound release, whole invocation (packaged release handler: secret read, ledger writes; ${params}; first in a fresh process)`,
      goal: '≤ 1.5 × ideal',
      measured: `${first.inv.ms.toFixed(0)} ms = ${ratio.toFixed(3)} × ideal ${budget} ms (${first.released} released; handler CPU ${ms(first.inv.cpuMs)}, emulator ${ms(first.emulatorCpu)}, dynalite + Secrets Manager ${ms(first.hostCpu)})`,
      value: ratio,
      ok: ratio <= 1.5 && first.released === P.n,
    });
    add('1.whole-warm', {
      what: 'Latency-bound release, whole invocation, second (warm) invocation in the same process',
      goal: '—',
      measured: `${warm.inv.ms.toFixed(0)} ms = ${(warm.inv.ms / budget).toFixed(3)} × ideal (handler CPU ${ms(warm.inv.cpuMs)}, dynalite ${ms(warm.hostCpu)})`,
      value: warm.inv.ms / budget,
    });
    handlerCpuPerLockMs = warm.inv.cpuMs / P.n;
    add('1.cpu', {
      what: 'CPU per lock in the handler process (warm: signing, HTTP, JSON log line, ledger UpdateItem)',
      goal: '—',
      measured: `${handlerCpuPerLockMs.toFixed(3)} ms per lock, of which the KooDrive calls ≈ ${callsCpuPerLockMs.toFixed(3)} (the calls-alone run, JIT warm-up included): the rest is the ledger's requests (live-lease read, outcome write), logs and metrics; the emulator spent ${(warm.emulatorCpu / P.n).toFixed(3)} ms per request`,
      value: handlerCpuPerLockMs,
    });
    add('3.connections-whole', {
      what: 'Connection reuse: connections opened by the first (cold) whole invocation',
      goal: `≤ C = ${P.concurrency}`,
      measured: String(first.opened),
      value: first.opened,
      ok: first.opened <= P.concurrency,
    });
    add('3.connections-warm', {
      what: 'Connection reuse: connections opened by the second (warm) invocation',
      goal: '0',
      measured: String(warm.opened),
      value: warm.opened,
      ok: warm.opened === 0,
    });

    log('item 5: the secret cache over more warm invocations');
    let warmReads = warm.secretReads;
    const more = 3;
    for (let i = 0; i < more; i++) warmReads += (await invokeSeeded(5)).secretReads;
    add('5.secret-cold', {
      what: 'Secrets Manager: GetSecretValue calls in the first invocation of a container',
      goal: '1',
      measured: String(first.secretReads),
      value: first.secretReads,
      ok: first.secretReads === 1,
    });
    add('5.secret-warm', {
      what: `Secrets Manager: GetSecretValue calls in ${more + 1} warm invocations (cache period ${300} s)`,
      goal: '0',
      measured: String(warmReads),
      value: warmReads,
      ok: warmReads === 0,
    });
  } finally {
    await whole.stop();
  }

  const { peer: expiring } = await startBundle(bundle, stackEnv(undefined, { SECRET_CACHE_SECONDS: '1' }));
  try {
    const reads0 = secrets.getSecretValueCalls;
    const once = async () => {
      const inv = await expiring.call('invoke', { lockIds: await seed(1), userId: USER });
      if (inv.error) throw new Error(inv.error);
    };
    await once();
    await once();
    const within = secrets.getSecretValueCalls - reads0;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await once();
    const after = secrets.getSecretValueCalls - reads0 - within;
    add('5.secret-expiry', {
      what: 'Secrets Manager: with SECRET_CACHE_SECONDS=1, reads in 2 invocations, then in 1 after the period',
      goal: '1, then 1',
      measured: `${within}, then ${after}`,
      value: within + after,
      ok: within === 1 && after === 1,
    });
  } finally {
    await expiring.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Item 2: client overhead, ours vs the common way.

async function overhead(): Promise<void> {
  log(`item 2: client overhead, N=${P.overheadN} at L=0, ${P.overheadRounds} round(s)`);
  await emulator.call('reset');
  const w = await worker(stackEnv());
  try {
    await w.call('prepare');
    const perCore = { ours: [] as number[], baseline: [] as number[] };
    const wall = { ours: [] as number[], baseline: [] as number[] };
    let emulatorCpuPerRequest = 0;
    for (const impl of ['ours', 'baseline'] as const) {
      await w.call('overhead', impl, emulatorUrl, locksOf(await seed(P.overheadWarmup)), P.concurrency);
    }
    const ratios: number[] = [];
    for (let round = 0; round < P.overheadRounds; round++) {
      // Each round runs both, in alternating order; the ratio is taken per round (same machine conditions).
      const order = round % 2 === 0 ? (['ours', 'baseline'] as const) : (['baseline', 'ours'] as const);
      for (const impl of order) {
        const ids = await seed(P.overheadN);
        const s0: EmulatorStats = await emulator.call('stats');
        const run = await w.call('overhead', impl, emulatorUrl, locksOf(ids), P.concurrency);
        const s1: EmulatorStats = await emulator.call('stats');
        if (run.released !== P.overheadN)
          throw new Error(`${impl} released ${run.released} of ${P.overheadN}`);
        perCore[impl].push(P.overheadN / (run.cpuMs / 1000));
        wall[impl].push(P.overheadN / (run.ms / 1000));
        emulatorCpuPerRequest = (s1.cpuMs - s0.cpuMs) / (s1.requests - s0.requests);
      }
      ratios.push((perCore.ours[round] as number) / (perCore.baseline[round] as number));
    }
    const ours = median(perCore.ours);
    const baseline = median(perCore.baseline);
    const ratio = median(ratios);
    add('2.overhead', {
      what: `Client overhead: locks per second per CPU core, N=${P.overheadN} at L=0, C=${P.concurrency}: ours (engine + KooDriveClient) vs fetch + Promise.all over chunks`,
      goal: '≥ 2 × baseline',
      measured: `${ratio.toFixed(2)} × (median of ${ratios.length} paired rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')}; ours ${Math.round(ours)}/s per core = ${(1000 / ours).toFixed(3)} ms CPU per lock, baseline ${Math.round(baseline)}/s = ${(1000 / baseline).toFixed(3)} ms; wall ${Math.round(median(wall.ours))} vs ${Math.round(median(wall.baseline))} locks/s; emulator ${emulatorCpuPerRequest.toFixed(3)} ms CPU/request)`,
      value: ratio,
      ok: ratio >= 2,
    });
  } finally {
    await w.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Item 6: memory of one big direct invoke, in the packaged bundle.

/** The V8 heap flags Lambda's Node.js runtime (its bootstrap script) gives a function of `mb` MB. */
function lambdaHeapFlags(mb: number): string[] {
  const newSpace = Math.floor(mb / 10);
  return [`--max-semi-space-size=${Math.floor(newSpace / 2)}`, `--max-old-space-size=${mb - newSpace}`];
}

async function memory(bundle: string): Promise<void> {
  log(`item 6: peak RSS releasing ${P.memoryN} locks in one direct invoke (bundle, ledger on, L=0)`);
  await emulator.call('reset');
  const ids = await seed(P.memoryN);
  // L=0 is the worst case: outcomes arrive faster than the ledger takes them.
  const run = await runBundle(bundle, {
    env: stackEnv(ledgerDb),
    events: [{ lockIds: ids, userId: USER }],
    nodeArgs: lambdaHeapFlags(128),
  });
  const inv = run.invocations[0];
  const peak = run.vmHwmMb ?? run.maxRssMb;
  const bareNodeMb =
    Number(
      execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.memoryUsage().rss))']),
    ) /
    2 ** 20;
  add('6.memory', {
    what: `Memory: peak RSS releasing ${P.memoryN} locks in one direct invoke (packaged bundle, ledger on, L=0, V8 heap flags of a 128 MB Lambda)`,
    goal: '≤ 128 MB',
    measured: `${peak.toFixed(1)} MB (${run.rssAfterLoadMb.toFixed(1)} MB after load, of which an empty Node process ${bareNodeMb.toFixed(1)}; JS heap peak ${run.heapTotalMb.toFixed(1)} MB, ${run.heapUsedMb.toFixed(1)} used; ${String(inv?.summary?.released)} released in ${inv ? ms(inv.ms) : '?'})`,
    value: peak,
    ok: peak <= 128 && inv?.summary?.released === P.memoryN,
  });
  // memorySize: enough memory, and enough CPU (Lambda gives 1 vCPU per 1769 MB) for the largest direct invoke,
  // MAX_LOCKS_PER_INVOKE (10 000) locks, to finish well within the function's timeout.
  const deployed = releaseFunctionConfig();
  const ceil64 = (mb: number) => Math.ceil(mb / 64) * 64;
  const cpuPerLock = (inv?.cpuMs ?? NaN) / P.memoryN;
  const largestCpuMs = cpuPerLock * MAX_LOCKS_PER_INVOKE;
  const forMemory = ceil64(peak * 1.25);
  const forDeadline = ceil64((MB_PER_VCPU * largestCpuMs) / (0.75 * deployed.timeoutSeconds * 1000));
  const recommended = Math.min(MB_PER_VCPU, Math.max(128, forMemory, forDeadline));
  const at = (cpuMs: number, mb: number) => (cpuMs * MB_PER_VCPU) / Math.min(mb, MB_PER_VCPU);
  add('6.memory-size', {
    what: `Recommended memorySize of the release function (now ${deployed.memorySize} MB, timeout ${deployed.timeoutSeconds} s; Lambda gives 1 vCPU per ${MB_PER_VCPU} MB)`,
    goal: '—',
    measured: `${recommended} MB: peak RSS ${peak.toFixed(0)} MB + 25 % → ≥ ${forMemory} MB; ${cpuPerLock.toFixed(2)} ms CPU per lock (ledger on) makes a ${MAX_LOCKS_PER_INVOKE}-lock invoke ≈ ${(at(largestCpuMs, deployed.memorySize) / 1000).toFixed(0)} s of CPU time at ${deployed.memorySize} MB, ${(at(largestCpuMs, recommended) / 1000).toFixed(0)} s at ${recommended} MB (≤ 75 % of the timeout needs ≥ ${forDeadline} MB); a cold start's ${ms(coldCpuMs)} of CPU takes ≈ ${ms(at(coldCpuMs, deployed.memorySize))} at ${deployed.memorySize} MB, ${ms(at(coldCpuMs, recommended))} at ${recommended} MB`,
    value: recommended,
  });
}

// ---------------------------------------------------------------------------------------------------------
// The ledger at scale (and item 7, the sweep over a large ledger: the new design's figures of its sweep goal).

const scale = newScaleFigures();
const closers: Array<() => Promise<void>> = [];
const ctx: Context = {
  sizes: {
    holders: P.holders,
    holderHeartbeats: P.holderHeartbeats,
    lifecycleHolders: P.lifecycleHolders,
    releasePath: P.releasePath,
    cpuN: P.cpuN,
    sqsBatches: P.sqsBatches,
    latencyMs: P.latencyMs,
    concurrency: P.concurrency,
    memoryN: P.memoryN,
    sweepItems: P.sweepItems,
    sweepStale: P.sweepStale,
  },
  quick,
  userId: USER,
  emulator,
  ledgerDb,
  stackEnv,
  worker,
  heapFlags: lambdaHeapFlags,
  add: (id, row) => add(id as RowId, row),
  log,
  notes: results.notes,
  dynamos,
  closers,
  scratch,
};
let scaleMarkdown = '';

async function sweepRows(): Promise<void> {
  await measureSweep(ctx, scale);
  const sp = scale.sweep.sparse;
  if (!sp) return;
  const [many, few] = P.sweepStale;
  const count = (u: typeof sp.many.usage) => Object.values(u.requests).reduce((a, b) => a + b, 0);
  add('7.sweep-many', {
    what: `Sweep: ledger of ${P.sweepItems} open items with ${many} stale (dynalite; L=${P.latencyMs} ms, C=${P.concurrency}; fresh process)`,
    goal: '—',
    measured: `${sp.many.ms.toFixed(0)} ms (${(sp.many.ms / ideal(many)).toFixed(2)} × the ${ideal(many)} ms its releases need; released ${sp.many.released} of ${many}), ${count(sp.many.usage)} DynamoDB requests (${(count(sp.many.usage) / many).toFixed(2)} per stale lock)`,
    value: sp.many.ms,
  });
  add('7.sweep-few', {
    what: `Sweep: the same ${P.sweepItems} items with ${few} stale (the ${many} released before stay as RELEASED items)`,
    goal: '—',
    measured: `${sp.few.ms.toFixed(0)} ms, ${count(sp.few.usage)} DynamoDB requests`,
    value: sp.few.ms,
  });
}

function scaleModels(): void {
  const peak = rows.get('6.memory')?.value;
  const base = scale.rss.byStatus;
  if (peak !== undefined || base !== undefined) {
    add('10.5-rss', {
      what: `Memory: peak RSS releasing ${P.memoryN} locks in one direct invoke (packaged bundle, ledger on, L=0, heap flags of a 128 MB Lambda)`,
      goal: '≤ 128 MB',
      measured: `${peak?.toFixed(1) ?? '—'} MB (item 6) — baseline ${base?.toFixed(1) ?? '—'} MB`,
      value: peak ?? NaN,
      ...(peak !== undefined ? { ok: peak <= 128 } : {}),
    });
  }
  const figures = loadRows(ctx, scale);
  const bills = costRows(ctx, scale);
  scaleMarkdown = [loadSection(ctx, figures, scale), '', costSection(ctx, bills, scale)].join('\n');
}

// ---------------------------------------------------------------------------------------------------------

try {
  const pkg = await packageRelease();
  if (wants(4)) await coldStart(pkg);
  if (wants(1) || wants(3) || wants(5)) await latencyBound(pkg.bundle);
  if (wants(2)) await overhead();
  if (wants(6)) await memory(pkg.bundle);
  if (wants(10)) await measureHolders(ctx, scale);
  if (wants(10)) await measureCpu(ctx, scale, pkg.bundle);
  if (wants(7) || wants(10)) await sweepRows();
  if (wants(10)) scaleModels();
  if (wants('ledger')) await measureLedgerCost(ctx, scale, pkg.bundle, P.ledgerCost);
} finally {
  for (const close of closers) await close();
  await emulator.stop();
  await secrets.close();
  for (const db of dynamos) await db.close();
  rmSync(scratch, { recursive: true, force: true });
}

endLoad(results.machine);
results.machine.calibrationMs = { start: calibrationAtStart, end: calibrate() };
results.durationS = round((performance.now() - runStarted) / 1000);
results.rows = ROW_IDS.flatMap((id) => {
  const row = rows.get(id);
  if (!row && only === undefined) throw new Error(`the run produced no row ${id}`);
  return row ? [row] : [];
});
if (results.machine.loadAverage.start > 0.5 * results.machine.cores) {
  results.notes.push(
    `The machine was busy when the run started (load average ${results.machine.loadAverage.start} on ${results.machine.cores} cores): timings are pessimistic.`,
  );
}
results.scaleSections = scaleMarkdown || undefined;
const text = markdown(results, scaleMarkdown);
// A partial run (--only) does not replace the full results unless asked to (--out).
const write = only === undefined || flags.out !== undefined;
if (write) {
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify({ ...results, markdown: text }, null, 2)}\n`);
  // The docs' tables follow the default results file (npm run bench:docs does the same by hand).
  if (outFile === RESULTS_FILE) await updateDocs();
}
process.stdout.write(`\n${text}\n${write ? `\nResults written to ${outFile}\n` : ''}`);
