/**
 * The release function as deployed: its build options (custom.esbuild of serverless.yml), its package (`sls
 * package`, or esbuild with the same options), and fresh plain `node` processes that require() the bundle and
 * invoke its handler, as the Lambda runtime does (one-shot, or answering over IPC as a warm container).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as esbuild from 'esbuild';
import { attach, type Peer } from './ipc';
import { extractZip, readZip } from './zip';

export const ROOT = join(import.meta.dirname, '..', '..');
const RELEASE_ENTRY = 'src/handlers/release.ts';

// ---------------------------------------------------------------------------------------------------------
// The build options serverless.yml gives serverless-esbuild.

const require = createRequire(import.meta.url);
interface YamlType {
  new (
    tag: string,
    options: { kind: 'scalar' | 'sequence' | 'mapping'; construct(data: unknown): unknown },
  ): object;
}
const yaml = require('js-yaml') as {
  Type: YamlType;
  DEFAULT_SCHEMA: { extend(types: object[]): unknown };
  load(text: string, options: { schema: unknown }): unknown;
};

/** CloudFormation's short-form tags, so serverless.yml parses (their values are not used here). */
const CFN_TAGS = ['Ref', 'GetAtt', 'Sub', 'Join', 'Select', 'Split', 'If', 'Not', 'Equals', 'And', 'Or'];
const CFN_SCHEMA = yaml.DEFAULT_SCHEMA.extend(
  CFN_TAGS.flatMap((tag) =>
    (['scalar', 'sequence', 'mapping'] as const).map(
      (kind) => new yaml.Type(`!${tag}`, { kind, construct: (data) => ({ [`Fn::${tag}`]: data }) }),
    ),
  ),
);

/** serverless-esbuild's own keys, which it removes before calling esbuild (its bundle.js). */
const PLUGIN_KEYS = [
  'concurrency',
  'zipConcurrency',
  'exclude',
  'nativeZip',
  'packager',
  'packagePath',
  'watch',
  'keepOutputDirectory',
  'packagerOptions',
  'installExtraArgs',
  'outputFileExtension',
  'outputBuildFolder',
  'outputWorkFolder',
  'nodeExternals',
  'skipBuild',
  'skipRebuild',
  'skipBuildExcludeFns',
  'stripEntryResolveExtensions',
  'disposeContext',
  'config',
];

export function readServerlessYml(): {
  custom?: { esbuild?: Record<string, unknown> };
  params?: { default?: Record<string, unknown> };
  provider?: { memorySize?: unknown };
  functions?: Record<
    string,
    { memorySize?: unknown; timeout?: unknown; events?: Array<Record<string, unknown>> }
  >;
} {
  return yaml.load(readFileSync(join(ROOT, 'serverless.yml'), 'utf8'), { schema: CFN_SCHEMA }) as ReturnType<
    typeof readServerlessYml
  >;
}

/** What serverless.yml deploys (the defaults of its parameters), as the cost and load models need it. */
export function deployed(): {
  releaseMemoryMb: number;
  releaseTimeoutSeconds: number;
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
    releaseTimeoutSeconds: resolve(release?.timeout, 6),
    batchSize: resolve(sqs?.batchSize, 10),
    maxConcurrency: resolve(sqs?.maximumConcurrency, 5),
    sweepMemoryMb: resolve(doc.functions?.sweep?.memorySize ?? doc.provider?.memorySize, 1024),
    sweepPeriodSeconds: resolve(params.sweepPeriodSeconds, 60),
  };
}

/** `custom.esbuild` of serverless.yml as the esbuild options serverless-esbuild would pass. */
export async function configuredBuildOptions(): Promise<esbuild.BuildOptions> {
  const custom = { ...readServerlessYml().custom?.esbuild };
  const exclude = ([] as unknown[])
    .concat(custom.exclude ?? ['aws-sdk'])
    .filter((x) => typeof x === 'string');
  const external = ([] as unknown[]).concat(custom.external ?? []).filter((x) => typeof x === 'string');
  const options: esbuild.BuildOptions & Record<string, unknown> = {};
  for (const [key, value] of Object.entries(custom)) if (!PLUGIN_KEYS.includes(key)) options[key] = value;
  options.external = [...external, ...(exclude.includes('*') ? [] : exclude)] as string[];
  if (typeof custom.plugins === 'string') {
    const loaded = (await import(join(ROOT, custom.plugins))) as { default?: unknown };
    const plugins = loaded.default ?? loaded;
    options.plugins = (
      typeof plugins === 'function' ? (plugins as (sls: object) => unknown)({}) : plugins
    ) as esbuild.Plugin[];
  }
  return options;
}

