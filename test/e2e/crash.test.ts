/**
 * The promise with real processes: a worker holding a lock through the package's LockHolder is killed with
 * SIGKILL, and the scheduled sweep (the real handler) releases its lock in KooDrive (the emulator) within
 * lease + skew + one period + 1 s, counted from the worker's last heartbeat as the ledger recorded it.
 */
import { describe, expect, it } from 'vitest';
import { runCrashDemo } from '../../dev/crash-demo';
import { useLocalStack } from '../helpers/local-stack';

const stack = useLocalStack({ ledger: true });

describe('a worker killed with SIGKILL', () => {
  it('loses its lock to the sweep within the bound, and not before its lease ran out', async () => {
    const result = await runCrashDemo(stack());
    // The independent witnesses: the emulator's DELETE time and the ledger's last heartbeat.
    expect(result.freedAfterMs).toBeLessThanOrEqual(result.boundMs);
    // Never before lease + skew: until then a paused (not dead) worker could still be working.
    expect(result.freedAfterMs).toBeGreaterThan((5 + 1) * 1000);
    expect(stack().koodrive.isHeld(result.lockId)).toBe(false);
  }, 60_000);
});
