/** What the demo and `npm run stack` set up: the locks the samples under events/ name, and a small ledger. */
import type { LockResult } from '../src/core/model';
import { DynamoLedger } from '../src/ledger/ledger';
import { LOCAL_USER_ID, type LocalStack } from './stack';

/** The lock IDs the samples under events/ name (…0099 stays unknown on purpose). */
export const SAMPLE_LOCKS = ['0001@102', '0002@101', '0004@102', '0005@102', '0006@100', '0007@101'].map(
  (suffix) => `8f14e45f-ceea-467f-a8f2-1c8d1d3c${suffix}`,
);

export interface SeededLedger {
  stale: string[];
  fresh: string[];
  failed: string[];
}

/**
 * Holds the sample locks in the emulator (for `lockTtlMs`), and when the stack has a ledger, records more
 * locks there as a backup worker would: two whose holder stopped 20 and 45 minutes ago, one heart-beating,
 * and one whose earlier release failed.
 */
export async function seedSamples(stack: LocalStack, lockTtlMs = 600_000): Promise<SeededLedger | undefined> {
  const expiresAt = Date.now() + lockTtlMs;
  for (const lockId of SAMPLE_LOCKS) {
    stack.koodrive.seedLock(LOCAL_USER_ID, lockId.split('@')[1], { lockId, expiresAt });
  }
  if (!stack.dynamo) return undefined;
  const { tableName, client } = stack.dynamo;
  const at = (minutesAgo: number) =>
    new DynamoLedger({ tableName, client, now: () => Date.now() - minutesAgo * 60_000 });
  const hold = async (minutesAgo: number, moduleCode: string, holder: string) => {
    const lockId = stack.koodrive.seedLock(LOCAL_USER_ID, moduleCode, { expiresAt });
    await at(minutesAgo).recordAcquired({ lockId, userId: LOCAL_USER_ID, moduleCode, holder });
    return lockId;
  };
  const seeded: SeededLedger = {
    stale: [await hold(20, '100', 'worker-a (crashed)'), await hold(45, '101', 'worker-b (crashed)')],
    fresh: [await hold(1, '102', 'worker-c')],
    failed: [await hold(3, '100', 'worker-d')],
  };
  const failure: LockResult = {
    lockId: seeded.failed[0] as string,
    userId: LOCAL_USER_ID,
    outcome: 'failed',
    attempts: 4,
    error: { kind: 'retryable', httpStatus: 503, message: 'service unavailable' },
  };
  await at(2).record(failure);
  return seeded;
}
