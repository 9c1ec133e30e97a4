import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  DEFAULT_ENGINE_OPTIONS,
  mapConcurrently,
  releaseLocks,
  type EngineDeps,
  type EngineOptions,
} from '../../src/core/engine';
import type { LedgerItem } from '../../src/core/lease';
import type { AttemptOutcome, LockRef, LockResult, ReleaseBasis } from '../../src/core/model';
import { FakeClock, FakeGateway, locks, seededRandom } from '../helpers/fakes';
import { memoryLedger } from '../helpers/ledger-fakes';

const options: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS, recordReserveMs: 0 };
const retryable = (status = 503): AttemptOutcome => ({
  ok: false,
  error: { kind: 'retryable', httpStatus: status, message: 'unavailable' },
});
/** What the client answers when the connection dropped or the attempt timed out: no HTTP status. */
const timedOut: AttemptOutcome = { ok: false, error: { kind: 'retryable', message: 'timed out' } };
const refused = (credentialsVersion = 1): AttemptOutcome => ({
  ok: false,
  error: { kind: 'auth', httpStatus: 401, code: 'APIGW.0301', message: 'rejected' },
  credentialsVersion,
});
const released: AttemptOutcome = { ok: true, outcome: 'released' };

function deps(gateway: FakeGateway, clock = new FakeClock(), remainingMs = () => 60_000): EngineDeps {
  return { gateway, clock, random: seededRandom(1), remainingMs };
}

const byId = (results: LockResult[], lockId: string): LockResult | undefined =>
  results.find((r) => r.lockId === lockId);

