/**
 * Find-by-user through the release handler against the local stack (KooDrive emulator, dynalite ledger): an
 * on-call engineer's `{"userId": "…", "moduleCode": "101"}` finds that user's open ledger items through the user
 * index, previews them (dryRun) or releases them, and an answer with nothing found says what that means.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import { LOCAL_USER_ID } from '../../dev/stack';
import type { FindByUserReport } from '../../src/core/release';
import { handler } from '../../src/handlers/release';
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

/** The sample's user with a fresh ID each test, so tests do not see each other's items. */
const userOf = (tag: string) => `${LOCAL_USER_ID}-${tag}-${crypto.randomUUID().slice(0, 8)}`;

/**
 * A lock held in KooDrive and recorded HELD in the ledger by `holder` on a `leaseSeconds` lease, its last heartbeat
 * (and KooDrive renewal) `ageSeconds` ago.
 */
async function held(
  userId: string,
  moduleCode: string,
  ageSeconds: number,
  holder: string,
  leaseSeconds = 120,
): Promise<{ lockId: string; heartbeatAt: number }> {
  const heartbeatAt = Date.now() - ageSeconds * 1000;
  const lockId = stack().koodrive.seedLock(userId, moduleCode, { expiresAt: heartbeatAt + 600_000 });
  const past = new DynamoLedger({
    tableName: stack().dynamo!.tableName,
    calls: httpDynamoCallsFor(stack().dynamo!.client),
    now: () => heartbeatAt,
  });
  await past.recordAcquired({ lockId, userId, moduleCode, holder, leaseSeconds });
  return { lockId, heartbeatAt };
}

const invoke = async (event: unknown) => (await handler(event, lambdaContext('release'))) as FindByUserReport;

