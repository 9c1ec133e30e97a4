/**
 * The release path never frees a live lease (README, "Leases and the promise"): a real worker holds a lock through
 * hold() and heart-beats it on the local stack (KooDrive emulator, dynalite) while the packaged release and sweep
 * handlers are asked to release it. What KooDrive did is read from the emulator's own records, what the ledger
 * holds through the SDK's document client, never from the handlers' answers alone.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import { LOCAL_USER_ID } from '../../dev/stack';
import { LockLostError } from '../../src/core/errors';
import type { ReleaseReport } from '../../src/core/model';
import { handler as release } from '../../src/handlers/release';
import { handler as sweep } from '../../src/handlers/sweep';
import { KooDriveClient } from '../../src/koodrive/client';
import { parseSecret } from '../../src/koodrive/secret';
import { LockHolder, type Lease } from '../../src/ledger/holder';
import { DynamoLedger } from '../../src/ledger/ledger';
import { getApp } from '../../src/wiring';
import { loadEvent, sqsRecord } from '../helpers/events';
import { rawItem } from '../helpers/ledger-fakes';
import { useLocalStack } from '../helpers/local-stack';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

// One attempt per DELETE keeps a failing release quick; the allowance is the functions' default (10 s).
const stack = useLocalStack({ ledger: true }, { RELEASE_MAX_ATTEMPTS: '1' });
const USER = LOCAL_USER_ID;
/** A 6 s lease heart-beats every 2 s; the worker's own allowance is 1 s (safe time 4.7 s). */
const LEASE_SECONDS = 6;

let unhandled: unknown[];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

function worker(): LockHolder {
  const dynamo = stack().dynamo!;
  const settings = { settings: parseSecret(JSON.stringify(stack().secret), 'test'), version: 1 };
  return new LockHolder({
    koodrive: new KooDriveClient({ settings: { current: () => Promise.resolve(settings) }, timeoutMs: 2000 }),
    ledger: new DynamoLedger({ tableName: dynamo.tableName, calls: httpDynamoCallsFor(dynamo.client) }),
    name: 'worker-1',
    leaseSeconds: LEASE_SECONDS,
    clockSkewSeconds: 1,
  });
}

const item = (lockId: string) => rawItem(stack().dynamo!.client, stack().dynamo!.tableName, lockId);
const deletes = (lockId: string) =>
  stack().koodrive.requests.filter((r) => r.method === 'DELETE' && r.lockId === lockId).length;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `body` inside a real hold() of a fresh lock; resolves once hold() has returned. */
async function whileHeld(body: (lease: Lease) => Promise<void>): Promise<void> {
  await worker().hold(USER, '101', body);
}

function sqsEvent(...bodies: object[]): SQSEvent {
  return { Records: bodies.map((body, i) => sqsRecord(`message-${i}`, JSON.stringify(body))) };
}

