import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../dev/dynalite';
import type { AttemptOutcome, LockError, LockRef } from '../../src/core/model';
import {
  AcquireAbortedError,
  DynamoLedger,
  KooDriveLockError,
  LockExistsError,
  LockHolder,
  LockLostError,
  type KooDriveLocks,
} from '../../src/ledger';
import { MINUTE, NOW } from '../helpers/ledger-fakes';

/** KooDrive's lock calls in memory; `fail` makes the next call of an operation fail. */
class FakeKooDrive implements KooDriveLocks {
  locks = new Set<string>();
  calls: string[] = [];
  fail: Partial<Record<'create' | 'renew' | 'release', LockError>> = {};
  private next = 0;
  constructor(private readonly prefix: string) {}

  createLock(userId: string, moduleCode: string) {
    this.calls.push(`create ${userId} ${moduleCode}`);
    const error = this.take('create');
    if (error) return Promise.resolve({ ok: false as const, error });
    const lockId = `${this.prefix}-${(this.next += 1)}`;
    this.locks.add(lockId);
    return Promise.resolve({ ok: true as const, lockId });
  }

  renewLock(lock: LockRef) {
    this.calls.push(`renew ${lock.lockId}`);
    const error = this.take('renew');
    return Promise.resolve(error ? { ok: false as const, error } : { ok: true as const });
  }

  releaseLock(lock: LockRef): Promise<AttemptOutcome> {
    this.calls.push(`release ${lock.lockId}`);
    const error = this.take('release');
    if (error) return Promise.resolve({ ok: false, error });
    return Promise.resolve({
      ok: true,
      outcome: this.locks.delete(lock.lockId) ? 'released' : 'alreadyReleased',
    });
  }

  private take(operation: keyof FakeKooDrive['fail']): LockError | undefined {
    const error = this.fail[operation];
    delete this.fail[operation];
    return error;
  }
}

let dynamo: LocalDynamo;
let now: number;
let ledger: DynamoLedger;
let koodrive: FakeKooDrive;
let holder: LockHolder;
let run = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  await dynamo.close();
});
beforeEach(() => {
  now = NOW;
  run += 1;
  ledger = new DynamoLedger({ tableName: dynamo.tableName, client: dynamo.client, now: () => now });
  koodrive = new FakeKooDrive(`t${run}`);
  holder = new LockHolder({ koodrive, ledger, holder: 'worker-1' });
});

describe('LockHolder', () => {
  it('acquire creates the KooDrive lock, then a HELD item naming the holder', async () => {
    const lock = await holder.acquire('user-1', '101');
    expect(lock).toEqual({ lockId: `t${run}-1`, userId: 'user-1', moduleCode: '101' });
    expect(await ledger.get(lock.lockId)).toMatchObject({
      status: 'HELD',
      holder: 'worker-1',
      heartbeatAt: NOW,
    });
  });

  it('acquire throws KooDriveLockError when KooDrive refuses, and writes nothing', async () => {
    koodrive.fail.create = { kind: 'retryable', httpStatus: 503, message: 'busy' };
    const error = await holder.acquire('user-1', '101').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KooDriveLockError);
    expect(error).toMatchObject({ operation: 'create', error: { kind: 'retryable' } });
    expect(ledger.requests).toBe(0);
  });

  it('acquire releases the KooDrive lock again when the ledger write fails', async () => {
    await ledger.recordAcquired({ lockId: `t${run}-1`, userId: 'x', moduleCode: '100' }); // the ID is taken
    const error = await holder.acquire('user-1', '101').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcquireAbortedError);
    expect((error as AcquireAbortedError).undone).toBe(true);
    expect((error as AcquireAbortedError).cause).toBeInstanceOf(LockExistsError);
    expect(koodrive.calls).toEqual(['create user-1 101', `release t${run}-1`]);
    expect(koodrive.locks.size).toBe(0);
  });

  it('heartbeat renews in KooDrive, then moves heartbeatAt', async () => {
    const lock = await holder.acquire('user-1', '100');
    now += 5 * MINUTE;
    await holder.heartbeat(lock);
    expect(koodrive.calls.at(-1)).toBe(`renew ${lock.lockId}`);
    expect(await ledger.get(lock.lockId)).toMatchObject({
      status: 'HELD',
      heartbeatAt: NOW + 5 * MINUTE,
      version: 2,
    });
  });

  it('heartbeat tells the holder to stop when a sweep claimed the lock', async () => {
    const lock = await holder.acquire('user-1', '100');
    const item = await ledger.get(lock.lockId);
    await ledger.claim(item!);
    const error = await holder.heartbeat(lock).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockLostError);
    expect((error as LockLostError).status).toBe('RELEASING');
    expect((error as LockLostError).message).toMatch(/stop working under it/);
  });

  it('heartbeat throws KooDriveLockError when KooDrive refuses the renewal, leaving the ledger alone', async () => {
    const lock = await holder.acquire('user-1', '100');
    koodrive.fail.renew = { kind: 'permanent', httpStatus: 404, message: 'lock no longer exists' };
    now += MINUTE;
    await expect(holder.heartbeat(lock)).rejects.toMatchObject({
      name: 'KooDriveLockError',
      operation: 'renew',
    });
    expect(await ledger.get(lock.lockId)).toMatchObject({ heartbeatAt: NOW, version: 1 });
  });

  it('release releases in KooDrive, then marks RELEASED', async () => {
    const lock = await holder.acquire('user-1', '100');
    expect(await holder.release(lock)).toBe('released');
    expect(await ledger.get(lock.lockId)).toMatchObject({ status: 'RELEASED', releasedAt: NOW });
    expect(await holder.release(lock)).toBe('alreadyReleased');
  });

  it('a failed release is left RELEASE_FAILED for the sweep and thrown', async () => {
    const lock = await holder.acquire('user-1', '100');
    koodrive.fail.release = { kind: 'retryable', httpStatus: 503, message: 'busy' };
    await expect(holder.release(lock)).rejects.toMatchObject({
      name: 'KooDriveLockError',
      operation: 'release',
    });
    expect(await ledger.get(lock.lockId)).toMatchObject({
      status: 'RELEASE_FAILED',
      releaseAttempts: 1,
      lastError: 'retryable: busy',
    });
  });
});