describe('find-by-user through the release handler', () => {
  it('the sample (a dry run) lists the user’s open locks of module 101 with their ledger state and releases nothing', async () => {
    const event = loadEvent<{ userId: string; moduleCode: string; dryRun: boolean }>(
      'direct-find-by-user.json',
    );
    expect(event).toEqual({ userId: LOCAL_USER_ID, moduleCode: '101', dryRun: true });
    const dead = await held(LOCAL_USER_ID, '101', 200, 'worker-dead');
    const other = await held(LOCAL_USER_ID, '102', 200, 'worker-other-module');
    const report = await invoke(event);
    const mine = report.results.find((r) => r.lockId === dead.lockId);
    expect(mine).toEqual({
      lockId: dead.lockId,
      userId: LOCAL_USER_ID,
      moduleCode: '101',
      status: 'HELD',
      holder: 'worker-dead',
      heartbeatAt: dead.heartbeatAt,
      leaseLeftSeconds: 0,
      outcome: 'wouldRelease',
      attempts: 0,
    });
    expect(report.results.map((r) => r.lockId)).not.toContain(other.lockId);
    expect(report.results.every((r) => r.moduleCode === '101')).toBe(true);
    expect(report).toMatchObject({ userId: LOCAL_USER_ID, moduleCode: '101' });
    expect(report.summary.wouldRelease).toBe(report.results.length);
    expect(stack().koodrive.requests).toHaveLength(0);
    expect(stack().koodrive.isHeld(dead.lockId)).toBe(true);
    expect((await ledger.get(dead.lockId))?.status).toBe('HELD');
  });

  it('releases the user’s locks of that module in KooDrive and marks them RELEASED; other modules and users keep theirs', async () => {
    const user = userOf('release');
    const a = await held(user, '101', 300, 'worker-a');
    const b = await held(user, '101', 400, 'worker-b');
    const otherModule = await held(user, '102', 300, 'worker-c');
    const otherUser = await held(userOf('other'), '101', 300, 'worker-d');
    const report = await invoke({ userId: user, moduleCode: '101' });
    expect(report.results.map((r) => [r.lockId, r.outcome, r.status, r.holder])).toEqual(
      [
        [a.lockId, 'released', 'HELD', 'worker-a'],
        [b.lockId, 'released', 'HELD', 'worker-b'],
      ].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
    );
    expect(report.summary).toMatchObject({ requested: 2, released: 2, failed: 0 });
    for (const lock of [a, b]) {
      expect(stack().koodrive.isHeld(lock.lockId)).toBe(false);
      expect(await ledger.get(lock.lockId)).toMatchObject({ status: 'RELEASED' });
      expect(await ledger.get(lock.lockId)).not.toHaveProperty('openUserId');
    }
    for (const lock of [otherModule, otherUser]) {
      expect(stack().koodrive.isHeld(lock.lockId)).toBe(true);
      expect((await ledger.get(lock.lockId))?.status).toBe('HELD');
    }
    // Released items left the user index: asked again, nothing is open for that module.
    const again = await invoke({ userId: user, moduleCode: '101' });
    expect(again.results).toEqual([]);
    expect(again.note).toMatch(/no open ledger item/);
  });

  it('without moduleCode: every open lock of the user, each with its module and the lease it has left', async () => {
    const user = userOf('all');
    const fresh = await held(user, '100', 10, 'worker-fresh', 120);
    const stale = await held(user, '102', 500, 'worker-stale', 60);
    const report = await invoke({ userId: user, dryRun: true });
    const byId = new Map(report.results.map((r) => [r.lockId, r]));
    expect(byId.get(stale.lockId)).toMatchObject({ moduleCode: '102', leaseLeftSeconds: 0 });
    // heartbeat 10 s ago, lease 120 s + skew 10 s: about 120 s left (the test's own clock reading may differ by 1-2 s).
    const left = byId.get(fresh.lockId)?.leaseLeftSeconds ?? -1;
    expect(left).toBeGreaterThanOrEqual(115);
    expect(left).toBeLessThanOrEqual(120);
    expect(byId.get(fresh.lockId)).toMatchObject({
      moduleCode: '100',
      holder: 'worker-fresh',
      status: 'HELD',
    });
    expect(report.results).toHaveLength(2);
  });

  it('follows the live-lease rule: a live holder’s lock is held (not released) unless the operator forces it', async () => {
    const user = userOf('live');
    const live = await held(user, '101', 5, 'worker-live', 120);
    const dead = await held(user, '101', 300, 'worker-dead', 120);
    const preview = await invoke({ userId: user, moduleCode: '101', dryRun: true });
    const outcomes = (report: FindByUserReport) =>
      Object.fromEntries(report.results.map((r) => [r.lockId, r.outcome]));
    expect(outcomes(preview)).toEqual({ [live.lockId]: 'held', [dead.lockId]: 'wouldRelease' });
    const report = await invoke({ userId: user, moduleCode: '101' });
    expect(outcomes(report)).toEqual({ [live.lockId]: 'held', [dead.lockId]: 'released' });
    const refused = report.results.find((r) => r.lockId === live.lockId);
    expect(refused).toMatchObject({ status: 'HELD', holder: 'worker-live', heartbeatAt: live.heartbeatAt });
    expect(refused?.leaseLeftSeconds).toBeGreaterThan(100);
    expect(report.summary).toMatchObject({ held: 1, released: 1 });
    expect(stack().koodrive.isHeld(live.lockId)).toBe(true);
    expect((await ledger.get(live.lockId))?.status).toBe('HELD');
    expect(stack().koodrive.isHeld(dead.lockId)).toBe(false);
    // The operator overrides: force releases the live lock too.
    const forced = await invoke({ userId: user, moduleCode: '101', force: true });
    expect(outcomes(forced)).toEqual({ [live.lockId]: 'released' });
    expect(stack().koodrive.isHeld(live.lockId)).toBe(false);
    expect((await ledger.get(live.lockId))?.status).toBe('RELEASED');
  });

  it('with no open item, says what that means: not taken through the holder, KooDrive frees it within 10 minutes', async () => {
    const user = userOf('none');
    // A lock the user holds in KooDrive that no holder recorded: this service cannot see it.
    const unrecorded = stack().koodrive.seedLock(user, '101');
    const report = await invoke({ userId: user, moduleCode: '101' });
    expect(report).toEqual({
      userId: user,
      moduleCode: '101',
      summary: {
        requested: 0,
        released: 0,
        alreadyReleased: 0,
        failed: 0,
        held: 0,
        duplicates: 0,
        durationMs: expect.any(Number) as number,
      },
      results: [],
      note:
        `no open ledger item for user ${user}, module 101: a lock blocking it was not taken through the holder ` +
        '(or was released already), so this service cannot find or release it; KooDrive frees it at most 10 minutes after its last renewal',
    });
    expect(stack().koodrive.isHeld(unrecorded)).toBe(true);
    expect(stack().koodrive.requests).toHaveLength(0);
  });

  it('an unknown key next to userId refuses the request as a whole: nothing is released', async () => {
    const user = userOf('typo');
    const lock = await held(user, '101', 300, 'worker-a');
    const report = await invoke({ userId: user, moduleCode: '101', dryrun: true });
    expect(report.error).toEqual({
      kind: 'invalid-input',
      field: 'dryrun',
      message: '`dryrun`: unknown key, did you mean `dryRun`?',
    });
    expect(report.results).toEqual([]);
    expect(stack().koodrive.isHeld(lock.lockId)).toBe(true);
  });

  it('fails the invocation, naming the setting, when the function has no ledger table', async () => {
    delete process.env.LOCK_LEDGER_TABLE;
    await expect(handler({ userId: LOCAL_USER_ID }, lambdaContext('release'))).rejects.toThrow(
      /LOCK_LEDGER_TABLE is required to find locks by userId/,
    );
  });
});
