/**
 * A backup worker in a process of its own, for the crash demo (`npm start`) and its test: takes a lock through
 * the package's LockHolder, prints `{"lockId": …}` on stdout and works until it is killed.
 *
 * Reads: WORKER_SETTINGS (the secret JSON, inline), LOCK_LEDGER_TABLE, WORKER_USER_ID, WORKER_MODULE,
 * WORKER_LEASE_SECONDS, WORKER_HEARTBEAT_SECONDS, CLOCK_SKEW_SECONDS, WORKER_SHUTDOWN_SIGNALS (optional, comma-separated:
 * the holder's shutdownSignals), and the AWS variables of the local stack.
 */
import { LockHolder } from '../src/ledger/holder';

const need = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const holder = new LockHolder({
  tableName: need('LOCK_LEDGER_TABLE'),
  settings: JSON.parse(need('WORKER_SETTINGS')) as Record<string, unknown>,
  name: `worker-${process.pid}`,
  leaseSeconds: Number(need('WORKER_LEASE_SECONDS')),
  heartbeatSeconds: Number(need('WORKER_HEARTBEAT_SECONDS')),
  clockSkewSeconds: Number(need('CLOCK_SKEW_SECONDS')),
  shutdownSignals: (process.env.WORKER_SHUTDOWN_SIGNALS?.split(',') ?? []) as NodeJS.Signals[],
});

await holder.hold(need('WORKER_USER_ID'), need('WORKER_MODULE'), async (lease) => {
  process.stdout.write(`${JSON.stringify({ lockId: lease.lockId })}\n`);
  // The backup itself: runs until the process is killed, or stops when the lease is lost.
  while (!lease.signal.aborted) {
    lease.assertHeld();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});
