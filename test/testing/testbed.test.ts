/**
 * The test kit's createTestbed(): the LockHolder it builds talks to a real KooDrive emulator over loopback
 * (requests authenticated, the 10-minute expiry, one lock per user and module, scripted failures) and to the
 * in-memory ledger (the class test/ledger/ledger.contract.test.ts runs DynamoLedger's contract against).
 * Outcomes are read from the emulator's lock records and the ledger's items, never from the holder's answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LockLostError, KooDriveLockError } from '../../src/holder';
import { createTestbed, MemoryLedger, type Testbed } from '../../src/testing';
import { KOODRIVE_LOCK_SECONDS } from '../../src/core/lease';

let testbed: Testbed | undefined;
afterEach(async () => {
  await testbed?.close();
  testbed = undefined;
});

describe('on the real clock', () => {
  it('hold() takes, records and releases the lock through authenticated requests', async () => {
    testbed = await createTestbed();
    const lockId = await testbed.holder({ name: 'w' }).hold('user-1', '100', (lease) => {
      expect(testbed!.koodrive.isLive(lease.lockId)).toBe(true);
      expect(testbed!.ledger.item(lease.lockId)).toMatchObject({ status: 'HELD', holder: 'w' });
      return lease.lockId;
    });
    expect(testbed.koodrive.isLive(lockId)).toBe(false);
    expect(testbed.koodrive.emulator.lock(lockId)?.releasedAt).toBeDefined();
    expect(testbed.ledger.item(lockId)).toMatchObject({ status: 'RELEASED', userId: 'user-1' });
    expect(testbed.koodrive.requests.map((r) => [r.operation, r.status, r.authOk])).toEqual([
      ['create', 200, true],
      ['release', 200, true],
    ]);
    expect(testbed.ledger.memory).toBeInstanceOf(MemoryLedger);
    expect(testbed.clock.virtual).toBe(false);
  });

  it('one lock per user and module: a second holder is refused while the first holds it', async () => {
    testbed = await createTestbed();
    const first = await testbed.holder({ name: 'a' }).acquire('user-1', '101');
    await expect(testbed.holder({ name: 'b' }).acquire('user-1', '101')).rejects.toThrow(KooDriveLockError);
    await expect(testbed.holder({ name: 'b' }).acquire('user-1', '102')).resolves.toMatchObject({
      moduleCode: '102',
    });
    expect(testbed.koodrive.isLive(first.lockId)).toBe(true);
  });

  it('fail(): a scripted failure applies to its operation, `times` times, until heal()', async () => {
    testbed = await createTestbed();
    const holder = testbed.holder();
    testbed.koodrive.fail({ on: 'create', with: 'throttled', times: 1 });
    await expect(holder.acquire('user-1', '100')).rejects.toMatchObject({
      error: { kind: 'retryable', httpStatus: 429 },
    });
    const lock = await holder.acquire('user-1', '100');
    testbed.koodrive.fail({ on: 'release', with: 'unavailable' });
    await expect(holder.release(lock)).rejects.toMatchObject({ error: { httpStatus: 503 } });
    expect(testbed.ledger.item(lock.lockId)?.status).toBe('RELEASE_FAILED');
    testbed.koodrive.heal();
    await expect(holder.release(lock)).resolves.toBe('released');
    expect(testbed.koodrive.requests.map((r) => `${r.operation} ${r.status} ${r.fault ?? ''}`)).toEqual([
      'create 429 throttle',
      'create 200 ',
      'release 503 status',
      'release 200 ',
    ]);
  });

  it('close() releases the locks its holders still hold', async () => {
    testbed = await createTestbed();
    const lock = await testbed.holder().acquire('user-1', '100');
    await testbed.close();
    expect(testbed.koodrive.emulator.lock(lock.lockId)?.releasedAt).toBeDefined();
    expect(testbed.ledger.item(lock.lockId)?.status).toBe('RELEASED');
  });
});

describe('on the virtual clock', () => {
  it('time moves only with advance(): heartbeats every lease/3, the ledger stamped with virtual time', async () => {
    testbed = await createTestbed({ clock: 'virtual', startAt: Date.UTC(2030, 0, 1) });
    const start = testbed.clock.now();
    expect(start).toBe(Date.UTC(2030, 0, 1));
    const holder = testbed.holder({ leaseSeconds: 30 });
    let stop!: () => void;
    const held = holder.hold('user-1', '100', () => new Promise<void>((resolve) => (stop = resolve)));
    await testbed.settled();
    const renews = () => testbed!.koodrive.requests.filter((r) => r.operation === 'renew').length;
    await testbed.clock.advance(9_999);
    expect(renews()).toBe(0);
    await testbed.clock.advance(1);
    expect(renews()).toBe(1);
    const [item] = testbed.ledger.items();
    expect(item?.heartbeatAt).toBe(start + 10_000);
    await testbed.clock.advance(20_000);
    expect(renews()).toBe(3);
    stop();
    await held;
    expect(testbed.ledger.item(item!.lockId)?.status).toBe('RELEASED');
  });

  it('KooDrive unreachable for renewals: the lease is lost before the lock expires, and KooDrive expires it at 10 minutes', async () => {
    testbed = await createTestbed({ clock: 'virtual' });
    const holder = testbed.holder({ leaseSeconds: 30 });
    testbed.koodrive.fail({ on: 'renew', with: 'unavailable' });
    testbed.koodrive.fail({ on: 'release', with: 'unavailable' });
    let reason: unknown;
    let lostAt = 0;
    const start = testbed.clock.now();
    const held = holder.hold('user-1', '100', async (lease) => {
      await new Promise((resolve) => lease.signal.addEventListener('abort', resolve));
      reason = lease.signal.reason;
      lostAt = testbed!.clock.now();
    });
    await testbed.settled();
    const [lockId] = testbed.ledger.items().map((i) => i.lockId);
    // Minute by minute, the way a test would let time pass.
    for (let minute = 0; minute < 9; minute += 1) await testbed.clock.advance(60_000);
    await testbed.clock.advance(59_000);
    expect(reason).toBeInstanceOf(LockLostError);
    expect(lostAt - start).toBeLessThan(KOODRIVE_LOCK_SECONDS * 1000);
    await held;
    expect(testbed.ledger.item(lockId!)?.status).toBe('RELEASE_FAILED');
    expect(testbed.koodrive.isLive(lockId!)).toBe(true);
    await testbed.clock.advance(1_000); // 10 minutes after the create: expired in KooDrive
    expect(testbed.koodrive.isLive(lockId!)).toBe(false);
  });

  it('close() on virtual time: the holder’s wait for work and its release run to the end', async () => {
    testbed = await createTestbed({ clock: 'virtual' });
    const holder = testbed.holder();
    const held = holder.hold('user-1', '100', () => new Promise(() => undefined)); // never ends
    await testbed.settled();
    const [lockId] = testbed.ledger.items().map((i) => i.lockId);
    await testbed.close();
    expect(testbed.koodrive.isLive(lockId!)).toBe(false);
    expect(testbed.ledger.item(lockId!)?.status).toBe('RELEASED');
    void held;
  });
});
