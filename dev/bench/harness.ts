/**
 * What every scenario of `npm run bench` shares, started once per run: the KooDrive emulator in a process of its
 * own (so its CPU is counted apart), dynalite with the ledger table and the local Secrets Manager in the runner's
 * process, the environment a handler needs to reach them, fresh worker processes, and the metering (CPU of a
 * process, requests the emulator and Secrets Manager answered). Scenarios add rows through `add`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ledgerTableInput, startDynalite, waitUntilActive, type LocalDynamo } from '../dynalite';
import { startSecretsManager, type LocalSecretsManager } from '../secrets-manager';
import { LOCAL_APP_ID, LOCAL_APP_SECRET, LOCAL_SECRET_NAME, LOCAL_USER_ID } from '../stack';
import { buildRelease, cleanEnv, configuredBuildOptions, ROOT, slsPackage } from './bundle';
import { startMeteredDynamo, tableShape, type MeteredDynamo } from './capacity';
import type { EmulatorApi, EmulatorStats } from './emulator-process';
import { startChild, type Peer } from './ipc';
import type { Row } from './report';
import type { WorkerApi } from './worker';
import { estimateZipSize } from './zip';

/** Each scenario's sizes: the full run's, or tiny ones with --quick (every step still runs). */
export const SIZES = {
  full: {
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
    sqsBatches: 20,
    clients: { n: 2000, concurrency: 16, rounds: 3, warmup: 300, loadRuns: 5 },
    holders: 2000,
    holderHeartbeats: 2,
    lifecycleHolders: 200,
    releasePath: 200,
    sweepItems: 100_000,
    sweepStale: [1000, 10] as readonly [number, number],
    fetchUndici7: true,
    findByUserItems: 100_000,
    findByUserRuns: 7,
    answerSizeCount: 10_000,
  },
  quick: {
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
    sqsBatches: 2,
    clients: { n: 100, concurrency: 16, rounds: 1, warmup: 20, loadRuns: 1 },
    holders: 20,
    holderHeartbeats: 2,
    lifecycleHolders: 5,
    releasePath: 6,
    sweepItems: 300,
    sweepStale: [20, 2] as readonly [number, number],
    fetchUndici7: false,
    findByUserItems: 500,
    findByUserRuns: 2,
    answerSizeCount: 200,
  },
};
export type Sizes = (typeof SIZES)['full'];

export interface Packaged {
  /** The handler file to require(). */
  bundle: string;
  zipBytes: number;
  /** How it was built. */
  source: string;
}

export interface Harness {
  quick: boolean;
  sizes: Sizes;
  userId: string;
  emulator: Peer<EmulatorApi>;
  emulatorUrl: string;
  secrets: LocalSecretsManager;
  /** dynalite with the ledger table, in this process. */
  ledgerDb: LocalDynamo;
  scratch: string;
  /** The release function as deployed, built once per run (`sls package` when asked, else esbuild alike). */
  packaged(): Promise<Packaged>;
  /** A fresh ledger table in the run's dynalite; its name. */
  newTable(): Promise<string>;
  /** The capacity model in front of the run's dynalite, pricing `tableName`; with an SDK client through it. */
  metered(tableName: string): Promise<MeteredDynamo & { client: DynamoDBClient }>;
  /** The environment of a handler on this stack; with the ledger when a table is given. */
  stackEnv(
    ledger?: { endpoint: string; tableName: string },
    extra?: Record<string, string>,
  ): Record<string, string>;
  /** A fresh process running src/ (through tsx) that answers WorkerApi. */
  worker(env: Record<string, string>): Promise<Peer<WorkerApi>>;
  /** `count` locks held by the bench user in the emulator; their IDs. */
  seed(count: number): Promise<string[]>;
  /** The emulator's counters (requests, connections, its CPU). */
  stats(): Promise<EmulatorStats>;
  /** Forgets the emulator's locks and sets its latency. */
  resetEmulator(latencyMs?: number): Promise<void>;
  /** An SQS event of one record per lock, as Lambda delivers it. */
  sqsEvent(lockIds: string[]): unknown;
  /** The V8 heap flags Lambda's Node.js runtime gives a function of `mb` MB. */
  heapFlags(mb: number): string[];
  ideal(n: number): number;
  add(id: string, row: Omit<Row, 'id' | 'scenario'>): void;
  log(text: string): void;
  note(text: string): void;
  /** Extra Markdown after the scenario's table (its models, its breakdowns). */
  markdown(text: string): void;
  /** Run at the end (proxies, extra dynalites). */
  onClose(close: () => Promise<void>): void;
  close(): Promise<void>;
}

/** CPU time of this process so far, ms (dynalite and Secrets Manager run here). */
export function hostCpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