describe('releaseLocks', () => {
  it('releases every lock once and reports one result per lock, in order', async () => {
    const gateway = new FakeGateway();
    const input = locks(20);
    const results = await releaseLocks(input, deps(gateway), options);
    expect(results.map((r) => r.lockId)).toEqual(input.map((l) => l.lockId));
    expect(results.every((r) => r.outcome === 'released' && r.attempts === 1)).toBe(true);
    expect(gateway.calls).toHaveLength(20);
  });

  it('answers an empty list with an empty list, calling nothing', async () => {
    const gateway = new FakeGateway();
    expect(await releaseLocks([], deps(gateway), options)).toEqual([]);
    expect(gateway.calls).toEqual([]);
  });

  it('never runs more calls at once than the concurrency, and uses all of it', async () => {
    const gateway = new FakeGateway();
    await releaseLocks(locks(50), deps(gateway), { ...options, concurrency: 3 });
    expect(gateway.maxInFlight).toBe(3);
  });

  it('treats a concurrency below 1 as 1', async () => {
    const gateway = new FakeGateway();
    const results = await releaseLocks(locks(5), deps(gateway), { ...options, concurrency: 0 });
    expect(results.map((r) => r.outcome)).toEqual(Array(5).fill('released'));
    expect(gateway.maxInFlight).toBe(1);
  });

  it('releases two users’ locks with the same ID separately, and reports each', async () => {
    const gateway = new FakeGateway((lock) =>
      lock.userId === 'user-b' ? { ok: true, outcome: 'alreadyReleased' } : released,
    );
    const input: LockRef[] = [
      { lockId: 'same', userId: 'user-a' },
      { lockId: 'same', userId: 'user-b' },
    ];
    const results = await releaseLocks(input, deps(gateway), options);
    expect(gateway.calls).toEqual(input);
    expect(results).toEqual([
      { lockId: 'same', userId: 'user-a', outcome: 'released', attempts: 1 },
      { lockId: 'same', userId: 'user-b', outcome: 'alreadyReleased', attempts: 1 },
    ]);
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

  it('with maxAttempts 1, sends one request per lock and does not retry', async () => {
    const gateway = new FakeGateway(() => retryable(500));
    const results = await releaseLocks(locks(3), deps(gateway), { ...options, maxAttempts: 1 });
    expect(results.map((r) => r.attempts)).toEqual([1, 1, 1]);
    expect(gateway.calls).toHaveLength(3);
  });

  it('succeeds on a later attempt and counts the attempts', async () => {
    const gateway = new FakeGateway((_, attempt) => (attempt < 3 ? retryable(500) : released));
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toEqual({ lockId: 'lock-0', userId: 'user-1', outcome: 'released', attempts: 3 });
  });

  it('does not retry permanent failures', async () => {
    const gateway = new FakeGateway(() => ({
      ok: false,
      error: { kind: 'permanent', httpStatus: 400, code: '13000102', message: 'bad parameter' },
    }));
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toEqual({
      lockId: 'lock-0',
      userId: 'user-1',
      outcome: 'failed',
      attempts: 1,
      error: { kind: 'permanent', httpStatus: 400, code: '13000102', message: 'bad parameter' },
    });
  });

  it('reports alreadyReleased as its own outcome without retrying', async () => {
    const gateway = new FakeGateway(() => ({ ok: true, outcome: 'alreadyReleased' }));
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toMatchObject({ outcome: 'alreadyReleased', attempts: 1 });
  });
});

describe('backoff between attempts', () => {
  it('grows: the cap doubles per attempt up to maxDelayMs (full jitter drawn near the cap)', async () => {
    const clock = new FakeClock();
    const gateway = new FakeGateway(() => retryable());
    await releaseLocks(
      locks(1),
      { ...deps(gateway, clock), random: () => 0.999 },
      { ...options, maxAttempts: 7, baseDelayMs: 100, maxDelayMs: 1000 },
    );
    // caps 100, 200, 400, 800, then 1000 twice; the last attempt is not followed by a wait
    expect(clock.sleeps).toEqual([99, 199, 399, 799, 999, 999]);
  });

  it('is drawn at random below the cap (full jitter)', async () => {
    const clock = new FakeClock();
    const gateway = new FakeGateway(() => retryable());
    await releaseLocks(
      locks(1),
      { ...deps(gateway, clock), random: () => 0.5 },
      { ...options, maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000 },
    );
    expect(clock.sleeps).toEqual([50, 100, 200]);
  });

  it('never waits less than Retry-After, and more when the drawn delay is longer', async () => {
    const clock = new FakeClock();
    const gateway = new FakeGateway(() => ({ ...retryable(429), retryAfterMs: 300 }));
    await releaseLocks(
      locks(1),
      { ...deps(gateway, clock), random: () => 0.999 },
      { ...options, maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 },
    );
    expect(clock.sleeps).toEqual([300, 300, 399, 799]);
  });

  it('waits at least Retry-After between attempts', async () => {
    const clock = new FakeClock();
    const gateway = new FakeGateway((_, attempt) =>
      attempt === 1 ? { ...retryable(429), retryAfterMs: 2000 } : released,
    );
    await releaseLocks(locks(1), deps(gateway, clock), options);
    expect(clock.sleeps).toEqual([2000]);
  });
});

describe('the deadline', () => {
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
    expect(results[9]?.error).toEqual({
      kind: 'deadline',
      message: 'not attempted: too little time left before the Lambda deadline',
    });
  });

  it('starts an attempt when exactly the timeout and the margin are left', async () => {
    const gateway = new FakeGateway();
    const [result] = await releaseLocks(
      locks(1),
      deps(gateway, new FakeClock(), () => 6000),
      options,
    );
    expect(result).toMatchObject({ outcome: 'released', attempts: 1 });
  });

  it('counts the ledger write’s reserve toward the deadline when outcomes are recorded', async () => {
    const recorded: LockResult[] = [];
    const recorder = { record: (r: LockResult) => Promise.resolve(void recorded.push(r)) };
    const withReserve = { ...options, recordReserveMs: 500 };
    // 6 s timeout + margin fit in 6.4 s; with the 0.5 s ledger reserve they do not
    const gateway = new FakeGateway();
    const [without] = await releaseLocks(
      locks(1),
      deps(gateway, new FakeClock(), () => 6400),
      withReserve,
    );
    expect(without).toMatchObject({ outcome: 'released', attempts: 1 });

    const ledgerGateway = new FakeGateway();
    const [withLedger] = await releaseLocks(
      locks(1),
      { ...deps(ledgerGateway, new FakeClock(), () => 6400), recorder },
      withReserve,
    );
    expect(withLedger).toMatchObject({ outcome: 'failed', attempts: 0, error: { kind: 'deadline' } });
    expect(ledgerGateway.calls).toEqual([]);
    expect(recorded).toEqual([withLedger]);

    const [justFits] = await releaseLocks(
      locks(1),
      { ...deps(new FakeGateway(), new FakeClock(), () => 6500), recorder },
      withReserve,
    );
    expect(justFits).toMatchObject({ outcome: 'released', attempts: 1 });
  });

  it('stops retrying when the backoff would cross the deadline, reporting the last HTTP status', async () => {
    const clock = new FakeClock();
    const gateway = new FakeGateway(() => ({
      ok: false,
      error: { kind: 'retryable', httpStatus: 503, code: '13000201', message: 'unavailable' },
      retryAfterMs: 30_000,
    }));
    const [result] = await releaseLocks(
      locks(1),
      deps(gateway, clock, () => 20_000 - clock.time),
      options,
    );
    expect(result).toEqual({
      lockId: 'lock-0',
      userId: 'user-1',
      outcome: 'failed',
      attempts: 1,
      error: {
        kind: 'deadline',
        httpStatus: 503,
        code: '13000201',
        message:
          'stopped after 1 attempt(s): too little time left before the Lambda deadline; last error: unavailable',
      },
    });
    expect(clock.sleeps).toEqual([]);
  });

  it('waits when the backoff and then an attempt still fit exactly', async () => {
    const clock = new FakeClock();
    const gateway = new FakeGateway((_, attempt) =>
      attempt === 1 ? { ...retryable(429), retryAfterMs: 1000 } : released,
    );
    // 7 s left: 1 s of Retry-After leaves exactly the 6 s an attempt needs
    const [result] = await releaseLocks(
      locks(1),
      deps(gateway, clock, () => 7000 - clock.time),
      options,
    );
    expect(result).toMatchObject({ outcome: 'released', attempts: 2 });
    expect(clock.sleeps).toEqual([1000]);
  });

  it('names the last error when it runs out of time after a timeout (no HTTP status to report)', async () => {
    const clock = new FakeClock();
    const gateway = new FakeGateway(() => {
      clock.time += 5000;
      return timedOut;
    });
    const [result] = await releaseLocks(
      locks(1),
      deps(gateway, clock, () => 12_000 - clock.time),
      options,
    );
    expect(result).toMatchObject({ outcome: 'failed', attempts: 2 });
    expect(result?.error).toStrictEqual({
      kind: 'deadline',
      message:
        'stopped after 2 attempt(s): too little time left before the Lambda deadline; last error: timed out',
    });
  });
});

