/**
 * A worker killed with SIGKILL while it holds a lock, and the sweep freeing that lock: the promise of the README
 * ("Leases and the promise") measured with real processes, the real holder, the real sweep handler, the KooDrive
 * emulator and DynamoDB (dynalite). Used by `npm start` and by test/e2e/crash.test.ts.
 *
 * Short timings keep it quick: a 5 s lease, a 1 s clock-skew allowance and a sweep every 2 s, so the bound is
 * lease + skew + period + 1 s for the release = 9 s (with the deployed defaults: 191 s).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { lambdaContext } from './lambda-context';
import { applyEnv, type LocalStack } from './stack';
import { httpDynamoCallsFor } from '../src/ledger/dynamo-http';

/** A user of its own, so the demo's lock never meets the samples' locks of LOCAL_USER_ID. */
export const CRASH_DEMO_USER_ID = '1505084218764547299';

export interface CrashDemoOptions {
  leaseSeconds: number;
  heartbeatSeconds: number;
  clockSkewSeconds: number;
  sweepPeriodMs: number;
  /** Heartbeats the worker makes before it is killed. */
  heartbeatsBeforeKill: number;
  /** Gives up after this long. */
  timeoutMs: number;
}

export const CRASH_DEMO_DEFAULTS: CrashDemoOptions = {
  leaseSeconds: 5,
  heartbeatSeconds: 1,
  clockSkewSeconds: 1,
  sweepPeriodMs: 2000,
  heartbeatsBeforeKill: 2,
  timeoutMs: 60_000,
};

export interface CrashDemoResult {
  lockId: string;
  /** The worker's last heartbeat, as the ledger recorded it (epoch ms). */
  lastHeartbeatAt: number;
  killedAt: number;
  /** When KooDrive (the emulator) saw the sweep's DELETE that released the lock (epoch ms). */
  freedAt: number;
  /** freedAt − lastHeartbeatAt. */
  freedAfterMs: number;
  /** lease + skew + sweep period + 1 s for the release. */
  boundMs: number;
  sweeps: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runCrashDemo(
  stack: LocalStack,
  options: Partial<CrashDemoOptions> = {},
): Promise<CrashDemoResult> {
  const o = { ...CRASH_DEMO_DEFAULTS, ...options };
  const dynamo = stack.dynamo;
  if (!dynamo) throw new Error('the crash demo needs the local stack with a ledger');
  const moduleCode = '101';
  const deadline = Date.now() + o.timeoutMs;
  const until = async (what: string, check: () => boolean | Promise<boolean>, everyMs = 50) => {
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`crash demo: gave up waiting for ${what}`);
      await sleep(everyMs);
    }
  };

  const worker = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'holder-worker.ts')], {
    env: {
      ...process.env,
      ...stack.env,
      LOCK_LEDGER_TABLE: dynamo.tableName,
      WORKER_SETTINGS: JSON.stringify(stack.secret),
      WORKER_USER_ID: CRASH_DEMO_USER_ID,
      WORKER_MODULE: moduleCode,
      WORKER_LEASE_SECONDS: String(o.leaseSeconds),
      WORKER_HEARTBEAT_SECONDS: String(o.heartbeatSeconds),
      CLOCK_SKEW_SECONDS: String(o.clockSkewSeconds),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  worker.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  try {
    await until('the worker to take its lock', () => {
      if (worker.exitCode !== null) throw new Error(`the worker exited early: ${stderr}`);
      return stdout.includes('\n');
    });
    const lockId = (JSON.parse(stdout.split('\n')[0] as string) as { lockId: string }).lockId;
    const renewals = () =>
      stack.koodrive.requests.filter((r) => r.method === 'PATCH' && r.lockId === lockId && r.status === 200)
        .length;
    await until(`${o.heartbeatsBeforeKill} heartbeats`, () => renewals() >= o.heartbeatsBeforeKill);

    worker.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    const { DynamoLedger } = await import('../src/ledger/ledger');
    const item = await new DynamoLedger({
      tableName: dynamo.tableName,
      calls: httpDynamoCallsFor(dynamo.client),
    }).get(lockId);
    if (item?.status !== 'HELD')
      throw new Error(`the dead worker's item is ${item?.status ?? 'absent'}, not HELD`);
    const lastHeartbeatAt = item.heartbeatAt;

    // The sweep, on its schedule, as the deployed function with this demo's skew allowance.
    const restore = applyEnv({ ...stack.env, CLOCK_SKEW_SECONDS: String(o.clockSkewSeconds) });
    const { resetApp } = await import('../src/wiring');
    resetApp();
    const { handler: sweep } = await import('../src/handlers/sweep');
    let sweeps = 0;
    try {
      await until(
        'the sweep to release the lock',
        async () => {
          sweeps += 1;
          await sweep({}, lambdaContext('sweep', 50_000));
          return !stack.koodrive.isHeld(lockId);
        },
        o.sweepPeriodMs,
      );
    } finally {
      restore();
      resetApp();
    }
    const freedAt = stack.koodrive.requests.find(
      (r) => r.method === 'DELETE' && r.lockId === lockId && r.status === 200,
    )?.at;
    if (freedAt === undefined) throw new Error('the lock is free but no DELETE released it (did it expire?)');
    return {
      lockId,
      lastHeartbeatAt,
      killedAt,
      freedAt,
      freedAfterMs: freedAt - lastHeartbeatAt,
      boundMs: (o.leaseSeconds + o.clockSkewSeconds + 1) * 1000 + o.sweepPeriodMs,
      sweeps,
    };
  } finally {
    if (worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGKILL');
      await exited;
    }
  }
}