export async function startHarness(
  options: Pick<Harness, 'quick' | 'add' | 'note' | 'markdown' | 'log'> & { slsPackage: boolean },
): Promise<Harness> {
  const sizes = options.quick ? SIZES.quick : SIZES.full;
  const scratch = mkdtempSync(join(tmpdir(), 'koodrive-bench-'));
  const closers: Array<() => Promise<void>> = [];
  const child = await startChild<EmulatorApi>(join(import.meta.dirname, 'emulator-process.ts'), {
    cwd: ROOT,
    env: cleanEnv({}),
  });
  const emulator = child.peer;
  const emulatorUrl = (child.info as { url: string }).url;
  const secrets = await startSecretsManager();
  secrets.putSecret(LOCAL_SECRET_NAME, {
    endpoint: emulatorUrl,
    appId: LOCAL_APP_ID,
    appSecret: LOCAL_APP_SECRET,
    defaultUserId: LOCAL_USER_ID,
  });
  const ledgerDb = await startDynalite();
  let packaged: Promise<Packaged> | undefined;
  const dir = join(scratch, 'package');
  return {
    ...options,
    packaged: () =>
      (packaged ??= (async () => {
        options.log(
          options.slsPackage
            ? 'packaging the release function (sls package)'
            : 'building the release function',
        );
        if (options.slsPackage) {
          const pkg = await slsPackage(dir);
          return {
            bundle: pkg.bundle,
            zipBytes: pkg.zipBytes,
            source: `sls package; ${(pkg.unzippedBytes / 1024).toFixed(1)} KB unzipped`,
          };
        }
        const built = await buildRelease(await configuredBuildOptions(), dir);
        return {
          bundle: built.bundle,
          zipBytes: estimateZipSize(built.files),
          source: 'esbuild with custom.esbuild, zip estimated',
        };
      })()),
    newTable: async () => {
      const tableName = `bench-${randomUUID().slice(0, 8)}`;
      await ledgerDb.client.send(new CreateTableCommand(ledgerTableInput(tableName)));
      await waitUntilActive(ledgerDb.client, tableName);
      return tableName;
    },
    metered: async (tableName) => {
      const proxy = await startMeteredDynamo(ledgerDb.endpoint, {
        [tableName]: tableShape(ledgerTableInput(tableName)),
      });
      const client = new DynamoDBClient({
        region: 'us-east-1',
        endpoint: proxy.endpoint,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      closers.push(async () => {
        client.destroy();
        await proxy.close();
      });
      return Object.assign(proxy, { client });
    },
    sizes,
    userId: LOCAL_USER_ID,
    emulator,
    emulatorUrl,
    secrets,
    ledgerDb,
    scratch,
    stackEnv: (ledger, extra = {}) => ({
      KOODRIVE_SECRET_ID: LOCAL_SECRET_NAME,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
      RELEASE_CONCURRENCY: String(sizes.concurrency),
      // The deployed level: one JSON line per lock (the children's stdout is dropped, as Lambda ships it away).
      LOG_LEVEL: 'INFO',
      ...(ledger ? { AWS_ENDPOINT_URL_DYNAMODB: ledger.endpoint, LOCK_LEDGER_TABLE: ledger.tableName } : {}),
      ...extra,
    }),
    worker: async (env) =>
      (
        await startChild<WorkerApi>(join(import.meta.dirname, 'worker.ts'), {
          cwd: ROOT,
          env: cleanEnv(env),
          nodeArgs: ['--expose-gc'],
        })
      ).peer,
    seed: (count) => emulator.call('seed', LOCAL_USER_ID, { count }),
    stats: () => emulator.call('stats'),
    resetEmulator: async (latencyMs = sizes.latencyMs) => {
      await emulator.call('reset');
      await emulator.call('latency', latencyMs);
    },
    sqsEvent: (lockIds) => ({
      Records: lockIds.map((lockId, i) => ({
        messageId: `bench-${randomUUID()}-${i}`,
        receiptHandle: `bench-${i}`,
        body: JSON.stringify({ lockId, userId: LOCAL_USER_ID }),
        attributes: { ApproximateReceiveCount: '1' },
        messageAttributes: {},
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:bench-release',
        awsRegion: 'us-east-1',
      })),
    }),
    heapFlags: (mb) => {
      const newSpace = Math.floor(mb / 10);
      return [`--max-semi-space-size=${Math.floor(newSpace / 2)}`, `--max-old-space-size=${mb - newSpace}`];
    },
    ideal: (n) => Math.ceil(n / sizes.concurrency) * sizes.latencyMs,
    onClose: (close) => void closers.push(close),
    close: async () => {
      for (const close of closers.reverse()) await close();
      await emulator.stop();
      await secrets.close();
      await ledgerDb.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/** A process's peak RSS as the bundle host reports it (VmHWM where /proc has it). */
export const peakRss = (run: { vmHwmMb?: number; maxRssMb: number }): number => run.vmHwmMb ?? run.maxRssMb;