describe('a live lease on the release path', () => {
  it('a failing DELETE writes no RELEASE_FAILED over the live item, and the sweep leaves it to the worker', async () => {
    await whileHeld(async (lease) => {
      stack().koodrive.fault({
        match: (r) => r.method === 'DELETE',
        action: { type: 'status', status: 503 },
      });
      const report = (await release({ lockIds: [lease.lockId] }, lambdaContext('release'))) as ReleaseReport;
      expect(report.results).toEqual([
        {
          lockId: lease.lockId,
          userId: USER,
          outcome: 'held',
          attempts: 0,
          status: 'HELD',
          holder: 'worker-1',
          leaseLeftSeconds: expect.any(Number) as number,
        },
      ]);
      // The lease left is the sweep's rule: lease 6 s + allowance 10 s − the heartbeat's age.
      expect(report.results[0]?.leaseLeftSeconds).toBeGreaterThan(LEASE_SECONDS + 10 - 3);
      expect(report.results[0]?.leaseLeftSeconds).toBeLessThanOrEqual(LEASE_SECONDS + 10);
      expect(report.summary).toMatchObject({ requested: 1, released: 0, failed: 0, held: 1 });
      expect(deletes(lease.lockId)).toBe(0);
      expect(await item(lease.lockId)).toMatchObject({ status: 'HELD', holder: 'worker-1' });

      await sweep({}, lambdaContext('sweep'));
      expect(stack().koodrive.isHeld(lease.lockId)).toBe(true);
      // Two heartbeats later the worker still holds it, in KooDrive and in the ledger.
      await sleep(4500);
      lease.assertHeld();
      expect(stack().koodrive.isHeld(lease.lockId)).toBe(true);
      expect(await item(lease.lockId)).toMatchObject({ status: 'HELD' });
      stack().koodrive.clearFaults();
    });
  });

  it('a direct release and an SQS release of a live lock release nothing and fail no message', async () => {
    await whileHeld(async (lease) => {
      const report = (await release({ lockIds: [lease.lockId] }, lambdaContext('release'))) as ReleaseReport;
      expect(report.results[0]).toMatchObject({ outcome: 'held', holder: 'worker-1' });
      const answer = (await release(
        sqsEvent({ lockId: lease.lockId, userId: USER }),
        lambdaContext('release'),
      )) as SQSBatchResponse;
      expect(answer).toEqual({ batchItemFailures: [] });
      expect(deletes(lease.lockId)).toBe(0);
      expect(stack().koodrive.isHeld(lease.lockId)).toBe(true);
      await sleep(2500);
      lease.assertHeld();
    });
  });

  it('an SQS batch of 10 is read in one ledger request: its live lock is held, its dead and unknown locks released, no message fails', async () => {
    const dynamo = stack().dynamo!;
    // Dead workers' items: heart-beaten a minute ago on a 6 s lease (stale after 16 s); unknown locks have none.
    const past = new DynamoLedger({
      tableName: dynamo.tableName,
      calls: httpDynamoCallsFor(dynamo.client),
      now: () => Date.now() - 60_000,
    });
    const dead = ['201', '202', '203', '204'].map((module) => stack().koodrive.seedLock(USER, module));
    for (const lockId of dead) {
      await past.recordAcquired({ lockId, userId: USER, moduleCode: lockId.split('@')[1]!, leaseSeconds: 6 });
    }
    const unknown = ['301', '302', '303', '304', '305'].map((module) =>
      stack().koodrive.seedLock(USER, module),
    );
    await whileHeld(async (lease) => {
      const ledger = getApp().ledger!;
      const before = ledger.requests;
      const locks = [lease.lockId, ...dead, ...unknown];
      const answer = (await release(
        sqsEvent(...locks.map((lockId) => ({ lockId, userId: USER }))),
        lambdaContext('release'),
      )) as SQSBatchResponse;
      expect(answer).toEqual({ batchItemFailures: [] });
      // One BatchGetItem for the ten leases, then one outcome write per released lock (none for the held one).
      expect(ledger.requests - before).toBe(1 + 9);
      expect(deletes(lease.lockId)).toBe(0);
      lease.assertHeld();
      for (const lockId of [...dead, ...unknown]) {
        expect(stack().koodrive.isHeld(lockId)).toBe(false);
        expect(await item(lockId)).toMatchObject({ status: 'RELEASED' });
      }
      expect(await item(lease.lockId)).toMatchObject({ status: 'HELD', holder: 'worker-1' });
    });
  });

  it('an SQS body with "force" is an invalid entry: its message fails and nothing is released', async () => {
    await whileHeld(async (lease) => {
      const answer = (await release(
        sqsEvent({ lockId: lease.lockId, userId: USER, force: true }),
        lambdaContext('release'),
      )) as SQSBatchResponse;
      expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'message-0' }] });
      expect(deletes(lease.lockId)).toBe(0);
      lease.assertHeld();
    });
  });

  it('"force": true releases a live lock, and the worker learns it at its next heartbeat', async () => {
    let lost: unknown;
    await whileHeld(async (lease) => {
      const report = (await release(
        { lockIds: [lease.lockId], force: true },
        lambdaContext('release'),
      )) as ReleaseReport;
      expect(report.results[0]).toMatchObject({ outcome: 'released', attempts: 1 });
      expect(stack().koodrive.isHeld(lease.lockId)).toBe(false);
      expect(await item(lease.lockId)).toMatchObject({
        status: 'RELEASED',
        forcedAt: expect.any(Number) as number,
      });
      // The next heartbeat (every 2 s) finds the item no longer its HELD item.
      await new Promise<void>((resolve) => lease.signal.addEventListener('abort', () => resolve()));
      lost = lease.signal.reason;
      expect(() => lease.assertHeld()).toThrow(LockLostError);
    });
    expect(lost).toBeInstanceOf(LockLostError);
    expect((lost as LockLostError).message).toMatch(/RELEASED/);
  });

  it('a forced release whose DELETE fails is recorded as forced, the worker loses it, and the sweep retries it', async () => {
    let lockId = '';
    await whileHeld(async (lease) => {
      lockId = lease.lockId;
      stack().koodrive.fault({
        match: (r) => r.method === 'DELETE',
        action: { type: 'status', status: 503 },
        times: 1,
      });
      const report = (await release(
        { lockIds: [lease.lockId], force: true },
        lambdaContext('release'),
      )) as ReleaseReport;
      expect(report.results[0]).toMatchObject({ outcome: 'failed', error: { kind: 'retryable' } });
      expect(await item(lease.lockId)).toMatchObject({
        status: 'RELEASE_FAILED',
        forcedAt: expect.any(Number) as number,
      });
      await new Promise<void>((resolve) => lease.signal.addEventListener('abort', () => resolve()));
      expect(() => lease.assertHeld()).toThrow(LockLostError);
      // The lease has not run out by the sweep's rule, but the release was forced: the sweep retries it now.
      await sweep({}, lambdaContext('sweep'));
      expect(stack().koodrive.isHeld(lease.lockId)).toBe(false);
    });
    expect(await item(lockId)).toMatchObject({ status: 'RELEASED' });
  });

  it('the force sample (events/direct-release-force.json) releases a lock its worker holds on a live lease; without "force" it is held', async () => {
    const payload = loadEvent<{ lockIds: string[]; userId: string; force: boolean }>(
      'direct-release-force.json',
    );
    const lockId = payload.lockIds[0]!;
    stack().koodrive.seedLock(USER, '101', { lockId });
    const dynamo = stack().dynamo!;
    await new DynamoLedger({
      tableName: dynamo.tableName,
      calls: httpDynamoCallsFor(dynamo.client),
    }).recordAcquired({
      lockId,
      userId: USER,
      moduleCode: '101',
      holder: 'worker-2',
      leaseSeconds: 120,
    });
    const { force: _, ...unforced } = payload;
    const held = (await release(unforced, lambdaContext('release'))) as ReleaseReport;
    expect(held.results[0]).toMatchObject({ outcome: 'held', holder: 'worker-2' });
    expect(stack().koodrive.isHeld(lockId)).toBe(true);
    const forced = (await release(payload, lambdaContext('release'))) as ReleaseReport;
    expect(forced.summary).toMatchObject({ requested: 1, released: 1, held: 0 });
    expect(stack().koodrive.isHeld(lockId)).toBe(false);
    expect(await item(lockId)).toMatchObject({ status: 'RELEASED', forcedAt: expect.any(Number) as number });
  });
});