export interface Built {
  dir: string;
  /** The handler file to require(). */
  bundle: string;
  files: Array<{ name: string; data: Uint8Array }>;
  metafile: esbuild.Metafile;
}

/** Builds the release handler with `options` into a fresh folder (as serverless-esbuild lays it out). */
export async function buildRelease(options: esbuild.BuildOptions, dir: string): Promise<Built> {
  const result = await esbuild.build({
    ...options,
    absWorkingDir: ROOT,
    entryPoints: [RELEASE_ENTRY],
    outdir: join(dir, 'src', 'handlers'),
    outExtension: { '.js': '.cjs' },
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const files = result.outputFiles.map((file) => {
    const name = file.path.slice(dir.length + 1);
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, file.contents);
    return { name, data: file.contents };
  });
  return { dir, bundle: join(dir, 'src', 'handlers', 'release.cjs'), files, metafile: result.metafile };
}

/** `sls package` into `dir`; the release function's zip, extracted next to it. */
export async function slsPackage(
  dir: string,
): Promise<{ zip: string; zipBytes: number; unzippedBytes: number; bundle: string }> {
  const out = join(dir, 'sls');
  await run(
    process.execPath,
    [join(ROOT, 'node_modules/osls/bin/serverless.js'), 'package', '--package', out],
    {
      cwd: ROOT,
    },
  );
  const zip = join(out, 'release.zip');
  const unzipped = join(dir, 'unzipped');
  const unzippedBytes = extractZip(zip, unzipped);
  const handler = readZip(zip).find((e) => /release\.c?js$/.test(e.name));
  if (!handler) throw new Error(`${zip} holds no release handler`);
  return { zip, zipBytes: readFileSync(zip).length, unzippedBytes, bundle: join(unzipped, handler.name) };
}

// ---------------------------------------------------------------------------------------------------------
// Fresh processes that load the bundle and invoke it, as the Lambda runtime does.

/**
 * Runs in a fresh plain `node`, as the Lambda runtime would: require() the bundle, then either invoke its handler
 * with each event of BENCH_EVENTS and write a result file (one-shot), or, with an IPC channel, answer the
 * benchmark's commands (invoke, memory, exit) in the same message format as ipc.ts.
 */
const BUNDLE_HOST = String.raw`
const { performance } = require('node:perf_hooks');
const fs = require('node:fs');
const t0 = performance.now();
const mod = require(process.env.BENCH_BUNDLE);
const loadMs = performance.now() - t0;
const rssAfterLoadMb = process.memoryUsage().rss / 1048576;
function context(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false, functionName: 'release', functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:release', memoryLimitInMB: '256',
    awsRequestId: 'bench-' + Math.random().toString(16).slice(2), logGroupName: '/aws/lambda/release',
    logStreamName: 'bench', getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {}, fail() {}, succeed() {},
  };
}
async function invoke(event, timeoutMs) {
  const started = performance.now();
  const cpu = process.cpuUsage();
  try {
    const answer = await mod.handler(event, context(timeoutMs || 300000));
    const used = process.cpuUsage(cpu);
    return { ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000,
      summary: answer && (answer.summary || { batchItemFailures: (answer.batchItemFailures || []).length }) };
  } catch (error) {
    const used = process.cpuUsage(cpu);
    return { ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000, error: String((error && error.stack) || error) };
  }
}
const peaks = { heapUsedMb: 0, heapTotalMb: 0, externalMb: 0 };
function sample() {
  const m = process.memoryUsage();
  peaks.heapUsedMb = Math.max(peaks.heapUsedMb, m.heapUsed / 1048576);
  peaks.heapTotalMb = Math.max(peaks.heapTotalMb, m.heapTotal / 1048576);
  peaks.externalMb = Math.max(peaks.externalMb, m.external / 1048576);
}
setInterval(sample, 20).unref();
function memory() {
  sample();
  let vmHwmMb;
  try { vmHwmMb = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024; } catch {}
  return { maxRssMb: process.resourceUsage().maxRSS / 1024, vmHwmMb, rssMb: process.memoryUsage().rss / 1048576, ...peaks };
}
if (process.send) {
  const commands = { invoke, memory, exit: () => { setImmediate(() => process.exit(0)); } };
  process.on('message', async (m) => {
    try {
      if (!commands[m.cmd]) throw new Error('unknown command ' + m.cmd);
      process.send({ id: m.id, ok: true, result: await commands[m.cmd](...m.args) });
    } catch (error) {
      process.send({ id: m.id, ok: false, error: String((error && error.stack) || error) });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true, info: { loadMs, rssAfterLoadMb } });
} else {
  (async () => {
    const events = process.env.BENCH_EVENTS ? JSON.parse(fs.readFileSync(process.env.BENCH_EVENTS, 'utf8')) : [];
    const invocations = [];
    let firstMs;
    let cpuAtFirstMs;
    for (const event of events) {
      invocations.push(await invoke(event));
      if (firstMs === undefined) {
        firstMs = performance.now() - t0;
        const cpu = process.cpuUsage();
        cpuAtFirstMs = (cpu.user + cpu.system) / 1000;
      }
    }
    fs.writeFileSync(process.env.BENCH_RESULT, JSON.stringify({ loadMs, firstMs, cpuAtFirstMs, rssAfterLoadMb, ...memory(), invocations }));
    process.exit(0);
  })();
}
`;

export interface Invocation {
  ms: number;
  cpuMs: number;
  summary?: Record<string, unknown>;
  error?: string;
}

export interface BundleRun {
  loadMs: number;
  /** From require() to the end of the first invocation. */
  firstMs?: number;
  /** CPU time of the whole process (Node's own start included) at the end of the first invocation. */
  cpuAtFirstMs?: number;
  rssAfterLoadMb: number;
  maxRssMb: number;
  vmHwmMb?: number;
  /** Peaks of process.memoryUsage(), sampled every 20 ms. */
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  invocations: Invocation[];
}

/** The commands a bundle host answers over IPC. */
export type BundleApi = {
  invoke(event: unknown, timeoutMs?: number): Invocation;
  memory(): {
    maxRssMb: number;
    vmHwmMb?: number;
    rssMb: number;
    heapUsedMb: number;
    heapTotalMb: number;
    externalMb: number;
  };
  exit(): void;
};

/** Only what a Lambda container would have, plus `env`: no NODE_OPTIONS, no npm or tsx variables. */
export function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'];
  return {
    ...Object.fromEntries(keep.filter((k) => process.env[k]).map((k) => [k, process.env[k]])),
    ...env,
  };
}

