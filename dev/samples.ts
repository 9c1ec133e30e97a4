/** What the demo and `npm run stack` set up: the locks the samples under events/ name, and a small ledger. */
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { LockResult } from '../src/core/model';
import { DynamoLedger } from '../src/ledger/ledger';
import { LOCAL_USER_ID, type LocalStack } from './stack';
import { httpDynamoCallsFor } from '../src/ledger/dynamo-http';

/** The lock IDs the samples under events/ name (…0099 stays unknown on purpose). */
export const SAMPLE_LOCKS = ['0001@102', '0002@101', '0004@102', '0005@102', '0006@100', '0007@101'].map(
  (suffix) => `8f14e45f-ceea-467f-a8f2-1c8d1d3c${suffix}`,
);

/** KooDrive keeps a lock this long after its creation or last renewal. */
const KOODRIVE_LOCK_MS = 600_000;
const SECOND = 1000;

export interface SeededLedger {
  /** Holders that stopped heart-beating past their lease: the sweep releases these. */
  stale: string[];
  /** Holders heart-beating within their lease: the sweep leaves these alone. */
  fresh: string[];
  /** An earlier release failed, KooDrive may still hold it: the sweep retries. */
  failed: string[];
  /** An earlier release failed long enough ago that KooDrive has certainly expired the lock: closed as EXPIRED. */
  expired: string[];
}

/**
 * Holds the sample locks in the emulator (for `lockTtlMs`), and when the stack has a ledger, records more
 * locks there as backup workers would. Every state is one KooDrive can really be in: a lock the emulator holds
 * was created or renewed within its 10 minutes, at the holder's last heartbeat.
 */
export async function seedSamples(
  stack: LocalStack,
  lockTtlMs = KOODRIVE_LOCK_MS,
): Promise<SeededLedger | undefined> {
  const expiresAt = Date.now() + lockTtlMs;
  for (const lockId of SAMPLE_LOCKS) {
    stack.koodrive.seedLock(LOCAL_USER_ID, lockId.split('@')[1], { lockId, expiresAt });
  }
  if (!stack.dynamo) return undefined;
  const { tableName, client } = stack.dynamo;
  const at = (secondsAgo: number) =>
    new DynamoLedger({
      tableName,
      calls: httpDynamoCallsFor(client),
      now: () => Date.now() - secondsAgo * SECOND,
    });
  /** A holder whose last heartbeat (and KooDrive renewal) was `secondsAgo`, on a lease of `leaseSeconds`. */
  const hold = async (secondsAgo: number, leaseSeconds: number, moduleCode: string, holder: string) => {
    const renewedAt = Date.now() - secondsAgo * SECOND;
    const lockId = stack.koodrive.seedLock(LOCAL_USER_ID, moduleCode, {
      expiresAt: renewedAt + KOODRIVE_LOCK_MS,
    });
    await at(secondsAgo).recordAcquired({ lockId, userId: LOCAL_USER_ID, moduleCode, holder, leaseSeconds });
    return lockId;
  };
  const seeded: SeededLedger = {
    stale: [
      await hold(200, 120, '100', 'worker-a (crashed 200 s ago, lease 120 s)'),
      await hold(90, 60, '101', 'worker-b (crashed 90 s ago, lease 60 s)'),
    ],
    fresh: [await hold(20, 120, '102', 'worker-c (heart-beat 20 s ago)')],
    failed: [await hold(150, 120, '100', 'worker-d')],
    expired: [],
  };
  // worker-d's release failed 2 minutes ago: the sweep retries it while KooDrive may still hold the lock.
  await at(120).record(failure(seeded.failed[0] as string));

  // worker-e's release failed 14 minutes ago, 15 after its last renewal: KooDrive let the lock go long ago (so the
  // emulator does not hold it), and the sweep closes the item as EXPIRED without calling KooDrive.
  const gone = `${crypto.randomUUID()}@101`;
  await at(15 * 60).recordAcquired({
    lockId: gone,
    userId: LOCAL_USER_ID,
    moduleCode: '101',
    holder: 'worker-e',
    leaseSeconds: 120,
  });
  await at(14 * 60).record(failure(gone));
  seeded.expired.push(gone);

  // An item written by a worker in another language without a lease: stale after STALE_AFTER_SECONDS (900 s).
  // Its holder heart-beat 5 minutes ago, so it is not stale yet and its KooDrive lock is still held.
  const legacyAt = Date.now() - 300 * SECOND;
  const legacy = stack.koodrive.seedLock(LOCAL_USER_ID, '102', { expiresAt: legacyAt + KOODRIVE_LOCK_MS });
  await client.send(
    new PutItemCommand({
      TableName: tableName,
      Item: {
        lockId: { S: legacy },
        userId: { S: LOCAL_USER_ID },
        moduleCode: { S: '102' },
        status: { S: 'HELD' },
        holder: { S: 'legacy-worker (no lease)' },
        acquiredAt: { N: String(legacyAt) },
        heartbeatAt: { N: String(legacyAt) },
        releaseAttempts: { N: '0' },
        version: { N: '1' },
        sweepShard: { S: '7' },
        openUserId: { S: LOCAL_USER_ID },
      },
      ConditionExpression: 'attribute_not_exists(lockId)',
    }),
  );
  seeded.fresh.push(legacy);
  return seeded;
}

function failure(lockId: string): LockResult {
  return {
    lockId,
    userId: LOCAL_USER_ID,
    outcome: 'failed',
    attempts: 4,
    error: { kind: 'retryable', httpStatus: 503, message: 'service unavailable' },
  };
}
