/**
 * The package as a worker's project gets it: `npm pack` (prepack builds dist/), the tarball installed into a
 * separate project, `koodrive-lock-releaser/holder` imported at run time and type-checked with Node's own
 * module resolution (nodenext).
 *
 * No network: the consumer project links the package's dependencies from this repository's node_modules
 * before it installs the tarball offline, so npm finds every dependency satisfied and installs the tarball only.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PACKAGE = 'koodrive-lock-releaser';

let workDir: string;
let consumer: string;
let tarball: string;
let packed: { filename: string; files: { path: string }[] };

/** A child process on this repository's Node 24 and tools, without the npm_* settings of a parent npm run. */
function run(command: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key)) env[key] = value;
  }
  env.PATH = `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`;
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 100_000 });
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

function link(name: string): void {
  const to = join(consumer, 'node_modules', name);
  mkdirSync(dirname(to), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules', name), to, 'dir');
}

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'koodrive-pack-'));
  const out = ok(run('npm', ['pack', '--pack-destination', workDir, '--json'], ROOT), 'npm pack');
  // npm prints the prepack script's output before the JSON.
  [packed] = JSON.parse(out.slice(out.indexOf('['))) as [typeof packed];
  tarball = join(workDir, packed.filename);

  consumer = join(workDir, 'consumer');
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'backup-worker', version: '1.0.0', private: true, type: 'module' }),
  );
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  for (const name of Object.keys(manifest.dependencies)) link(name);
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
      consumer,
    ),
    'npm install of the tarball',
  );
  // After the install: npm removes links that no dependency asks for.
  link('@types/node');
}, 120_000);

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the built entry and its declarations, no sources, tests or dev tools', () => {
    const paths = packed.files.map((f) => f.path).sort();
    expect(paths).toContain('dist/holder.js');
    expect(paths).toContain('dist/types/holder.d.ts');
    expect(paths).toContain('dist/types/ledger/holder.d.ts');
    expect(paths).toContain('package.json');
    for (const path of paths) {
      expect(path, path).toMatch(
        /^(dist\/holder\.js|dist\/types\/.+\.d\.ts|package\.json|README\.md|LICENSE)$/,
      );
    }
    // The archive itself, listed by tar rather than by npm.
    const listed = ok(run('tar', ['-tzf', tarball], workDir), 'tar -tzf')
      .trim()
      .split('\n')
      .map((line) => line.replace(/^package\//, ''))
      .sort();
    expect(listed).toEqual(paths);
  });

  it('installs into a separate project, which imports koodrive-lock-releaser/holder and holds a lock', () => {
    writeFileSync(
      join(consumer, 'main.mjs'),
      `import { LockHolder, LockLostError, ConfigError } from '${PACKAGE}/holder';
const log = [];
const koodrive = {
  createLock: async () => (log.push('create'), { ok: true, lockId: 'lock-1' }),
  renewLock: async () => (log.push('renew'), { ok: true }),
  releaseLock: async () => (log.push('release'), { ok: true, outcome: 'released' }),
};
const ledger = {
  recordAcquired: async (lock) => (log.push('ledger acquire ' + lock.holder + ' ' + lock.leaseSeconds), lock),
  recordHeartbeat: async () => (log.push('ledger heartbeat'), 0),
  recordReleased: async () => void log.push('ledger released'),
  record: async () => void log.push('ledger record'),
};
const holder = new LockHolder({ name: 'w', leaseSeconds: 5, heartbeatSeconds: 0.1, clockSkewSeconds: 0, koodrive, ledger });
const value = await holder.hold('user-1', '100', async (lease) => {
  await new Promise((resolve) => setTimeout(resolve, 250));
  lease.assertHeld();
  return lease.lockId;
});
let refused = '';
try { new LockHolder({ leaseSeconds: 700, koodrive, ledger }); } catch (e) { refused = e instanceof ConfigError ? e.message : 'wrong error'; }
console.log(JSON.stringify({ value, log, refused, lostError: typeof LockLostError }));
`,
    );
    const answer = JSON.parse(ok(run('node', ['main.mjs'], consumer), 'node main.mjs')) as {
      value: string;
      log: string[];
      refused: string;
      lostError: string;
    };
    expect(answer.value).toBe('lock-1');
    expect(answer.log.slice(0, 2)).toEqual(['create', 'ledger acquire w 5']);
    expect(answer.log.slice(-2)).toEqual(['release', 'ledger released']);
    expect(answer.log.filter((line) => line === 'renew').length).toBeGreaterThanOrEqual(1);
    expect(answer.refused).toMatch(/leaseSeconds must be from 5 to 600, got 700/);
    expect(answer.lostError).toBe('function');
  });

  it('type-checks a worker against the declarations with nodenext resolution, wrong calls refused', () => {
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2024',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        include: ['worker.ts'],
      }),
    );
    // Were the declarations not found, every type would be `any` and the @ts-expect-error lines unused.
    writeFileSync(
      join(consumer, 'worker.ts'),
      `import { LockHolder, LockLostError, type Lease, type LockHolderOptions } from '${PACKAGE}/holder';

const options: LockHolderOptions = { tableName: 'ledger', secretId: 'koodrive', name: 'worker-17', leaseSeconds: 120 };
const holder = new LockHolder(options);

export async function backup(userId: string): Promise<number> {
  const size: number = await holder.hold(userId, '101', async (lease: Lease) => {
    const signal: AbortSignal = lease.signal;
    lease.assertHeld();
    return lease.lockId.length + (signal.aborted ? 1 : 0);
  });
  // @ts-expect-error userId is a string
  await holder.hold(17, '101', () => 1);
  // @ts-expect-error leaseSeconds is a number
  new LockHolder({ leaseSeconds: '120' });
  return size;
}

export function statusOf(error: LockLostError): string | undefined {
  // @ts-expect-error status may be undefined
  const status: string = error.status;
  return status;
}
`,
    );
    // Each @ts-expect-error must meet an error: a directive left unused fails the check (TS2578).
    ok(run('tsc', ['-p', '.'], consumer), 'tsc in the consumer project');
  });
});