describe('authentication refusals (README, "Authentication failures")', () => {
  it('re-reads credentials after a refusal and retries the lock with them', async () => {
    let rotated = false;
    const gateway = new FakeGateway(() => (rotated ? released : refused(1)));
    gateway.refreshCredentials = (version) => {
      gateway.refreshes.push(version);
      rotated = true;
      return Promise.resolve(true);
    };
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toMatchObject({ outcome: 'released', attempts: 2 });
    expect(gateway.refreshes).toEqual([1]);
  });

  it('retries the refused lock once even when the re-read finds nothing new', async () => {
    const gateway = new FakeGateway((_, attempt) => (attempt === 1 ? refused(3) : released));
    gateway.refreshAnswer = false;
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toEqual({ lockId: 'lock-0', userId: 'user-1', outcome: 'released', attempts: 2 });
    expect(gateway.refreshes).toEqual([3]);
  });

  it('fails a lock refused again after the re-read as auth, after two requests', async () => {
    const gateway = new FakeGateway(() => refused());
    gateway.refreshAnswer = false;
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result).toEqual({
      lockId: 'lock-0',
      userId: 'user-1',
      outcome: 'failed',
      attempts: 2,
      error: { kind: 'auth', httpStatus: 401, code: 'APIGW.0301', message: 'rejected' },
    });
    expect(gateway.calls).toHaveLength(2);
  });

  it.each([
    [0, 1],
    [0, 8],
    [7, 1],
    [7, 8],
    [19, 8],
  ])(
    'one lock refused for itself (lock-%i, concurrency %i): it alone fails, the other 19 are released',
    async (refusedIndex, concurrency) => {
      const gateway = new FakeGateway((lock) =>
        lock.lockId === `lock-${refusedIndex}` ? refused() : released,
      );
      gateway.refreshAnswer = false;
      const results = await releaseLocks(locks(20), deps(gateway), { ...options, concurrency });
      const refusedLock = `lock-${refusedIndex}`;
      expect(byId(results, refusedLock)).toMatchObject({
        outcome: 'failed',
        attempts: 2,
        error: { kind: 'auth' },
      });
      const others = results.filter((r) => r.lockId !== refusedLock);
      expect(others).toHaveLength(19);
      expect(others.every((r) => r.outcome === 'released' && r.attempts === 1)).toBe(true);
      expect(gateway.refreshes).toEqual([1]);
    },
  );

  it('locks refused for themselves, with releases between them, fail alone', async () => {
    const gateway = new FakeGateway((lock) =>
      ['lock-2', 'lock-5'].includes(lock.lockId) ? refused() : released,
    );
    gateway.refreshAnswer = false;
    const results = await releaseLocks(locks(10), deps(gateway), { ...options, concurrency: 1 });
    expect(results.map((r) => [r.outcome, r.attempts])).toEqual([
      ['released', 1],
      ['released', 1],
      ['failed', 2],
      ['released', 1],
      ['released', 1],
      ['failed', 2],
      ['released', 1],
      ['released', 1],
      ['released', 1],
      ['released', 1],
    ]);
  });

  it.each([
    [1, true],
    [8, true],
    [1, false],
    [8, false],
  ])(
    'wrong credentials (concurrency %i, re-read finds new ones: %s): three requests and one re-read for 100 locks',
    async (concurrency, refreshAnswer) => {
      const gateway = new FakeGateway(() => refused());
      gateway.refreshAnswer = refreshAnswer;
      const results = await releaseLocks(locks(100), deps(gateway), { ...options, concurrency });
      expect(results.every((r) => r.outcome === 'failed' && r.error?.kind === 'auth')).toBe(true);
      // the first lock and its retry after the re-read, then a second lock refused too: the rest fail fast
      expect(gateway.calls.map((c) => c.lockId)).toEqual(['lock-0', 'lock-0', 'lock-1']);
      expect(results.map((r) => r.attempts).slice(0, 3)).toEqual([2, 1, 0]);
      expect(gateway.refreshes).toEqual([1]);
      expect(gateway.maxInFlight).toBe(1);
    },
  );

  it.each([1, 8])(
    'RELEASE_MAX_ATTEMPTS=1 keeps both safeguards: wrong credentials on 50 locks (concurrency %i)',
    async (concurrency) => {
      const gateway = new FakeGateway(() => refused());
      gateway.refreshAnswer = false;
      const results = await releaseLocks(locks(50), deps(gateway), {
        ...options,
        maxAttempts: 1,
        concurrency,
      });
      expect(results.every((r) => r.error?.kind === 'auth')).toBe(true);
      expect(gateway.calls.length).toBeLessThanOrEqual(3);
      expect(gateway.refreshes.length).toBeGreaterThanOrEqual(1);
    },
  );

  it('RELEASE_MAX_ATTEMPTS=1: rotated credentials still release the refused lock on its retry', async () => {
    let rotated = false;
    const gateway = new FakeGateway(() => (rotated ? released : refused()));
    gateway.refreshCredentials = () => {
      rotated = true;
      return Promise.resolve(true);
    };
    const [result] = await releaseLocks(locks(1), deps(gateway), { ...options, maxAttempts: 1 });
    expect(result).toMatchObject({ outcome: 'released', attempts: 2 });
  });

  it('the retry after a re-read is not counted against maxAttempts; the retryable ones still are', async () => {
    const answers = [retryable(503), refused(), retryable(503), retryable(503), released];
    const gateway = new FakeGateway((_, attempt) => answers[attempt - 1] ?? released);
    const clock = new FakeClock();
    const [result] = await releaseLocks(
      locks(1),
      { ...deps(gateway, clock), random: () => 0.999 },
      { ...options, maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000 },
    );
    // three counted attempts (503, 503, 503) and the one retry after the refusal
    expect(result).toMatchObject({ outcome: 'failed', attempts: 4, error: { kind: 'retryable' } });
    // the backoff grows with the counted attempts: 100 and 200 ms caps
    expect(clock.sleeps).toEqual([99, 199]);
  });

  it('retries each lock refused while the credentials rotated under requests in flight', async () => {
    let rotated = false;
    let calls = 0;
    const gateway = new FakeGateway(() => {
      calls += 1;
      // the first request passes; the next four, in flight together, meet revoked credentials
      if (calls === 1 || rotated) return released;
      return refused(1);
    });
    gateway.refreshCredentials = (version) => {
      gateway.refreshes.push(version);
      return new Promise((resolve) =>
        setImmediate(() => {
          rotated = true;
          resolve(true);
        }),
      );
    };
    const results = await releaseLocks(locks(8), deps(gateway), { ...options, concurrency: 4 });
    expect(results.every((r) => r.outcome === 'released')).toBe(true);
    expect(results.map((r) => r.attempts)).toEqual([1, 2, 2, 2, 2, 1, 1, 1]);
  });

  it('refusals after a timeout opened the gate are each retried once (a timeout authenticates nothing)', async () => {
    let rotated = false;
    const gateway = new FakeGateway((lock, attempt) => {
      if (lock.lockId === 'lock-0' && attempt === 1) return timedOut;
      return rotated ? released : refused();
    });
    gateway.refreshCredentials = (version) => {
      gateway.refreshes.push(version);
      return new Promise((resolve) =>
        setImmediate(() => {
          rotated = true;
          resolve(true);
        }),
      );
    };
    const results = await releaseLocks(locks(4), deps(gateway), { ...options, concurrency: 4 });
    expect(results.every((r) => r.outcome === 'released')).toBe(true);
  });

  it('timeouts between refusals do not hide wrong credentials', async () => {
    // every request that reaches KooDrive is refused; lock-1's first attempt times out on the way
    const gateway = new FakeGateway((lock, attempt) =>
      lock.lockId === 'lock-1' && attempt === 1 ? timedOut : refused(),
    );
    gateway.refreshAnswer = false;
    const results = await releaseLocks(locks(30), deps(gateway), { ...options, concurrency: 1 });
    expect(results.every((r) => r.outcome === 'failed' && r.error?.kind === 'auth')).toBe(true);
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['lock-0', 'lock-0', 'lock-1', 'lock-1']);
  });

  it('until a request is authenticated, one request at a time; then the full concurrency', async () => {
    const gateway = new FakeGateway((lock, attempt) =>
      lock.lockId === 'lock-0' && attempt === 1 ? refused() : released,
    );
    gateway.refreshAnswer = false;
    const results = await releaseLocks(locks(40), deps(gateway), { ...options, concurrency: 8 });
    expect(results.every((r) => r.outcome === 'released')).toBe(true);
    expect(gateway.calls.slice(0, 2).map((c) => c.lockId)).toEqual(['lock-0', 'lock-0']);
    expect(gateway.maxInFlight).toBe(8);
  });

  it('any answer but a refusal ends the probe: the others do not wait for a lock that keeps failing', async () => {
    const gateway = new FakeGateway((lock) => (lock.lockId === 'lock-0' ? retryable(503) : released));
    const results = await releaseLocks(locks(6), deps(gateway), { ...options, concurrency: 4 });
    expect(byId(results, 'lock-0')).toMatchObject({ outcome: 'failed', attempts: 4 });
    // lock-0's first 503 let the other workers start before its own retries
    expect(gateway.calls[1]?.lockId).not.toBe('lock-0');
    expect(gateway.maxInFlight).toBeGreaterThan(1);
  });

  it('a refusal and a later answer that is not one (here a 400) keep the locks between them apart', async () => {
    const gateway = new FakeGateway((lock) => {
      if (lock.lockId === 'lock-0' || lock.lockId === 'lock-2') return refused();
      if (lock.lockId === 'lock-1') {
        return {
          ok: false,
          error: { kind: 'permanent', httpStatus: 400, message: 'parameter check failed' },
        };
      }
      return released;
    });
    gateway.refreshAnswer = false;
    const results = await releaseLocks(locks(6), deps(gateway), { ...options, concurrency: 1 });
    // the 400 shows the credentials authenticated: lock-2's refusals are its own, and it gets its retry
    expect(results.map((r) => [r.error?.kind ?? r.outcome, r.attempts])).toEqual([
      ['auth', 2],
      ['permanent', 1],
      ['auth', 2],
      ['released', 1],
      ['released', 1],
      ['released', 1],
    ]);
  });

  it('a lock already failing for lack of time is reported as deadline, not retried after a refusal', async () => {
    const clock = new FakeClock();
    const gateway = new FakeGateway(() => {
      clock.time += 5000;
      return refused();
    });
    const [result] = await releaseLocks(
      locks(1),
      deps(gateway, clock, () => 8000 - clock.time),
      options,
    );
    expect(result).toMatchObject({
      outcome: 'failed',
      attempts: 1,
      error: { kind: 'deadline', httpStatus: 401, code: 'APIGW.0301' },
    });
  });
});

