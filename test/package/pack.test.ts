/**
 * The package as worker teams get it: `npm pack` (prepack builds dist/ and swaps in the package's README), the
 * tarball installed into separate projects, and everything used from there: ./holder and ./testing from ESM and
 * CommonJS, on Node 24 (this repository's) and Node 22 (the `node@22` package installed into a cached temporary
 * folder), type-checked with Node's own resolution; SIGTERM to a worker holding a lock; the test-kit example;
 * the koodrive-emulator bin.
 *
 * The consumer projects link the package's dependencies from this repository's node_modules and install the
 * tarball offline, so npm finds every dependency satisfied and installs the tarball only. Only Node 22 comes from
 * the registry, once per machine (it is cached under the system's temporary folder).
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../dev/dynalite';
import { DynamoLedger } from '../../src/ledger/ledger';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

const ROOT = join(import.meta.dirname, '..', '..');
const PACKAGE = 'koodrive-lock-releaser';
const NODE22_DIR = join(tmpdir(), 'koodrive-lock-releaser-node22');
const NODE24 = join(ROOT, 'node_modules', '.bin', 'node');
let NODE22: string;

let workDir: string;
let esm: string;
let cjs: string;
let tarball: string;
let packed: { filename: string; files: { path: string }[] };
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  engines: { node: string };
};

/** A child process on this repository's tools, without the npm_* settings of a parent npm run. */
function run(command: string, args: string[], cwd: string, timeout = 120_000): SpawnSyncReturns<string> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key)) env[key] = value;
  }
  env.PATH = `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`;
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout });
  if (result.error) throw result.error;
  return result;
}

