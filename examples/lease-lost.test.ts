/**
 * "My worker stops writing when its lease is lost": a backup worker built on koodrive-lock-releaser/holder,
 * tested offline with the package's test kit. KooDrive refuses the lock's renewal at the first heartbeat;
 * the worker must stop writing at once, and its lock must end released in KooDrive and in the ledger.
 */
import { afterEach, expect, it } from 'vitest';
import { LockLostError, type LockHolder } from 'koodrive-lock-releaser/holder';
import { createTestbed, type Testbed } from 'koodrive-lock-releaser/testing';

/** The worker under test: copies chunks to the backup store while it holds the user's lock. */
function backUp(holder: LockHolder, userId: string, store: string[]): Promise<void> {
  return holder.hold(userId, '101', async (lease) => {
    for (let chunk = 0; ; chunk += 1) {
      lease.assertHeld(); // throws LockLostError once the lease is lost
      store.push(`chunk ${chunk}`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  });
}

let testbed: Testbed;
afterEach(async () => {
  await testbed.close();
});

it('my worker stops writing when its lease is lost', async () => {
  testbed = await createTestbed({ clock: 'virtual' });
  const holder = testbed.holder({ name: 'worker-1', leaseSeconds: 30 }); // a heartbeat every 10 s
  const store: string[] = [];
  const backup = backUp(holder, 'user-1', store).catch((error: unknown) => error);

  await testbed.settled(); // the lock is taken and the worker is writing
  const [lockId] = testbed.ledger.items().map((item) => item.lockId);
  expect(testbed.koodrive.isLive(lockId!)).toBe(true);
  expect(testbed.ledger.item(lockId!)?.status).toBe('HELD');

  testbed.koodrive.fail({ on: 'renew', with: 'gone' }); // KooDrive no longer knows the lock
  await testbed.clock.advance(10_000); // the first heartbeat is due: its renewal is refused

  expect(await backup).toBeInstanceOf(LockLostError);
  const written = store.length;
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(store).toHaveLength(written); // not one chunk after the lease was lost
  expect(testbed.koodrive.isLive(lockId!)).toBe(false);
  expect(testbed.ledger.item(lockId!)?.status).toBe('RELEASED');
  expect(testbed.koodrive.requests.map((r) => `${r.operation} ${r.status}`)).toEqual([
    'create 200',
    'renew 400',
    'release 200',
  ]);
});
