/**
 * Find-by-user's handler time with a large ledger: 100,000 open items (20,000 users, 5 each, in three modules)
 * in dynalite, plus the on-call case, a user whose backup of module 101 is blocked by a dead worker's lock. Runs the
 * real release handler against the local stack (KooDrive emulator, dynalite, Secrets Manager) and times
 * `{"userId", "moduleCode": "101"}`: a dry run (first call, then the median of warm calls) and the release. The
 * baseline in the same run is what on-call did before: a Scan of the table filtered by userId.
 *
 *   npx tsx dev/bench/find-by-user.ts [--items 100000]
 */
import { parseArgs } from 'node:util';
import {
  BatchWriteItemCommand,
  ScanCommand,
  type AttributeValue,
  type BatchWriteItemCommandOutput,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import type { FindByUserReport } from '../../src/core/release';
import { SWEEP_SHARDS } from '../../src/core/lease';
import { DynamoLedger } from '../../src/ledger/ledger';
import { lambdaContext } from '../lambda-context';
import { applyEnv, LOCAL_USER_ID, startLocalStack } from '../stack';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

const { values } = parseArgs({
  options: { items: { type: 'string', default: '100000' }, runs: { type: 'string', default: '7' } },
});
const ITEMS = Number(values.items);
const RUNS = Number(values.runs);
const USERS = Math.max(1, Math.floor(ITEMS / 5));

const stack = await startLocalStack({ ledger: true });
const restore = applyEnv({ ...stack.env, LOG_LEVEL: 'WARN', POWERTOOLS_METRICS_DISABLED: 'true' });
const { handler } = await import('../../src/handlers/release');
const { client, tableName } = stack.dynamo!;

const ms = (from: number) => performance.now() - from;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

try {
  // 100,000 other users' open items, written as a holder writes them (fresh: a 600 s lease from now).
  let started = performance.now();
  const now = Date.now();
  const item = (i: number): WriteRequest => ({
    PutRequest: {
      Item: {
        lockId: { S: `bench-${i}@${100 + (i % 3)}` },
        userId: { S: `bench-user-${i % USERS}` },
        moduleCode: { S: String(100 + (i % 3)) },
        status: { S: 'HELD' },
        holder: { S: 'bench-worker' },
        acquiredAt: { N: String(now) },
        heartbeatAt: { N: String(now) },
        leaseSeconds: { N: '600' },
        releaseAttempts: { N: '0' },
        version: { N: '1' },
        sweepShard: { S: String(i % SWEEP_SHARDS) },
        openUserId: { S: `bench-user-${i % USERS}` },
      } satisfies Record<string, AttributeValue>,
    },
  });
  let next = 0;
  const writer = async () => {
    while (next < ITEMS) {
      const start = next;
      next = Math.min(ITEMS, next + 25);
      let pending: Record<string, WriteRequest[]> | undefined = {
        [tableName]: Array.from({ length: next - start }, (_, k) => item(start + k)),
      };
      while (pending && Object.keys(pending).length > 0) {
        const answer: BatchWriteItemCommandOutput = await client.send(
          new BatchWriteItemCommand({ RequestItems: pending }),
        );
        pending = answer.UnprocessedItems;
      }
    }
  };
  await Promise.all([writer(), writer(), writer(), writer()]);
  console.log(`seeded ${ITEMS} open items of ${USERS} users in ${(ms(started) / 1000).toFixed(1)} s`);

  // The on-call case: the user's dead worker (last heartbeat 5 minutes ago, 120 s lease) holds module 101.
  const deadAt = now - 300_000;
  const lockId = stack.koodrive.seedLock(LOCAL_USER_ID, '101', { expiresAt: deadAt + 600_000 });
  await new DynamoLedger({ tableName, calls: httpDynamoCallsFor(client), now: () => deadAt }).recordAcquired({
    lockId,
    userId: LOCAL_USER_ID,
    moduleCode: '101',
    holder: 'worker-crashed',
    leaseSeconds: 120,
  });

  // Baseline: a Scan of the whole table filtered by userId (what finding the lock took before).
  started = performance.now();
  let scanned = 0;
  const found: string[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: 'userId = :u AND moduleCode = :m',
        ExpressionAttributeValues: { ':u': { S: LOCAL_USER_ID }, ':m': { S: '101' } },
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    scanned += page.ScannedCount ?? 0;
    found.push(...(page.Items ?? []).map((i) => i.lockId?.S ?? '?'));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  const scanMs = ms(started);
  console.log(`baseline scan: ${scanMs.toFixed(0)} ms, ${scanned} items read, found ${found.length}`);

  const event = { userId: LOCAL_USER_ID, moduleCode: '101' };
  const timed = async (payload: unknown) => {
    const at = performance.now();
    const report = (await handler(payload, lambdaContext('release'))) as FindByUserReport;
    return { took: ms(at), report };
  };
  const first = await timed({ ...event, dryRun: true });
  const warm: number[] = [];
  for (let i = 0; i < RUNS; i += 1) warm.push((await timed({ ...event, dryRun: true })).took);
  const release = await timed(event);
  const result = release.report.results.find((r) => r.lockId === lockId);
  if (first.report.results.length !== 1 || result?.outcome !== 'released' || stack.koodrive.isHeld(lockId)) {
    throw new Error(`unexpected answer: ${JSON.stringify(release.report).slice(0, 500)}`);
  }
  const warmMedian = median(warm);
  console.log(`find-by-user dry run, first call (secret read, clients built): ${first.took.toFixed(0)} ms`);
  console.log(
    `find-by-user dry run, warm, median of ${RUNS}: ${warmMedian.toFixed(1)} ms (min ${Math.min(...warm).toFixed(1)}, max ${Math.max(...warm).toFixed(1)})`,
  );
  console.log(
    `find-by-user release (the live-lease read, one DELETE, the outcome write): ${release.took.toFixed(1)} ms`,
  );
  console.log(`scan / warm find-by-user: ${(scanMs / warmMedian).toFixed(0)}x`);
} finally {
  restore();
  await stack.close();
}
