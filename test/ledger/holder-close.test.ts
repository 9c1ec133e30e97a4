/**
 * LockHolder.close() and shutdownSignals against the local stack: the KooDrive emulator through the real
 * KooDriveClient, the ledger on dynalite through DynamoLedger. What KooDrive did is read from the emulator's own
 * records (request log, lock state), what the ledger holds from DynamoDB.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOCAL_USER_ID, startLocalStack, type LocalStack } from '../../dev/stack';
import { LockLostError, ReleaserError } from '../../src/core/errors';
import { KooDriveClient } from '../../src/koodrive/client';
import { parseSecret } from '../../src/koodrive/secret';
import type { SettingsSource } from '../../src/koodrive/settings';
import { DEFAULT_CLOSE_WAIT_MS, LockHolder, type LockHolderOptions } from '../../src/holder';
import { DynamoLedger } from '../../src/ledger/ledger';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

let stack: LocalStack;
let ledger: DynamoLedger;
let koodrive: KooDriveClient;

beforeAll(async () => {
  stack = await startLocalStack({ ledger: true });
});
afterAll(async () => {
  await stack.close();
});
beforeEach(() => {
  const dynamo = stack.dynamo!;
  ledger = new DynamoLedger({ tableName: dynamo.tableName, calls: httpDynamoCallsFor(dynamo.client) });
  const settings = { settings: parseSecret(JSON.stringify(stack.secret), 'test'), version: 1 };
  const source: SettingsSource = { current: () => Promise.resolve(settings) };
  koodrive = new KooDriveClient({ settings: source, timeoutMs: 2000 });
});
afterEach(() => {
  stack.koodrive.reset();
});

const USER = LOCAL_USER_ID;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function makeHolder(options: Partial<LockHolderOptions> = {}): LockHolder {
  return new LockHolder({
    koodrive,
    ledger,
    name: 'worker-1',
    leaseSeconds: 5,
    heartbeatSeconds: 0.2,
    clockSkewSeconds: 1,
    ...options,
  });
}

/** Resolves with the lease once work has started under it. */
function started() {
  let resolve!: (lockId: string) => void;
  const promise = new Promise<string>((r) => (resolve = r));
  return { promise, resolve };
}

