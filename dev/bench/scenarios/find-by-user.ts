/**
 * Find-by-user's handler time with a large ledger: open items of many other users (5 each, in three modules) in a
 * ledger table of the run's dynalite, plus the on-call case, a user whose backup of module 101 is blocked by a dead
 * worker's lock. A fresh worker runs the release handler (src/) on the stack and answers
 * `{"userId", "moduleCode": "101"}`: a dry run (first call: secret read, clients built; then the median of warm
 * calls) and the release. The baseline in the same run is what finding the lock took before: a Scan of the table
 * filtered by userId and moduleCode.
 */
import { ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { SWEEP_SHARDS } from '../../../src/core/lease';
import type { FindByUserReport } from '../../../src/core/release';
import { DynamoLedger } from '../../../src/ledger/ledger';
import { httpDynamoCallsFor } from '../../../src/ledger/dynamo-http';
import type { Harness } from '../harness';
import { median, ms } from '../report';
import { writeAll } from './ledger-scale';

export async function findByUser(h: Harness): Promise<void> {
  const { findByUserItems: items, findByUserRuns: runs } = h.sizes;
  const users = Math.max(1, Math.floor(items / 5));
  const tableName = await h.newTable();
  const { client, endpoint } = h.ledgerDb;
  const now = Date.now();
  h.log(`find-by-user: seeding ${items} open items of ${users} users`);
  const seeded = performance.now();
  await writeAll(client, tableName, items, (i) => ({
    PutRequest: {
      Item: {
        lockId: { S: `bench-${i}@${100 + (i % 3)}` },
        userId: { S: `bench-user-${i % users}` },
        moduleCode: { S: String(100 + (i % 3)) },
        status: { S: 'HELD' },
        holder: { S: 'bench-worker' },
        acquiredAt: { N: String(now) },
        heartbeatAt: { N: String(now) },
        leaseSeconds: { N: '600' },
        releaseAttempts: { N: '0' },
        version: { N: '1' },
        sweepShard: { S: String(i % SWEEP_SHARDS) },
        openUserId: { S: `bench-user-${i % users}` },
      },
    },
  }));
  h.note(
    `${items} open items of ${users} users seeded with BatchWriteItem in ${((performance.now() - seeded) / 1000).toFixed(1)} s (not part of the figures).`,
  );

  // The on-call case: the user's dead worker (last heartbeat 5 minutes ago, 120 s lease) holds module 101.
  await h.resetEmulator(0);
  const deadAt = now - 300_000;
  const [lockId = ''] = await h.emulator.call('seed', h.userId, {
    count: 1,
    moduleCode: '101',
    expiresAt: deadAt + 600_000,
  });
  await new DynamoLedger({ tableName, calls: httpDynamoCallsFor(client), now: () => deadAt }).recordAcquired({
    lockId,
    userId: h.userId,
    moduleCode: '101',
    holder: 'worker-crashed',
    leaseSeconds: 120,
  });

  // Baseline: a Scan of the whole table filtered by userId and module.
  const started = performance.now();
  let scanned = 0;
  const found: string[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        FilterExpression: 'userId = :u AND moduleCode = :m',
        ExpressionAttributeValues: { ':u': { S: h.userId }, ':m': { S: '101' } },
        ExclusiveStartKey: startKey,
      }),
    );
    scanned += page.ScannedCount ?? 0;
    found.push(...(page.Items ?? []).map((i) => i.lockId?.S ?? '?'));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  const scanMs = performance.now() - started;
  if (!found.includes(lockId)) throw new Error(`the baseline Scan did not find ${lockId}`);

  const w = await h.worker(
    h.stackEnv({ endpoint, tableName }, { LOG_LEVEL: 'WARN', POWERTOOLS_METRICS_DISABLED: 'true' }),
  );
  try {
    await w.call('load', 'release');
    const event = { userId: h.userId, moduleCode: '101' };
    const call = async (payload: object) => {
      const r = await w.call('answer', payload, true);
      return { ms: r.ms, report: r.answer as FindByUserReport };
    };
    const first = await call({ ...event, dryRun: true });
    const warm: number[] = [];
    for (let i = 0; i < runs; i += 1) warm.push((await call({ ...event, dryRun: true })).ms);
    const release = await call(event);
    const result = release.report.results.find((r) => r.lockId === lockId);
    if (
      first.report.results.length !== 1 ||
      result?.outcome !== 'released' ||
      (await h.emulator.call('isHeld', lockId))
    ) {
      throw new Error(`find-by-user: unexpected answer ${JSON.stringify(release.report).slice(0, 500)}`);
    }
    const warmMs = median(warm);
    const params = `${items} open items of ${users} users in the ledger`;
    h.add('first', {
      what: `Dry run, first call in a fresh process (secret read, clients built; ${params})`,
      goal: '< 1 s',
      measured: ms(first.ms),
      value: first.ms,
      ok: first.ms < 1000,
    });
    h.add('warm', {
      what: `Dry run, warm (median of ${runs}; ${params})`,
      goal: '< 1 s',
      measured: `${warmMs.toFixed(1)} ms (min ${Math.min(...warm).toFixed(1)}, max ${Math.max(...warm).toFixed(1)}) — baseline (Scan filtered by userId and module) ${ms(scanMs)}, ${scanned} items read; the Scan takes ${(scanMs / warmMs).toFixed(1)}× as long`,
      value: warmMs,
      ok: warmMs < 1000,
    });
    h.add('release', {
      what: 'Release of the found lock (the live-lease read, one DELETE, the outcome write), warm',
      goal: '< 1 s',
      measured: ms(release.ms),
      value: release.ms,
      ok: release.ms < 1000,
    });
  } finally {
    await w.stop();
  }
}
