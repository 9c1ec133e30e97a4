/**
 * Item 4, cold start: the release function's package (built by `sls package`, or by esbuild with the same
 * options in --quick), its composition (esbuild's metafile), the module load time of the bundle and the cold
 * first release in fresh Node processes, and alternative builds measured side by side.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as esbuild from 'esbuild';
import { attach, type Peer } from './ipc';
import { estimateZipSize, extractZip, readZip } from './zip';

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

/** The release function's memory size and timeout as serverless.yml sets them (defaults of its parameters). */
export function releaseFunctionConfig(): { memorySize: number; timeoutSeconds: number } {
  const doc = readServerlessYml();
  const resolve = (value: unknown): number => {
    const param = typeof value === 'string' ? /^\$\{param:(\w+)\}$/.exec(value)?.[1] : undefined;
    return Number(param === undefined ? value : doc.params?.default?.[param]);
  };
  const release = doc.functions?.release;
  return {
    memorySize: resolve(release?.memorySize ?? doc.provider?.memorySize ?? 1024),
    timeoutSeconds: resolve(release?.timeout ?? 6),
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

function run(
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

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

// ---------------------------------------------------------------------------------------------------------
// What the bundle is made of.

export interface Part {
  name: string;
  bytes: number;
  share: number;
}

/** Output bytes per package (and `src/` for our own code), largest first; and the largest input files. */
export function composition(metafile: esbuild.Metafile): { total: number; packages: Part[]; files: Part[] } {
  const output = Object.entries(metafile.outputs).find(([name]) => name.endsWith('.cjs'))?.[1];
  if (!output) throw new Error('the metafile has no .cjs output');
  const packages = new Map<string, number>();
  const files: Part[] = [];
  for (const [file, { bytesInOutput }] of Object.entries(output.inputs)) {
    const pkg =
      /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1] ?? (file.startsWith('src/') ? 'src (ours)' : file);
    packages.set(pkg, (packages.get(pkg) ?? 0) + bytesInOutput);
    files.push({
      name: file.replace(/^node_modules\//, ''),
      bytes: bytesInOutput,
      share: bytesInOutput / output.bytes,
    });
  }
  return {
    total: output.bytes,
    packages: [...packages]
      .map(([name, bytes]) => ({ name, bytes, share: bytes / output.bytes }))
      .sort((a, b) => b.bytes - a.bytes),
    files: files.sort((a, b) => b.bytes - a.bytes),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Alternative builds.

/**
 * What client.ts needs from undici, without the package root (which also loads fetch, WebSocket, the cache,
 * mocks and interceptors): the Agent, and request() put on the Dispatcher prototype as the root does.
 */
const SLIM_UNDICI = `
const Agent = require('undici/lib/dispatcher/agent');
const Dispatcher = require('undici/lib/dispatcher/dispatcher');
Dispatcher.prototype.request = require('undici/lib/api/api-request');
module.exports = { Agent };
`;

function slimUndici(): esbuild.Plugin {
  return {
    name: 'bench-slim-undici',
    setup(build) {
      build.onResolve({ filter: /^undici$/ }, (args) =>
        args.importer.endsWith(join('src', 'koodrive', 'client.ts'))
          ? { path: 'undici-slim', namespace: 'bench-slim-undici', pluginData: dirname(args.importer) }
          : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: 'bench-slim-undici' }, (args) => ({
        contents: SLIM_UNDICI,
        loader: 'js',
        resolveDir: args.pluginData as string,
      }));
    },
  };
}

/** Resolves `undici` and `undici/...` to another copy of the package (undici 7). */
function undiciFrom(dir: string): esbuild.Plugin {
  return {
    name: 'bench-undici-from',
    setup(build) {
      build.onResolve({ filter: /^undici(\/.*)?$/ }, (args) => {
        const sub = args.path.slice('undici'.length).replace(/^\//, '');
        const base = join(dir, sub || 'index.js');
        const file = [base, `${base}.js`, join(base, 'index.js')].find((f) => isFile(f));
        return file ? { path: file } : undefined;
      });
    },
  };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

const STUB_PROXY = `
const handler = {
  get: (_, key) => (key === Symbol.toPrimitive ? () => '' : key === 'then' ? undefined : stub),
  apply: () => stub,
  construct: () => stub,
};
const stub = new Proxy(function () {}, handler);
export default stub;
`;

/** Replaces the packages matching `filter`, where src/ imports them, by an inert stand-in with the same exports. */
function without(filter: RegExp): esbuild.Plugin {
  return {
    name: 'bench-without',
    setup(build) {
      build.onResolve({ filter }, (args) =>
        args.importer.includes(`${join(ROOT, 'src')}`)
          ? { path: args.path, namespace: 'bench-without' }
          : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: 'bench-without' }, async (args) => {
        const real = (await import(args.path)) as Record<string, unknown>;
        const names = Object.keys(real).filter((n) => n !== 'default' && /^[A-Za-z_$][\w$]*$/.test(n));
        return {
          contents: `${STUB_PROXY}export { ${names.map((n) => `stub as ${n}`).join(', ')} };\n`,
          loader: 'js',
        };
      });
    },
  };
}

export interface Variant {
  name: string;
  /** What it shows. */
  note: string;
  options(configured: esbuild.BuildOptions): esbuild.BuildOptions;
  nodeArgs?: string[];
  /** Deflate level of the zip (serverless-esbuild's archiver: 1; its nativeZip: the zip tool's 6). */
  zipLevel?: number;
  /** False for builds with parts left out: they load, but cannot release a lock. */
  invokes?: boolean;
}

const plus = (options: esbuild.BuildOptions, ...plugins: esbuild.Plugin[]): esbuild.BuildOptions => ({
  ...options,
  plugins: [...(options.plugins ?? []), ...plugins],
});

/** Groups of `external` entries that custom.esbuild may list, each a variant with the group toggled. */
const EXTERNAL_GROUPS = [
  {
    what: "undici's milo parser",
    why: 'loaded only with UNDICI_USE_MILO=1',
    patterns: ['*/milo/simd.js', '*/milo/no-simd.js'],
  },
  {
    what: "undici's non-SIMD llhttp parser",
    why: 'the fallback without WebAssembly SIMD',
    patterns: ['*/llhttp/llhttp-wasm.js'],
  },
  {
    what: "the AWS SDK's credential sources beyond the environment",
    why: 'Lambda puts the credentials in the environment',
    patterns: [
      '@aws-sdk/credential-provider-sso',
      '@aws-sdk/credential-provider-ini',
      '@aws-sdk/credential-provider-process',
      '@aws-sdk/credential-provider-web-identity',
      '@aws-sdk/credential-provider-http',
      '@smithy/credential-provider-imds',
    ],
  },
];

const AWS_SDK = /^@aws-sdk\//;
const UNDICI = /^undici(\/.*)?$/;
const POWERTOOLS = /^@aws-lambda-powertools\//;
const ANY_DEPENDENCY = /^(@aws-sdk\/.*|undici(\/.*)?|@aws-lambda-powertools\/.*|zod(\/.*)?|@middy\/core)$/;
const either = (...filters: RegExp[]) => new RegExp(filters.map((f) => `(?:${f.source})`).join('|'));

/**
 * The alternatives, each a change of the configured build. `undici7` is a folder holding undici 7, if any;
 * `rootUndici` whether the configured build holds undici's package root (client.ts imports 'undici').
 */
export function variants(
  configured: esbuild.BuildOptions,
  undici7: string | undefined,
  rootUndici: boolean,
): Variant[] {
  const external = configured.external ?? [];
  const dynamicImport = (configured.supported ?? {})['dynamic-import'] !== false;
  const list: Variant[] = [
    { name: 'configured', note: 'custom.esbuild of serverless.yml as it is', options: (o) => o },
  ];
  for (const group of EXTERNAL_GROUPS) {
    const listed = group.patterns.every((p) => external.includes(p));
    list.push(
      listed
        ? {
            name: `${group.what} bundled`,
            note: `as before tuning (${group.why}); configured leaves it out`,
            options: (o) => ({
              ...o,
              external: (o.external ?? []).filter((p) => !group.patterns.includes(p)),
            }),
          }
        : {
            name: `${group.what} left out`,
            note: group.why,
            options: (o) => ({ ...o, external: [...(o.external ?? []), ...group.patterns] }),
          },
    );
  }
  list.push(
    dynamicImport
      ? {
          name: 'import() as require()',
          note: "supported: {dynamic-import: false}: the SDK's import('node:http') no longer loads Node's fetch",
          options: (o) => ({ ...o, supported: { ...o.supported, 'dynamic-import': false } }),
        }
      : {
          name: 'import() kept',
          note: "as before tuning: the SDK's import('node:http') also loads Node's own fetch (undici)",
          options: (o) => ({ ...o, supported: { ...o.supported, 'dynamic-import': true } }),
        },
  );
  if (rootUndici) {
    list.push({
      name: 'undici Agent only',
      note: 'client.ts imports undici/lib/dispatcher/agent.js (+ request()) instead of the package root',
      options: (o) => plus(o, slimUndici()),
    });
  }
  if (undici7) {
    list.push({
      name: 'undici 7',
      note: `undici 7 instead of 8, imported as client.ts imports it`,
      options: (o) => plus(o, undiciFrom(undici7)),
    });
  }
  list.push(
    {
      name: 'AWS SDK CJS builds',
      note: "mainFields [main, module]: the SDK's dist-cjs instead of dist-es",
      options: (o) => ({ ...o, mainFields: ['main', 'module'] }),
    },
    {
      name: 'source maps on',
      note: 'sourcemap: true (the .map is packaged) and --enable-source-maps',
      options: (o) => ({ ...o, sourcemap: true }),
      nodeArgs: ['--enable-source-maps'],
    },
    { name: 'keepNames off', note: 'keepNames: false', options: (o) => ({ ...o, keepNames: false }) },
    {
      name: 'zip level 6',
      note: 'the same bundle zipped at deflate level 6 (nativeZip: true, with a zip tool installed)',
      options: (o) => o,
      zipLevel: 6,
    },
    {
      name: 'without the DynamoDB clients',
      note: 'attribution: what a lazy import of the ledger could take out of the load',
      options: (o) => plus(o, without(/^@aws-sdk\/(client-dynamodb|lib-dynamodb)$/)),
      invokes: false,
    },
    {
      name: 'without the AWS SDK',
      note: 'attribution, cumulative from here: Secrets Manager and DynamoDB clients left out',
      options: (o) => plus(o, without(AWS_SDK)),
      invokes: false,
    },
    {
      name: '… and undici',
      note: 'attribution: and undici',
      options: (o) => plus(o, without(either(AWS_SDK, UNDICI))),
      invokes: false,
    },
    {
      name: '… and Powertools',
      note: 'attribution: and Powertools logger and metrics',
      options: (o) => plus(o, without(either(AWS_SDK, UNDICI, POWERTOOLS))),
      invokes: false,
    },
    {
      name: 'our code only',
      note: 'attribution: and zod, middy: src/ and Node builtins alone',
      options: (o) => plus(o, without(ANY_DEPENDENCY)),
      invokes: false,
    },
  );
  return list;
}

export interface VariantResult {
  name: string;
  note: string;
  rawKb: number;
  zipKb: number;
  loadMs: number;
  /** Median of load + the first invocation (one lock, secret read); absent for builds that cannot invoke. */
  firstMs?: number;
}

/** How variants release a lock: the stack's environment and a fresh event per run. */
export interface VariantInvoke {
  env: Record<string, string>;
  event(): Promise<unknown>;
}

/**
 * Builds every variant, then runs each in fresh processes, interleaved (so machine noise hits them alike): the
 * load time, and load + first invocation for those that can invoke.
 */
export async function measureVariants(
  configured: esbuild.BuildOptions,
  list: Variant[],
  runs: number,
  scratch: string,
  invoke: VariantInvoke,
): Promise<VariantResult[]> {
  const built: Array<{ variant: Variant; built: Built; loads: number[]; firsts: number[] }> = [];
  for (const [i, variant] of list.entries()) {
    const dir = join(scratch, `variant-${i}`);
    built.push({
      variant,
      built: await buildRelease(variant.options(configured), dir),
      loads: [],
      firsts: [],
    });
  }
  for (let r = 0; r < runs; r++) {
    for (const entry of built) {
      const invokes = entry.variant.invokes !== false;
      const res = await runBundle(entry.built.bundle, {
        nodeArgs: entry.variant.nodeArgs ?? [],
        ...(invokes ? { env: invoke.env, events: [await invoke.event()] } : {}),
      });
      entry.loads.push(res.loadMs);
      if (invokes && res.firstMs !== undefined) entry.firsts.push(res.firstMs);
    }
  }
  return built.map(({ variant, built: b, loads, firsts }) => ({
    name: variant.name,
    note: variant.note,
    rawKb: b.files.reduce((n, f) => n + f.data.length, 0) / 1024,
    zipKb: estimateZipSize(b.files, variant.zipLevel ?? 1) / 1024,
    loadMs: median(loads),
    ...(firsts.length ? { firstMs: median(firsts) } : {}),
  }));
}

/** Whether a build holds undici's package root (index.js), i.e. client.ts imports 'undici'. */
export function bundlesUndiciRoot(metafile: esbuild.Metafile): boolean {
  return Object.keys(metafile.inputs).some((input) => /node_modules\/undici\/index\.js$/.test(input));
}

/**
 * undici 7 for the comparison: a copy under .local/bench/ (fetched once with `npm pack`, the ordinary npm
 * client), or undefined when it is not there and `fetch` is false or npm cannot get it (offline).
 */
export async function undici7(
  fetchIfMissing: boolean,
): Promise<{ dir: string; version: string } | undefined> {
  const base = join(ROOT, '.local', 'bench');
  const dir = join(base, 'undici-7', 'package');
  const read = () => ({
    dir,
    version: (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version,
  });
  if (existsSync(join(dir, 'package.json'))) return read();
  if (!fetchIfMissing) return undefined;
  try {
    mkdirSync(join(base, 'undici-7'), { recursive: true });
    const out = await run('npm', ['pack', 'undici@7', '--silent', '--pack-destination', base], { cwd: base });
    const tarball = out.trim().split('\n').pop() ?? '';
    await run('tar', ['-xzf', join(base, tarball), '-C', join(base, 'undici-7')], { cwd: base });
    return read();
  } catch {
    return undefined;
  }
}