describe('close()', () => {
  it('aborts the lease with LockLostError, waits for work, then releases in KooDrive and the ledger', async () => {
    const holder = makeHolder();
    const running = started();
    let workEndedAt = 0;
    let reason: unknown;
    const held = holder.hold(USER, '101', async (lease) => {
      running.resolve(lease.lockId);
      await new Promise((resolve) => lease.signal.addEventListener('abort', resolve));
      reason = lease.signal.reason;
      expect(() => lease.assertHeld()).toThrow(LockLostError);
      await sleep(100); // the worker's own cleanup
      workEndedAt = Date.now();
      return 'stopped';
    });
    const lockId = await running.promise;
    await sleep(450); // a few heartbeats
    const patchesBefore = stack.koodrive.requests.filter((r) => r.method === 'PATCH').length;
    expect(patchesBefore).toBeGreaterThanOrEqual(1);

    await holder.close();
    expect(reason).toBeInstanceOf(LockLostError);
    expect((reason as Error).message).toMatch(/closing/);
    await expect(held).resolves.toBe('stopped');
    const lock = stack.koodrive.lock(lockId);
    expect(lock?.releasedAt).toBeGreaterThanOrEqual(workEndedAt);
    expect(await ledger.get(lockId)).toMatchObject({ status: 'RELEASED' });
    const methods = stack.koodrive.requests.map((r) => r.method);
    expect(methods.filter((m) => m === 'DELETE')).toHaveLength(1);
    // No renew after the release: heart-beating stopped.
    await sleep(450);
    expect(stack.koodrive.requests.map((r) => r.method).at(-1)).toBe('DELETE');
  });

  it('work that ignores the signal: the lock is released after closeWaitMs, once, while work still runs', async () => {
    const holder = makeHolder({ closeWaitMs: 300 });
    const running = started();
    let finish!: () => void;
    const held = holder.hold(USER, '102', async (lease) => {
      running.resolve(lease.lockId);
      await new Promise<void>((resolve) => (finish = resolve));
      return 7;
    });
    const lockId = await running.promise;
    const closedFrom = Date.now();
    await holder.close();
    expect(Date.now() - closedFrom).toBeGreaterThanOrEqual(290);
    expect(stack.koodrive.isHeld(lockId)).toBe(false);
    expect(await ledger.get(lockId)).toMatchObject({ status: 'RELEASED' });
    finish();
    await expect(held).resolves.toBe(7);
    expect(stack.koodrive.requests.filter((r) => r.method === 'DELETE')).toHaveLength(1);
  });

  it('releases locks taken with acquire(), refuses new locks and heartbeats, and is idempotent', async () => {
    const holder = makeHolder();
    const lock = await holder.acquire(USER, '100');
    const first = holder.close();
    expect(holder.close()).toBe(first);
    await first;
    expect(stack.koodrive.isHeld(lock.lockId)).toBe(false);
    expect(await ledger.get(lock.lockId)).toMatchObject({ status: 'RELEASED' });
    await expect(holder.hold(USER, '101', () => 1)).rejects.toThrow(ReleaserError);
    await expect(holder.acquire(USER, '101')).rejects.toThrow(/closed/);
    await expect(holder.heartbeat(lock)).rejects.toThrow(LockLostError);
    expect(stack.koodrive.requests.map((r) => r.method)).toEqual(['POST', 'DELETE']);
  });

  it('a lock released with release() is not released again by close()', async () => {
    const holder = makeHolder();
    const lock = await holder.acquire(USER, '100');
    await holder.release(lock);
    await holder.close();
    expect(stack.koodrive.requests.map((r) => r.method)).toEqual(['POST', 'DELETE']);
  });

  it('a hold() still taking its lock when close() starts releases it without running work', async () => {
    stack.koodrive.fault({
      match: (r) => r.method === 'POST',
      times: 1,
      action: { type: 'latency', ms: 200 },
    });
    const holder = makeHolder();
    let ran = false;
    const held = holder
      .hold(USER, '101', () => {
        ran = true;
      })
      .catch((error: unknown) => error);
    await sleep(50);
    const closedFrom = Date.now();
    await holder.close();
    expect(Date.now() - closedFrom).toBeLessThan(DEFAULT_CLOSE_WAIT_MS);
    expect(await held).toBeInstanceOf(LockLostError);
    expect(ran).toBe(false);
    expect(stack.koodrive.locks().map((l) => l.releasedAt !== undefined)).toEqual([true]);
  });
});

describe('shutdownSignals, with a real process', () => {
  it('SIGTERM to a worker holding a lock: the lock is freed in KooDrive and RELEASED in the ledger within 2 s, and the process exits by the signal', async () => {
    const worker = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'dev', 'holder-worker.ts')],
      {
        env: {
          ...process.env,
          ...stack.env,
          WORKER_SETTINGS: JSON.stringify(stack.secret),
          WORKER_USER_ID: USER,
          WORKER_MODULE: '101',
          WORKER_LEASE_SECONDS: '30',
          WORKER_HEARTBEAT_SECONDS: '10',
          CLOCK_SKEW_SECONDS: '1',
          WORKER_SHUTDOWN_SIGNALS: 'SIGTERM,SIGINT',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = once(worker, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    let stderr = '';
    worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [line] = (await once(worker.stdout, 'data')) as [Buffer];
    const { lockId } = JSON.parse(line.toString()) as { lockId: string };
    expect(stack.koodrive.isHeld(lockId)).toBe(true);

    const sentAt = Date.now();
    worker.kill('SIGTERM');
    // Polled from the emulator and the ledger themselves.
    let freedAt = 0;
    while (Date.now() - sentAt < 5000) {
      const item = await ledger.get(lockId);
      if (!stack.koodrive.isHeld(lockId) && item?.status === 'RELEASED') {
        freedAt = Date.now();
        break;
      }
      await sleep(10);
    }
    const [code, signal] = await exited;
    expect(stderr).toBe('');
    expect(freedAt - sentAt).toBeLessThan(2000);
    expect(stack.koodrive.lock(lockId)?.releasedAt).toBeGreaterThanOrEqual(sentAt);
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    console.log(
      `SIGTERM → lock free in KooDrive and RELEASED: ${freedAt - sentAt} ms (emulator DELETE after ${(stack.koodrive.lock(lockId)?.releasedAt ?? 0) - sentAt} ms)`,
    );
  }, 30_000);
});