describe('one lock’s exception never fails the invocation', () => {
  it('a lock whose release throws fails alone as retryable; every other lock keeps its outcome', async () => {
    const gateway = new FakeGateway((lock) => {
      if (lock.lockId === 'lock-5') throw new TypeError('boom');
      return released;
    });
    const results = await releaseLocks(locks(20), deps(gateway), { ...options, concurrency: 4 });
    expect(results).toHaveLength(20);
    expect(byId(results, 'lock-5')).toEqual({
      lockId: 'lock-5',
      userId: 'user-1',
      outcome: 'failed',
      attempts: 1,
      error: { kind: 'retryable', message: 'not released: TypeError: boom (attempt 1)' },
    });
    expect(results.filter((r) => r.outcome === 'released')).toHaveLength(19);
  });

  it('a thrown value that is not an Error is named too', async () => {
    const gateway = new FakeGateway(() => {
      throw 'socket gone'; // eslint-disable-line @typescript-eslint/only-throw-error
    });
    const [result] = await releaseLocks(locks(1), deps(gateway), options);
    expect(result?.error).toEqual({ kind: 'retryable', message: 'not released: socket gone (attempt 1)' });
  });

  it('a re-read that throws counts as one that found nothing: the lock is still retried once', async () => {
    const gateway = new FakeGateway((_, attempt) => (attempt === 1 ? refused() : released));
    gateway.refreshCredentials = () => Promise.reject(new Error('Secrets Manager unreachable'));
    const results = await releaseLocks(locks(3), deps(gateway), options);
    expect(results.map((r) => [r.outcome, r.attempts])).toEqual([
      ['released', 2],
      ['released', 2],
      ['released', 2],
    ]);
  });

  it('observers that throw change no outcome', async () => {
    const results = await releaseLocks(
      locks(3),
      {
        ...deps(new FakeGateway()),
        onResult: () => {
          throw new Error('logger broke');
        },
        recorder: { record: () => Promise.reject(new Error('table gone')) },
        onRecordError: () => {
          throw new Error('logger broke too');
        },
      },
      options,
    );
    expect(results.map((r) => r.outcome)).toEqual(['released', 'released', 'released']);
  });
});