function ok(result: SpawnSyncReturns<string>, what: string): string {
  if (result.status !== 0) {
    throw new Error(
      `${what} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

function link(project: string, name: string): void {
  const to = join(project, 'node_modules', name);
  if (existsSync(to)) return;
  mkdirSync(dirname(to), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules', name), to, 'dir');
}

/** A project of its own (`type` as `npm init` would set it) with the tarball installed. */
function consumer(name: string, type: 'module' | 'commonjs'): string {
  const dir = join(workDir, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type }));
  for (const dep of Object.keys(manifest.dependencies)) link(dir, dep);
  ok(
    run(
      'npm',
      [
        'install',
        '--offline',
        '--no-save',
        '--no-package-lock',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        tarball,
      ],
      dir,
    ),
    `npm install of the tarball into ${name}`,
  );
  // After the install: npm removes links that no dependency asks for.
  for (const dep of ['@types/node', 'vitest', 'typescript']) link(dir, dep);
  return dir;
}

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'koodrive-pack-'));
  const out = ok(run('npm', ['pack', '--pack-destination', workDir, '--json'], ROOT), 'npm pack');
  [packed] = JSON.parse(out.slice(out.indexOf('[\n'))) as [typeof packed];
  tarball = join(workDir, packed.filename);
  esm = consumer('esm-worker', 'module');
  cjs = consumer('cjs-worker', 'commonjs');
  NODE22 = join(NODE22_DIR, 'node_modules', '.bin', 'node');
  if (!existsSync(NODE22)) {
    ok(
      run('npm', ['install', '--prefix', NODE22_DIR, '--no-audit', '--no-fund', 'node@22'], ROOT, 300_000),
      'npm install node@22',
    );
  }
}, 400_000);

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the builds, their declarations, the package README and package.json: no sources or tests', () => {
    const paths = packed.files.map((f) => f.path).sort();
    for (const path of paths) {
      expect(path, path).toMatch(
        /^(dist\/(holder|testing)\.(js|cjs)|dist\/koodrive-emulator\.js|dist\/chunks\/chunk-\w+\.js|dist\/cjs\/index\.cjs|dist\/types\/.+\.d\.c?ts|package\.json|README\.md)$/,
      );
    }
    for (const path of [
      'dist/holder.js',
      'dist/holder.cjs',
      'dist/testing.js',
      'dist/testing.cjs',
      'README.md',
    ]) {
      expect(paths).toContain(path);
    }
    const readme = ok(run('tar', ['-xOzf', tarball, 'package/README.md'], workDir), 'tar');
    expect(readme).toMatch(/koodrive-lock-releaser\/testing/);
    expect(readme.split('\n').length).toBeLessThan(150);
    // The repository's README is back in place after the pack.
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).not.toBe(readme);
    expect(existsSync(join(ROOT, '.README.repo.md'))).toBe(false);
  });

  it('is publishable: not private, engines for Node 22.19+ and 24, its bin and exports present', () => {
    const pkg = JSON.parse(
      ok(run('tar', ['-xOzf', tarball, 'package/package.json'], workDir), 'tar'),
    ) as Record<string, unknown>;
    expect(pkg.private).toBeUndefined();
    expect(pkg.engines).toEqual({ node: '^22.19.0 || >=24.0.0' });
    expect(pkg.bin).toEqual({ 'koodrive-emulator': 'dist/koodrive-emulator.js' });
    expect(Object.keys(pkg.exports as object)).toEqual(['./holder', './testing', './package.json']);
    expect(Object.keys(pkg.dependencies as object).sort()).toEqual([
      '@aws-sdk/client-dynamodb',
      '@aws-sdk/client-secrets-manager',
      'undici',
      'zod',
    ]);
  });

  it('dependencies are exactly the packages dist/ imports', () => {
    const imported = new Set<string>();
    for (const path of packed.files.map((f) => f.path).filter((p) => /\.(c?js)$/.test(p))) {
      const text = ok(run('tar', ['-xOzf', tarball, `package/${path}`], workDir), 'tar');
      for (const [, spec] of text.matchAll(/(?:from |require\()["']([^"'.][^"']*)["']/g)) {
        if (spec!.startsWith('node:')) continue;
        imported.add(spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]!);
      }
    }
    expect([...imported].sort()).toEqual(Object.keys(manifest.dependencies).sort());
  });
});

/** A worker on the test kit: holds a lock, loses its lease, and reports what the testbed saw. */
const TESTBED_WORKER = (load: string) => `${load}
async function main() {
  const testbed = await createTestbed({ clock: 'virtual' });
  const holder = testbed.holder({ name: 'w', leaseSeconds: 30 });
  const value = await holder.hold('user-1', '100', (lease) => lease.lockId);
  const lost = holder.hold('user-1', '101', async (lease) => {
    await new Promise((resolve) => lease.signal.addEventListener('abort', resolve));
    return lease.signal.reason;
  });
  await testbed.settled();
  testbed.koodrive.fail({ on: 'renew', with: 'gone' });
  await testbed.clock.advance(10_000);
  const reason = await lost;
  let config = '';
  try { new LockHolder({ name: 'w' }); } catch (e) { config = e instanceof ConfigError ? e.problems.join(' | ') : 'wrong'; }
  console.log(JSON.stringify({
    node: process.versions.node,
    released: testbed.ledger.item(value).status,
    live: testbed.koodrive.isLive(value),
    lostIsLockLostError: reason instanceof LockLostError,
    requests: testbed.koodrive.requests.map((r) => r.operation + ' ' + r.status),
    config,
  }));
  await testbed.close();
}
main();
`;

describe.each([
  ['Node 24', () => NODE24, '24.'],
  ['Node 22', () => NODE22, '22.'],
])('%s', (_name, node, major) => {
  const expected = {
    released: 'RELEASED',
    live: false,
    lostIsLockLostError: true,
    requests: ['create 200', 'release 200', 'create 200', 'renew 400', 'release 200'],
    config: expect.stringMatching(/^secretId is missing.* \| tableName is missing/) as unknown,
  };

  it('an ESM worker imports ./holder and ./testing, one LockLostError class across both', () => {
    writeFileSync(
      join(esm, 'testbed-worker.js'),
      TESTBED_WORKER(
        `import { ConfigError, LockHolder, LockLostError } from '${PACKAGE}/holder';\nimport { createTestbed } from '${PACKAGE}/testing';`,
      ),
    );
    const answer = JSON.parse(ok(run(node(), ['testbed-worker.js'], esm), 'ESM worker')) as { node: string };
    expect(answer.node.startsWith(major)).toBe(true);
    expect(answer).toMatchObject(expected);
  });

  it('a CommonJS worker requires ./holder and ./testing', () => {
    writeFileSync(
      join(cjs, 'testbed-worker.js'),
      TESTBED_WORKER(
        `const { ConfigError, LockHolder, LockLostError } = require('${PACKAGE}/holder');\nconst { createTestbed } = require('${PACKAGE}/testing');`,
      ),
    );
    const answer = JSON.parse(ok(run(node(), ['testbed-worker.js'], cjs), 'CJS worker')) as { node: string };
    expect(answer.node.startsWith(major)).toBe(true);
    expect(answer).toMatchObject(expected);
  });

  it('SIGTERM to a worker holding a lock (the emulator bin, the ledger on dynalite): freed and RELEASED within 2 s, and the process exits', async () => {
    const dynamo: LocalDynamo = await startDynalite();
    const emulator = spawn(node(), [join(esm, 'node_modules', '.bin', 'koodrive-emulator')], {
      cwd: esm,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const [line] = (await once(emulator.stdout, 'data')) as [Buffer];
      const printed = JSON.parse(line.toString()) as { url: string; control: string; settings: object };
      writeFileSync(
        join(esm, 'sigterm-worker.js'),
        `import { LockHolder } from '${PACKAGE}/holder';
const holder = new LockHolder({ tableName: '${dynamo.tableName}', settings: ${JSON.stringify(printed.settings)},
  name: 'worker-' + process.pid, shutdownSignals: ['SIGTERM'] });
await holder.hold('user-1', '101', async (lease) => {
  console.log(JSON.stringify({ lockId: lease.lockId }));
  while (!lease.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 50));
});
`,
      );
      const worker = spawn(node(), ['sigterm-worker.js'], {
        cwd: esm,
        env: {
          ...process.env,
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: 'local',
          AWS_SECRET_ACCESS_KEY: 'local',
          AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = once(worker, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      let stderr = '';
      worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const [started] = (await Promise.race([
        once(worker.stdout, 'data'),
        exited.then(() => [Buffer.from(stderr)]),
      ])) as [Buffer];
      const { lockId } = JSON.parse(started.toString()) as { lockId: string };
      const lockOf = async () =>
        (
          (await (await fetch(`${printed.control}/locks`)).json()) as {
            lockId: string;
            releasedAt?: number;
          }[]
        ).find((l) => l.lockId === lockId);
      expect((await lockOf())?.releasedAt).toBeUndefined();
      const ledger = new DynamoLedger({
        tableName: dynamo.tableName,
        calls: httpDynamoCallsFor(dynamo.client),
      });

      const sentAt = Date.now();
      worker.kill('SIGTERM');
      let freedAfter = -1;
      while (Date.now() - sentAt < 5000) {
        if ((await lockOf())?.releasedAt !== undefined && (await ledger.get(lockId))?.status === 'RELEASED') {
          freedAfter = Date.now() - sentAt;
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const [code, signal] = await exited;
      expect(stderr).toBe('');
      expect(freedAfter).toBeGreaterThanOrEqual(0);
      expect(freedAfter).toBeLessThan(2000);
      expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
      console.log(`${_name}: SIGTERM → lock freed and RELEASED after ${freedAfter} ms`);
    } finally {
      emulator.kill('SIGTERM');
      await once(emulator, 'exit');
      await dynamo.close();
    }
  }, 30_000);
});

describe('the test-kit example and the docs samples', () => {
  it('examples/lease-lost.test.ts passes from the installed tarball', () => {
    writeFileSync(
      join(esm, 'lease-lost.test.ts'),
      readFileSync(join(ROOT, 'examples', 'lease-lost.test.ts')),
    );
    const out = ok(
      run('vitest', ['run', '--root', esm, '--reporter', 'verbose', 'lease-lost.test.ts'], esm),
      'vitest in the consumer',
    );
    expect(out).toMatch(/my worker stops writing when its lease is lost/);
    expect(out).toMatch(/1 passed/);
  });

  it('the README samples type-check in `npm init` projects with `tsc --init`, CommonJS and ESM', () => {
    const readme = ok(run('tar', ['-xOzf', tarball, 'package/README.md'], workDir), 'tar');
    const samples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(samples).toHaveLength(2);
    for (const project of [cjs, esm]) {
      rmSync(join(project, 'tsconfig.json'), { force: true });
      ok(run('tsc', ['--init', '--types', 'node'], project), 'tsc --init');
      writeFileSync(join(project, 'sample-holder.ts'), samples[0]!);
      writeFileSync(join(project, 'sample-testing.ts'), samples[1]!);
      // tsc --init's verbatimModuleSyntax refuses `import` in any CommonJS project; a CommonJS worker turns it off
      // (its imports become require calls, and a top-level await fails there: TS1309).
      const cjsProject = project === cjs ? ['--verbatimModuleSyntax', 'false'] : [];
      ok(run('tsc', ['-p', '.', '--noEmit', ...cjsProject], project), `tsc in ${project}`);
    }
  });

  it('the koodrive-emulator bin prints its URL and credentials, answers signed requests, and refuses a bad fault', async () => {
    const bin = join(esm, 'node_modules', '.bin', 'koodrive-emulator');
    const bad = run(NODE24, [bin, '--fail', 'renew=bogus'], esm);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown failure "bogus"/);
    const emulator = spawn(NODE24, [bin, '--fail', 'create=503:1', '--app-id', 'team-app'], {
      cwd: esm,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const [line] = (await once(emulator.stdout, 'data')) as [Buffer];
      const printed = JSON.parse(line.toString()) as {
        url: string;
        appId: string;
        appSecret: string;
        control: string;
      };
      expect(printed.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(printed.appId).toBe('team-app');
      writeFileSync(
        join(esm, 'bin-client.js'),
        `import { LockHolder } from '${PACKAGE}/holder';
import { MemoryLedger } from '${PACKAGE}/testing';
const holder = new LockHolder({ settings: ${JSON.stringify({ endpoint: printed.url, appId: printed.appId, appSecret: printed.appSecret })}, ledger: new MemoryLedger({ now: Date.now }) });
const first = await holder.acquire('u', '100').then(() => 'taken', (e) => e.error.httpStatus);
const second = await holder.hold('u', '100', (lease) => lease.lockId);
console.log(JSON.stringify({ first, second }));
`,
      );
      const answer = JSON.parse(ok(run(NODE24, ['bin-client.js'], esm), 'bin client')) as {
        first: number;
        second: string;
      };
      expect(answer.first).toBe(503);
      const requests = (await (await fetch(`${printed.control}/requests`)).json()) as {
        operation: string;
        status: number;
        authOk: boolean;
      }[];
      expect(requests.map((r) => `${r.operation} ${r.status} ${r.authOk}`)).toEqual([
        'create 503 false',
        'create 200 true',
        'release 200 true',
      ]);
      const locks = (await (await fetch(`${printed.control}/locks`)).json()) as {
        lockId: string;
        releasedAt?: number;
      }[];
      expect(locks).toEqual([
        expect.objectContaining({ lockId: answer.second, releasedAt: expect.any(Number) as number }),
      ]);
    } finally {
      emulator.kill('SIGTERM');
      const [code] = (await once(emulator, 'exit')) as [number | null];
      expect(code).toBe(0);
    }
  });
});