let runCounter = 0;

/** One-shot: a fresh process loads the bundle and invokes it with `events` in turn. */
export async function runBundle(
  bundle: string,
  options: { env?: Record<string, string>; events?: unknown[]; nodeArgs?: string[] } = {},
): Promise<BundleRun> {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-run-'));
  const result = join(scratch, `result-${runCounter++}.json`);
  const env: Record<string, string> = { ...options.env, BENCH_BUNDLE: bundle, BENCH_RESULT: result };
  if (options.events) {
    env.BENCH_EVENTS = join(scratch, 'events.json');
    writeFileSync(env.BENCH_EVENTS, JSON.stringify(options.events));
  }
  try {
    await run(process.execPath, [...(options.nodeArgs ?? []), '-e', BUNDLE_HOST], {
      cwd: dirname(bundle),
      env: cleanEnv(env),
    });
    if (!existsSync(result)) throw new Error(`the bundle child wrote no result (${bundle})`);
    const parsed = JSON.parse(readFileSync(result, 'utf8')) as BundleRun;
    const failed = parsed.invocations.find((i) => i.error);
    if (failed) throw new Error(`invocation failed in the bundle child: ${failed.error}`);
    return parsed;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A fresh process that loads the bundle and then answers invoke/memory/exit, as a warm container would. */
export async function startBundle(
  bundle: string,
  env: Record<string, string>,
): Promise<{ peer: Peer<BundleApi>; loadMs: number }> {
  const child = spawn(process.execPath, ['-e', BUNDLE_HOST], {
    cwd: dirname(bundle),
    env: cleanEnv({ ...env, BENCH_BUNDLE: bundle }),
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const { peer, info } = await attach<BundleApi>(child, bundle);
  return { peer, loadMs: (info as { loadMs: number }).loadMs };
}

export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-6000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${args.slice(0, 3).join(' ')} failed (${signal ?? code}):\n${output}`));
    });
  });
}
