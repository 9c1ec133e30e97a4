import { beforeAll, describe, expect, it } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import { LOCAL_USER_ID } from '../../dev/stack';
import { LockLostError } from '../../src/core/errors';
import type { ReleaseReport } from '../../src/core/model';
import { handler as release } from '../../src/handlers/release';
import { handler as sweep } from '../../src/handlers/sweep';
import { KooDriveClient } from '../../src/koodrive/client';
import { parseSecret } from '../../src/koodrive/secret';
import { LockHolder } from '../../src/ledger/holder';
import { DynamoLedger } from '../../src/ledger/ledger';
import { loadEvent } from '../helpers/events';
import { useLocalStack } from '../helpers/local-stack';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

const stack = useLocalStack({ ledger: true });
let ledger: DynamoLedger;

beforeAll(() => {
  ledger = new DynamoLedger({
    tableName: stack().dynamo!.tableName,
    calls: httpDynamoCallsFor(stack().dynamo!.client),
  });
});

/**
 * A lock held in KooDrive and recorded HELD in the ledger on a `leaseSeconds` lease, its last heartbeat (and
 * KooDrive renewal) `ageSeconds` ago.
 */
async function held(ageSeconds: number, leaseSeconds = 120): Promise<string> {
  const renewedAt = Date.now() - ageSeconds * 1000;
  const lockId = stack().koodrive.seedLock(LOCAL_USER_ID, '102', { expiresAt: renewedAt + 600_000 });
  const past = new DynamoLedger({
    tableName: stack().dynamo!.tableName,
    calls: httpDynamoCallsFor(stack().dynamo!.client),
    now: () => renewedAt,
  });
  await past.recordAcquired({
    lockId,
    userId: LOCAL_USER_ID,
    moduleCode: '102',
    holder: 'worker-1',
    leaseSeconds,
  });
  return lockId;
}

describe('sweep against the local stack', () => {
  it('a dry run lists the stale and failed locks with reasons and changes nothing', async () => {
    // Stale: 131 s > lease 120 + skew 10. Fresh: 125 s on a 120 s lease is still inside the skew allowance.
    const stale = await held(131);
    const fresh = await held(125);
    const failed = await held(131);
    // A failure recorded while its holder's lease is live waits for the lease to run out.
    const failedLive = await held(60);
    for (const lockId of [failed, failedLive]) {
      await ledger.record({
        lockId,
        userId: LOCAL_USER_ID,
        outcome: 'failed',
        attempts: 4,
        error: { kind: 'retryable', httpStatus: 503, message: 'unavailable' },
      });
    }
    const report = await sweep(loadEvent('sweep-dry-run.json'), lambdaContext('sweep'));
    const mine = report.candidates.filter((c) => [stale, fresh, failed, failedLive].includes(c.lockId));
    expect(mine.map((c) => [c.lockId, c.status])).toEqual(
      expect.arrayContaining([
        [stale, 'HELD'],
        [failed, 'RELEASE_FAILED'],
      ]),
    );
    expect(mine).toHaveLength(2);
    expect(mine.find((c) => c.lockId === stale)?.reason).toMatch(
      /heartbeat 13\d s old \(lease 120 s \+ skew 10 s\)/,
    );
    expect(report.summary.released).toBe(0);
    expect(stack().koodrive.isHeld(stale)).toBe(true);
    expect((await ledger.get(stale))?.status).toBe('HELD');
  });

  it('the scheduled sweep releases exactly the stale and failed locks and marks them RELEASED', async () => {
    const stale = await held(100, 60);
    const fresh = await held(100, 120);
    const failed = await held(100, 60);
    await ledger.record({
      lockId: failed,
      userId: LOCAL_USER_ID,
      outcome: 'failed',
      attempts: 1,
      error: { kind: 'retryable', message: 'timed out' },
    });
    const report = await sweep(loadEvent('scheduled-sweep.json'), lambdaContext('sweep'));
    const outcomes = Object.fromEntries(report.results.map((r) => [r.lockId, r.outcome]));
    expect(outcomes[stale]).toBe('released');
    expect(outcomes[failed]).toBe('released');
    expect(outcomes[fresh]).toBeUndefined();
    expect(stack().koodrive.isHeld(stale)).toBe(false);
    expect(stack().koodrive.isHeld(failed)).toBe(false);
    expect(stack().koodrive.isHeld(fresh)).toBe(true);
    for (const id of [stale, failed]) {
      const item = await ledger.get(id);
      expect(item?.status).toBe('RELEASED');
      expect(item?.expiresAt).toBeGreaterThan(Date.now() / 1000 + 6.9 * 24 * 3600);
    }
    expect((await ledger.get(fresh))?.status).toBe('HELD');
  });

  it.each([
    ['a bad value', { limit: -1 }, 'limit', 'limit must be a whole number from 1 to 10000, got -1'],
    ['a typo', { dryrun: true }, 'dryrun', '`dryrun`: unknown key, did you mean `dryRun`?'],
    ['not an object', [true], 'event', 'the event must be a JSON object, got an array'],
  ])(
    'answers a sweep event with %s with a structured refusal naming the field, and touches nothing',
    async (_name, event, field, message) => {
      const stale = await held(300);
      const report = await sweep(event, lambdaContext('sweep'));
      expect(report).toEqual({
        summary: {
          requested: 0,
          released: 0,
          alreadyReleased: 0,
          failed: 0,
          duplicates: 0,
          skipped: 0,
          closedExpired: 0,
          durationMs: 0,
        },
        results: [],
        candidates: [],
        error: { kind: 'invalid-input', field, message },
      });
      expect(stack().koodrive.isHeld(stale)).toBe(true);
      expect((await ledger.get(stale))?.status).toBe('HELD');
    },
  );

  it('takes EventBridge Scheduler’s default notification as a scheduled run: its own fields are not payload keys', async () => {
    const stale = await held(300);
    const scheduled = loadEvent<Record<string, unknown>>('scheduled-sweep.json');
    const notification = {
      ...scheduled,
      source: 'aws.scheduler',
      resources: ['arn:aws:scheduler:eu-west-1:123456789012:schedule/default/sweep'],
      detail: '{}',
    };
    const report = await sweep(notification, lambdaContext('sweep'));
    expect(report.error).toBeUndefined();
    expect(report.results.find((r) => r.lockId === stale)?.outcome).toBe('released');
  });

  it('release writes the ledger: RELEASED after success, RELEASE_FAILED with the error after a final failure', async () => {
    const ok = stack().koodrive.seedLock(LOCAL_USER_ID, '101');
    const bad = stack().koodrive.seedLock(LOCAL_USER_ID, '100');
    stack().koodrive.fault({ match: (req) => req.lockId === bad, action: { type: 'status', status: 400 } });
    const report = (await release({ lockIds: [ok, bad] }, lambdaContext('release'))) as ReleaseReport;
    expect(report.results.map((r) => r.outcome)).toEqual(['released', 'failed']);
    expect(await ledger.get(ok)).toMatchObject({ status: 'RELEASED', userId: LOCAL_USER_ID });
    expect(await ledger.get(bad)).toMatchObject({
      status: 'RELEASE_FAILED',
      releaseAttempts: 1,
      lastError: expect.stringMatching(/^permanent: /) as unknown,
    });
  });
});

