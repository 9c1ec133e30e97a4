import { describe, expect, it } from 'vitest';
import { backoffMs, DEFAULT_ENGINE_OPTIONS, releaseLocks, type EngineOptions } from '../../src/core/engine';
import type { AttemptOutcome, LockResult } from '../../src/core/model';
import { FakeClock, FakeGateway, locks, seededRandom } from '../helpers/fakes';

const options: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS, recordReserveMs: 0 };
const retryable = (status = 503): AttemptOutcome => ({
  ok: false,
  error: { kind: 'retryable', httpStatus: status, message: 'unavailable' },
});

function deps(gateway: FakeGateway, clock = new FakeClock(), remainingMs = () => 60_000) {
  return { gateway, clock, random: seededRandom(1), remainingMs };
}

describe('releaseLocks', () => {
  it('releases every lock once and reports one result per lock, in order', async () => {
    const gateway = new FakeGateway();
    const input = locks(20);
    const results = await releaseLocks(input, deps(gateway), options);
    expect(results.map((r) => r.lockId)).toEqual(input.map((l) => l.lockId));
    expect(results.every((r) => r.outcome === 'released' && r.attempts === 1)).toBe(true);
    expect(gateway.calls).toHaveLength(20);
  });

  it('never runs more calls at once than the concurrency', async () => {
    const gateway = new FakeGateway();
    await releaseLocks(locks(50), deps(gateway), { ...options, concurrency: 3 });
    expect(gateway.maxInFlight).toBe(3);
  });

  it('retries retryable failures up to maxAttempts, then reports the last error', async () => {
    const gateway = new FakeGateway(() => retryable(503));
    const [result] = await releaseLocks(locks(1), deps(gateway), { ...options, maxAttempts: 4 });
    expect(result).toMatchObject({
      outcome: 'failed',
      attempts: 4,
      error: { kind: 'retryable', httpStatus: 503 },
    });
    expect(gateway.calls).toHaveLength(4);
  });

  it('succeeds on a later attempt and counts the attempts', async () => {
    const gateway = new FakeGateway((_, attempt) =>
      attempt < 3 ? retryable(500) : { ok: true, outcome: 'released' },
    );
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toEqual({ lockId: 'lock-0', userId: 'user-1', outcome: 'released', attempts: 3 });
  });

  it('does not retry permanent failures', async () => {
    const gateway = new FakeGateway(() => ({
      ok: false,
      error: { kind: 'permanent', httpStatus: 400, code: '13000102', message: 'bad parameter' },
    }));
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toMatchObject({ outcome: 'failed', attempts: 1, error: { kind: 'permanent' } });
  });

  it('reports alreadyReleased as its own outcome without retrying', async () => {
    const gateway = new FakeGateway(() => ({ ok: true, outcome: 'alreadyReleased' }));
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toMatchObject({ outcome: 'alreadyReleased', attempts: 1 });
  });

  it('waits at least Retry-After between attempts', async () => {
    const clock = new FakeClock();
    const gateway = new FakeGateway((_, attempt) =>
      attempt === 1 ? { ...retryable(429), retryAfterMs: 2000 } : { ok: true, outcome: 'released' },
    );
    await releaseLocks(locks(1), deps(gateway, clock), options);
    expect(clock.sleeps).toEqual([2000]);
  });

  it('starts no attempt when the attempt timeout and margin no longer fit before the deadline', async () => {
    const clock = new FakeClock();
    const deadline = 20_000;
    const gateway = new FakeGateway(() => {
      clock.time += 4000; // each attempt takes 4 s
      return retryable();
    });
    const results = await releaseLocks(
      locks(10),
      deps(gateway, clock, () => deadline - clock.time),
      { ...options, concurrency: 1, maxAttempts: 1 },
    );
    // an attempt needs 5 s timeout + 1 s margin: it starts at 0, 4, 8 and 12 s; at 16 s only 4 s remain
    const attempted = results.filter((r) => r.attempts > 0);
    expect(attempted).toHaveLength(4);
    expect(results.filter((r) => r.error?.kind === 'deadline')).toHaveLength(6);
    expect(results.every((r) => r.outcome === 'failed')).toBe(true);
  });

  it('stops retrying when the backoff would cross the deadline, reporting the last HTTP status', async () => {
    const clock = new FakeClock();
    const gateway = new FakeGateway(() => ({ ...retryable(503), retryAfterMs: 30_000 }));
    const [result] = await releaseLocks(
      locks(1),
      deps(gateway, clock, () => 20_000 - clock.time),
      options,
    );
    expect(result).toMatchObject({
      outcome: 'failed',
      attempts: 1,
      error: { kind: 'deadline', httpStatus: 503 },
    });
    expect(clock.sleeps).toEqual([]);
  });

  it('re-reads credentials once after an auth failure and retries the lock with them', async () => {
    let rotated = false;
    const gateway = new FakeGateway(() =>
      rotated
        ? { ok: true, outcome: 'released' }
        : { ok: false, error: { kind: 'auth', httpStatus: 401, message: 'rejected' }, credentialsVersion: 1 },
    );
    gateway.refreshCredentials = (version) => {
      gateway.refreshes.push(version);
      rotated = true;
      return Promise.resolve(true);
    };
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toMatchObject({ outcome: 'released', attempts: 2 });
    expect(gateway.refreshes).toEqual([1]);
  });

  it('with credentials that stay wrong, fails the other locks fast instead of sending a storm', async () => {
    const gateway = new FakeGateway(() => ({
      ok: false,
      error: { kind: 'auth', httpStatus: 401, code: 'APIGW.0301', message: 'rejected' },
    }));
    const results = await releaseLocks(locks(100), deps(gateway), { ...options, concurrency: 1 });
    expect(results.every((r) => r.outcome === 'failed' && r.error?.kind === 'auth')).toBe(true);
    expect(gateway.calls).toHaveLength(2); // the first lock, and its one retry after the re-read
  });

  it('fails with auth when no newer credentials can be had', async () => {
    const gateway = new FakeGateway(() => ({
      ok: false,
      error: { kind: 'auth', httpStatus: 403, message: 'no' },
    }));
    gateway.refreshAnswer = false;
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toMatchObject({ outcome: 'failed', attempts: 1, error: { kind: 'auth' } });
  });

  it('records every final outcome, beside the calls, and waits for the writes before answering', async () => {
    const recorded: LockResult[] = [];
    const gateway = new FakeGateway();
    const recorder = {
      record: async (result: LockResult) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        recorded.push(result);
      },
    };
    const results = await releaseLocks(locks(5), { ...deps(gateway), recorder }, options);
    expect(recorded).toHaveLength(5);
    expect(new Set(recorded.map((r) => r.lockId))).toEqual(new Set(results.map((r) => r.lockId)));
  });

  it('keeps the outcome when recording it fails, and says so', async () => {
    const failures: string[] = [];
    const results = await releaseLocks(
      locks(2),
      {
        ...deps(new FakeGateway()),
        recorder: { record: () => Promise.reject(new Error('table gone')) },
        onRecordError: (result) => failures.push(result.lockId),
      },
      options,
    );
    expect(results.map((r) => r.outcome)).toEqual(['released', 'released']);
    expect(failures).toEqual(['lock-0', 'lock-1']);
  });
});

describe('backoffMs', () => {
  it('draws from [0, min(max, base * 2^(n-1))) and never undercuts Retry-After', () => {
    const opts = { baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffMs(1, undefined, opts, () => 0.999)).toBe(99);
    expect(backoffMs(3, undefined, opts, () => 0.5)).toBe(200);
    expect(backoffMs(10, undefined, opts, () => 0.999)).toBe(999);
    expect(backoffMs(1, 1500, opts, () => 0.5)).toBe(1500);
    expect(backoffMs(2, undefined, opts, () => 0)).toBe(0);
  });
});
