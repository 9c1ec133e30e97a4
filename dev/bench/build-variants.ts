/**
 * The cold-start alternatives: the configured build changed one way at a time (or with parts left out, to
 * attribute the load time), each built, zipped as serverless-esbuild zips, loaded and invoked in fresh processes,
 * interleaved; and what the configured bundle is made of (esbuild's metafile).
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as esbuild from 'esbuild';
import { buildRelease, ROOT, run, runBundle, type Built } from './bundle';
import { median } from './report';
import { estimateZipSize } from './zip';

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