describe('a backup worker using the holder client against the local stack', () => {
  it('keeps its lock while heart-beating; once it stops, the sweep releases it and its next heartbeat fails', async () => {
    const settings = { settings: parseSecret(JSON.stringify(stack().secret), 'local'), version: 1 };
    const koodrive = new KooDriveClient({
      settings: { current: () => Promise.resolve(settings) },
      timeoutMs: 2000,
    });
    let clockOffsetMs = 0;
    const workerLedger = new DynamoLedger({
      tableName: stack().dynamo!.tableName,
      calls: httpDynamoCallsFor(stack().dynamo!.client),
      now: () => Date.now() + clockOffsetMs,
    });
    const worker = new LockHolder({ koodrive, ledger: workerLedger, name: 'worker-e2e', leaseSeconds: 60 });

    // A worker on time keeps its lock through a sweep.
    const lock = await worker.acquire(LOCAL_USER_ID, '101');
    expect(stack().koodrive.isHeld(lock.lockId)).toBe(true);
    await worker.heartbeat(lock);
    const fresh = await sweep({}, lambdaContext('sweep'));
    expect(fresh.candidates.map((c) => c.lockId)).not.toContain(lock.lockId);

    const late = await worker.acquire(LOCAL_USER_ID, '102');
    // A worker whose last heartbeat was 75 s ago on a 60 s lease (stale after 60 + skew 10 s): it crashed.
    clockOffsetMs = -75_000;
    const stale = await new LockHolder({
      koodrive,
      ledger: workerLedger,
      name: 'worker-late',
      leaseSeconds: 60,
    }).acquire(LOCAL_USER_ID, '100');
    const swept = await sweep({}, lambdaContext('sweep'));
    expect(swept.results.find((r) => r.lockId === stale.lockId)?.outcome).toBe('released');
    expect(swept.candidates.map((c) => c.lockId)).not.toContain(late.lockId);
    expect(stack().koodrive.isHeld(stale.lockId)).toBe(false);
    expect(stack().koodrive.isHeld(late.lockId)).toBe(true);
    // The late worker's next heartbeat writes the ledger first and finds its item taken: no KooDrive renew.
    const renewsBefore = stack().koodrive.requests.filter((r) => r.method === 'PATCH').length;
    await expect(
      new LockHolder({ koodrive, ledger: workerLedger, name: 'worker-late', leaseSeconds: 60 }).heartbeat(
        stale,
      ),
    ).rejects.toThrow(LockLostError);
    expect(stack().koodrive.requests.filter((r) => r.method === 'PATCH').length).toBe(renewsBefore);
  });
});