describe('observers and the ledger', () => {
  it('tells onResult of every final outcome', async () => {
    const told: LockResult[] = [];
    const gateway = new FakeGateway((lock) => (lock.lockId === 'lock-1' ? retryable(400) : released));
    const results = await releaseLocks(
      locks(3),
      { ...deps(gateway), onResult: (r) => told.push(r) },
      { ...options, maxAttempts: 1 },
    );
    expect(told).toHaveLength(3);
    expect(new Set(told)).toEqual(new Set(results));
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

  it('writes with at most `concurrency` writers, and every outcome once', async () => {
    let writing = 0;
    let maxWriting = 0;
    const recorded: string[] = [];
    const recorder = {
      record: async (result: LockResult) => {
        writing += 1;
        maxWriting = Math.max(maxWriting, writing);
        await new Promise((resolve) => setTimeout(resolve, 2));
        recorded.push(result.lockId);
        writing -= 1;
      },
    };
    await releaseLocks(locks(30), { ...deps(new FakeGateway()), recorder }, { ...options, concurrency: 3 });
    expect(maxWriting).toBe(3);
    expect(recorded.sort()).toEqual(
      locks(30)
        .map((l) => l.lockId)
        .sort(),
    );
  });

  it('without a recorder, records nothing and reports no recording error', async () => {
    const failures: unknown[] = [];
    const results = await releaseLocks(
      locks(2),
      { ...deps(new FakeGateway()), onRecordError: (_, error) => failures.push(error) },
      options,
    );
    expect(results.map((r) => r.outcome)).toEqual(['released', 'released']);
    expect(failures).toEqual([]);
  });

  it('keeps the outcome when recording it fails, and says so', async () => {
    const failures: string[] = [];
    const results = await releaseLocks(
      locks(2),
      {
        ...deps(new FakeGateway()),
        recorder: { record: () => Promise.reject(new Error('table gone')) },
        onRecordError: (result, error) => failures.push(`${result.lockId}: ${(error as Error).message}`),
      },
      options,
    );
    expect(results.map((r) => r.outcome)).toEqual(['released', 'released']);
    expect(failures).toEqual(['lock-0: table gone', 'lock-1: table gone']);
  });
});

describe('mapConcurrently', () => {
  it('keeps input order whatever order the calls finish in, and passes each index', async () => {
    const out = await mapConcurrently([30, 10, 20], 3, async (ms, i) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return `${i}:${ms}`;
    });
    expect(out).toEqual(['0:30', '1:10', '2:20']);
  });

  it('starts no more workers than items', async () => {
    let started = 0;
    await mapConcurrently([1, 2], 8, (x) => {
      started += 1;
      return Promise.resolve(x);
    });
    expect(started).toBe(2);
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

describe('the live-lease check (the release path decides from the ledger)', () => {
  const policy = { staleAfterSeconds: 900, clockSkewSeconds: 10 };
  const NOW = 1_700_000_000_000;
  const item = (lockId: string, overrides: Partial<LedgerItem> = {}): LedgerItem => ({
    lockId,
    userId: 'user-1',
    status: 'HELD',
    holder: 'w-1',
    acquiredAt: NOW - 600_000,
    heartbeatAt: NOW - 20_000,
    leaseSeconds: 120,
    releaseAttempts: 0,
    version: 4,
    ...overrides,
  });
  /** A recorder that keeps what it was given, with the basis. */
  const recording = () => {
    const calls: Array<[LockResult, ReleaseBasis | undefined]> = [];
    return {
      calls,
      recorder: { record: (r: LockResult, b?: ReleaseBasis) => Promise.resolve(void calls.push([r, b])) },
    };
  };

  it('a live lock is `held` with holder and lease left: no KooDrive call, no outcome write; the others are released on the version read', async () => {
    const memory = memoryLedger([item('lock-0'), item('lock-1', { heartbeatAt: NOW - 131_000 })], () => NOW);
    const gateway = new FakeGateway();
    const { calls, recorder } = recording();
    const heard: LockResult[] = [];
    const results = await releaseLocks(
      locks(3),
      {
        ...deps(gateway, new FakeClock(NOW)),
        recorder,
        onResult: (r) => heard.push(r),
        liveLeases: { ledger: memory, policy, force: false },
      },
      options,
    );
    expect(results).toEqual([
      {
        lockId: 'lock-0',
        userId: 'user-1',
        outcome: 'held',
        attempts: 0,
        status: 'HELD',
        holder: 'w-1',
        leaseLeftSeconds: 110,
      },
      { lockId: 'lock-1', userId: 'user-1', outcome: 'released', attempts: 1 },
      { lockId: 'lock-2', userId: 'user-1', outcome: 'released', attempts: 1 },
    ]);
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['lock-1', 'lock-2']);
    expect(calls).toEqual([
      [results[1], { read: 4, forced: false }],
      [results[2], { read: 'absent', forced: false }],
    ]);
    expect(heard).toEqual(results);
  });

  it('judges the lease at the time the read was sent, not when its answer came back late', async () => {
    // The item read shows a heartbeat 100 s old: live at the read's time (lease 120 s + skew 10 s). The answer
    // arrives 40 s later, when that heartbeat is 140 s old; the holder may have heart-beaten meanwhile.
    const clock = new FakeClock(NOW);
    const memory = memoryLedger([item('lock-0', { heartbeatAt: NOW - 100_000 })], () => NOW);
    const slow = {
      readItems: async (lockIds: readonly string[]) => {
        const readings = await memory.readItems(lockIds);
        clock.time += 40_000;
        return readings;
      },
    };
    const gateway = new FakeGateway();
    const { calls, recorder } = recording();
    const results = await releaseLocks(
      locks(1),
      { ...deps(gateway, clock), recorder, liveLeases: { ledger: slow, policy, force: false } },
      options,
    );
    expect(results).toEqual([
      {
        lockId: 'lock-0',
        userId: 'user-1',
        outcome: 'held',
        attempts: 0,
        status: 'HELD',
        holder: 'w-1',
        leaseLeftSeconds: 30,
      },
    ]);
    expect(gateway.calls).toEqual([]);
    expect(calls).toEqual([]);
  });

  it('with force, the live lock is released too, and the write says forced', async () => {
    const memory = memoryLedger([item('lock-0')], () => NOW);
    const gateway = new FakeGateway();
    const { calls, recorder } = recording();
    const results = await releaseLocks(
      locks(1),
      { ...deps(gateway, new FakeClock(NOW)), recorder, liveLeases: { ledger: memory, policy, force: true } },
      options,
    );
    expect(results).toEqual([{ lockId: 'lock-0', userId: 'user-1', outcome: 'released', attempts: 1 }]);
    expect(calls).toEqual([[results[0], { read: 4, forced: true }]]);
  });

  it('a lock whose item cannot be read is not released (retryable) and not recorded, unless forced', async () => {
    const broken = {
      readItems: () => Promise.reject(new Error('ProvisionedThroughputExceededException: slow down')),
    };
    const gateway = new FakeGateway();
    const { calls, recorder } = recording();
    const results = await releaseLocks(
      locks(1),
      { ...deps(gateway), recorder, liveLeases: { ledger: broken, policy, force: false } },
      options,
    );
    expect(results).toEqual([
      {
        lockId: 'lock-0',
        userId: 'user-1',
        outcome: 'failed',
        attempts: 0,
        error: {
          kind: 'retryable',
          message:
            'not released: its ledger item could not be read, so its lease cannot be checked (Error: ProvisionedThroughputExceededException: slow down); "force": true releases it anyway',
        },
      },
    ]);
    expect(gateway.calls).toEqual([]);
    expect(calls).toEqual([]);

    const forced = await releaseLocks(
      locks(1),
      { ...deps(gateway), recorder, liveLeases: { ledger: broken, policy, force: true } },
      options,
    );
    expect(forced[0]).toMatchObject({ outcome: 'released' });
    expect(calls).toEqual([[forced[0], { read: 'unread', forced: true }]]);
  });

  it('a failed DELETE of a dead lock is recorded on the version read; the live item of a holder is never written', async () => {
    const memory = memoryLedger([item('lock-0', { heartbeatAt: NOW - 131_000 })], () => NOW);
    const gateway = new FakeGateway(() => ({
      ok: false,
      error: { kind: 'permanent', httpStatus: 400, message: 'no' },
    }));
    const results = await releaseLocks(
      locks(1),
      {
        ...deps(gateway, new FakeClock(NOW)),
        recorder: memory,
        liveLeases: { ledger: memory, policy, force: false },
      },
      options,
    );
    expect(results[0]).toMatchObject({ outcome: 'failed', attempts: 1 });
    expect(memory.items.get('lock-0')).toMatchObject({
      status: 'RELEASE_FAILED',
      version: 5,
      heartbeatAt: NOW - 131_000,
    });
  });

  it('the read needs its own time before the deadline: without it the lock is not attempted, read or recorded', async () => {
    let reads = 0;
    const counting = {
      readItems: (ids: readonly string[]) => {
        reads += 1;
        return Promise.resolve(new Map(ids.map((id) => [id, { ok: true as const, item: undefined }])));
      },
    };
    const gateway = new FakeGateway();
    const { calls, recorder } = recording();
    const reserve = options.attemptTimeoutMs + options.safetyMarginMs;
    const results = await releaseLocks(
      locks(1),
      {
        ...deps(gateway, new FakeClock(), () => reserve + 499),
        recorder,
        liveLeases: { ledger: counting, policy, force: false },
      },
      { ...options, recordReserveMs: 250 },
    );
    expect(results[0]).toMatchObject({ outcome: 'failed', attempts: 0, error: { kind: 'deadline' } });
    expect([reads, gateway.calls.length, calls.length]).toEqual([0, 0, 0]);
    await releaseLocks(
      locks(1),
      {
        ...deps(gateway, new FakeClock(), () => reserve + 500),
        recorder,
        liveLeases: { ledger: counting, policy, force: false },
      },
      { ...options, recordReserveMs: 250 },
    );
    expect([reads, gateway.calls.length]).toEqual([1, 1]);
  });
  /** A ledger that answers from `memory` and keeps each readItems call's IDs and how many DELETEs preceded it. */
  const readLog = (memory: ReturnType<typeof memoryLedger>, gateway: FakeGateway) => {
    const reads: Array<{ lockIds: string[]; deletesBefore: number }> = [];
    return {
      reads,
      ledger: {
        readItems: (lockIds: readonly string[]) => {
          reads.push({ lockIds: [...lockIds], deletesBefore: gateway.calls.length });
          return memory.readItems(lockIds);
        },
      },
    };
  };

  it('an SQS batch of 10 reads its leases in one request, before the first DELETE', async () => {
    const gateway = new FakeGateway();
    const { reads, ledger } = readLog(
      memoryLedger([], () => NOW),
      gateway,
    );
    const results = await releaseLocks(
      locks(10),
      { ...deps(gateway, new FakeClock(NOW)), liveLeases: { ledger, policy, force: false } },
      options,
    );
    expect(results.map((r) => r.outcome)).toEqual(Array(10).fill('released'));
    expect(reads).toEqual([{ lockIds: locks(10).map((l) => l.lockId), deletesBefore: 0 }]);
  });

  it('reads 100 locks a request, each chunk when the workers reach it, not all up front', async () => {
    const gateway = new FakeGateway();
    const { reads, ledger } = readLog(
      memoryLedger([], () => NOW),
      gateway,
    );
    const input = locks(250);
    const results = await releaseLocks(
      input,
      { ...deps(gateway, new FakeClock(NOW)), liveLeases: { ledger, policy, force: false } },
      { ...options, concurrency: 8 },
    );
    expect(results.every((r) => r.outcome === 'released')).toBe(true);
    expect(reads.map((r) => r.lockIds)).toEqual([
      input.slice(0, 100).map((l) => l.lockId),
      input.slice(100, 200).map((l) => l.lockId),
      input.slice(200).map((l) => l.lockId),
    ]);
    // A chunk is read when its first lock is taken: after the DELETEs of every lock before it were sent.
    expect(reads.map((r) => r.deletesBefore)).toEqual([0, 100, 200]);
  });

  it('a lock left unread by the batch read is refused alone (retryable) unless forced; the others are decided as read', async () => {
    const memory = memoryLedger([item('lock-0'), item('lock-2', { heartbeatAt: NOW - 131_000 })], () => NOW);
    const partial = {
      readItems: async (lockIds: readonly string[]) => {
        const readings = await memory.readItems(lockIds);
        readings.set('lock-1', {
          ok: false,
          message: 'BatchGetItem left 1 keys unprocessed after 3 retries',
        });
        return readings;
      },
    };
    const run = (force: boolean, gateway: FakeGateway) =>
      releaseLocks(
        locks(3),
        { ...deps(gateway, new FakeClock(NOW)), liveLeases: { ledger: partial, policy, force } },
        options,
      );
    const gateway = new FakeGateway();
    const results = await run(false, gateway);
    expect(results.map((r) => [r.outcome, r.error?.kind])).toEqual([
      ['held', undefined],
      ['failed', 'retryable'],
      ['released', undefined],
    ]);
    expect(results[1]?.error?.message).toContain(
      'its ledger item could not be read, so its lease cannot be checked (BatchGetItem left 1 keys unprocessed after 3 retries)',
    );
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['lock-2']);
    const forced = await run(true, new FakeGateway());
    expect(forced.map((r) => r.outcome)).toEqual(['released', 'released', 'released']);
  });

  it('each lock is decided at the time its chunk was read, never later: a lease live then stays `held` with the lease left then', async () => {
    // lock-1's lease has 10 s left at the read; lock-0's DELETE takes 60 s of the clock before lock-1's turn.
    const memory = memoryLedger([item('lock-1', { heartbeatAt: NOW - 120_000 })], () => NOW);
    const clock = new FakeClock(NOW);
    const gateway = new FakeGateway(async (lock) => {
      if (lock.lockId === 'lock-0') await clock.sleep(60_000);
      return released;
    });
    const results = await releaseLocks(
      locks(2),
      { ...deps(gateway, clock), liveLeases: { ledger: memory, policy, force: false } },
      { ...options, concurrency: 1 },
    );
    expect(results.map((r) => r.outcome)).toEqual(['released', 'held']);
    expect(results[1]).toMatchObject({ leaseLeftSeconds: 10 });
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['lock-0']);
  });

  it('one reading per lock ID: two users’ locks with the same ID are both decided on it', async () => {
    const gateway = new FakeGateway();
    const { reads, ledger } = readLog(
      memoryLedger([item('same')], () => NOW),
      gateway,
    );
    const results = await releaseLocks(
      [
        { lockId: 'same', userId: 'user-1' },
        { lockId: 'same', userId: 'user-2' },
      ],
      { ...deps(gateway, new FakeClock(NOW)), liveLeases: { ledger, policy, force: false } },
      options,
    );
    expect(results.map((r) => r.outcome)).toEqual(['held', 'held']);
    expect(reads).toHaveLength(1);
  });
});
