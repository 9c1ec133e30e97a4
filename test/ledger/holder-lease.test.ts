/**
 * LockHolder.hold() on a virtual clock: the heartbeat order, the safe time (lost by time, also after a pause
 * before any timer ran), a lost lease by ledger conflict, bounded calls, retries, the release when work settles,
 * timers, and the configuration refusal. The ports are small recording fakes written here; the expected times
 * are worked out by hand from the README's formula (safe time = lease − skew − margin, margin = 5 % of the lease
 * within 0.25–2 s).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockLostError } from '../../src/core/errors';
import type { AcquiredLock, HolderLedger, LedgerItem } from '../../src/core/lease';
import type { AttemptOutcome, Clock, LockError, LockRef, LockResult, Timer } from '../../src/core/model';
import {
  AcquireAbortedError,
  HolderTimeoutError,
  KooDriveLockError,
  LockHolder,
  type KooDriveLocks,
  type Lease,
  type LockHolderOptions,
} from '../../src/ledger/holder';
import { ConfigError } from '../../src/core/errors';
import { certainlyExpiredAt, judge } from '../../src/core/lease';
import { DEFAULT_ENGINE_OPTIONS } from '../../src/core/engine';
import { sweep } from '../../src/core/sweep';
import { MemoryLedger } from '../../src/testing/memory-ledger';

const NOW = Date.UTC(2025, 0, 1);

/** A manual clock: time moves only when the test says; `pause` moves it without running any timer. */
class VirtualClock implements Clock {
  private mono = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return NOW + this.mono;
  }
  monotonic(): number {
    return this.mono;
  }
  setTimer(ms: number, fn: () => void): Timer {
    const id = (this.seq += 1);
    this.timers.set(id, { at: this.mono + Math.max(0, ms), fn });
    return { cancel: () => void this.timers.delete(id) };
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(ms, resolve));
  }
  /** Timers armed and not yet fired or cancelled. */
  get pending(): number {
    return this.timers.size;
  }
  /** A pause (GC, a frozen container): time passes, nothing runs. */
  pause(ms: number): void {
    this.mono += ms;
  }
  /** Runs every timer due within `ms`, in time order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.mono + ms;
    await flush();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) {
        if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.mono = Math.max(this.mono, next[1].at);
      next[1].fn();
      await flush();
    }
    this.mono = end;
    await flush();
  }
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Step = 'ok' | 'error' | 'hang' | { deferred: Promise<void> };

/** The ledger port in memory, with the port's conditions, logging each call at the monotonic time it starts. */
class FakeLedger implements HolderLedger {
  items = new Map<string, LedgerItem>();
  /** What the next heartbeats do (then 'ok'). */
  heartbeats: Step[] = [];
  acquired: Step = 'ok';
  released: Step = 'ok';
  recorded: LockResult[] = [];
  heartbeatArgs: unknown[][] = [];

  constructor(
    private readonly clock: VirtualClock,
    private readonly log: string[],
  ) {}

  async recordAcquired(lock: AcquiredLock): Promise<LedgerItem> {
    this.log.push(`${this.clock.monotonic()} ledger acquire ${lock.lockId}`);
    await this.step(this.acquired);
    const item: LedgerItem = {
      ...lock,
      status: 'HELD',
      acquiredAt: this.clock.now(),
      heartbeatAt: this.clock.now(),
      releaseAttempts: 0,
      version: 1,
    };
    this.items.set(lock.lockId, item);
    return item;
  }

  async recordHeartbeat(lockId: string, holder: string | undefined, leaseSeconds: number): Promise<number> {
    this.log.push(`${this.clock.monotonic()} ledger heartbeat ${lockId}`);
    this.heartbeatArgs.push([lockId, holder, leaseSeconds]);
    await this.step(this.heartbeats.shift() ?? 'ok');
    const item = this.items.get(lockId);
    if (!item || item.status !== 'HELD' || item.holder !== holder) {
      throw new LockLostError(lockId, item?.status, `its ledger status is ${item?.status ?? 'absent'}`);
    }
    item.heartbeatAt = this.clock.now();
    item.version += 1;
    return item.heartbeatAt;
  }

  async recordReleased(lockId: string): Promise<void> {
    this.log.push(`${this.clock.monotonic()} ledger released ${lockId}`);
    await this.step(this.released);
    const item = this.items.get(lockId);
    if (item) item.status = 'RELEASED';
  }

  record(result: LockResult): Promise<void> {
    this.log.push(`${this.clock.monotonic()} ledger record ${result.lockId} ${result.outcome}`);
    this.recorded.push(result);
    const item = this.items.get(result.lockId);
    if (item && result.outcome === 'failed') item.status = 'RELEASE_FAILED';
    return Promise.resolve();
  }

  /** A sweep's claim, as the sweep would write it. */
  claim(lockId: string): void {
    const item = this.items.get(lockId);
    if (!item) throw new Error(`no item ${lockId}`);
    item.status = 'RELEASING';
  }

  private async step(step: Step): Promise<void> {
    if (step === 'error') throw new Error('ProvisionedThroughputExceededException');
    if (step === 'hang') return new Promise(() => {});
    if (typeof step === 'object') return step.deferred;
  }
}

/** KooDrive's lock calls in memory, logged; `renewals`/`releases` script the next answers (then success). */
class FakeKooDrive implements KooDriveLocks {
  held = new Set<string>();
  /** A promise: the renew is answered (success) when it resolves. */
  renewals: (LockError | 'hang' | Promise<void>)[] = [];
  releases: LockError[] = [];
  private next = 0;

  constructor(
    private readonly clock: VirtualClock,
    private readonly log: string[],
  ) {}

  createLock(userId: string, moduleCode: string) {
    const lockId = `lock-${(this.next += 1)}`;
    this.log.push(`${this.clock.monotonic()} koodrive create ${userId} ${moduleCode}`);
    this.held.add(lockId);
    return Promise.resolve({ ok: true as const, lockId });
  }

  renewLock(lock: LockRef) {
    this.log.push(`${this.clock.monotonic()} koodrive renew ${lock.lockId}`);
    const answer = this.renewals.shift();
    if (answer === 'hang') return new Promise<never>(() => {});
    if (answer instanceof Promise) {
      return answer.then(() => {
        this.log.push(`${this.clock.monotonic()} koodrive renewed ${lock.lockId}`);
        return { ok: true as const };
      });
    }
    return Promise.resolve(answer ? { ok: false as const, error: answer } : { ok: true as const });
  }

  releaseLock(lock: LockRef): Promise<AttemptOutcome> {
    this.log.push(`${this.clock.monotonic()} koodrive release ${lock.lockId}`);
    const error = this.releases.shift();
    if (error) return Promise.resolve({ ok: false, error });
    return Promise.resolve({
      ok: true,
      outcome: this.held.delete(lock.lockId) ? 'released' : 'alreadyReleased',
    });
  }
}

const BUSY: LockError = { kind: 'retryable', httpStatus: 503, message: 'busy' };

let clock: VirtualClock;
let log: string[];
let ledger: FakeLedger;
let koodrive: FakeKooDrive;
let unhandled: unknown[];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeEach(() => {
  clock = new VirtualClock();
  log = [];
  ledger = new FakeLedger(clock, log);
  koodrive = new FakeKooDrive(clock, log);
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  await flush();
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

function makeHolder(options: Partial<LockHolderOptions> = {}): LockHolder {
  return new LockHolder({
    name: 'worker-1',
    leaseSeconds: 30,
    heartbeatSeconds: 10,
    clockSkewSeconds: 2,
    koodrive,
    ledger,
    clock,
    random: () => 0.5,
    ...options,
  });
}

/** Starts hold() with work that waits for the test; resolves with the lease once work runs. */
async function start(holder: LockHolder) {
  const leaseTaken = deferred<Lease>();
  const finish = deferred<string>();
  const result = holder.hold('user-1', '100', (lease) => {
    leaseTaken.resolve(lease);
    return finish.promise;
  });
  result.catch(() => {}); // the tests await it where they expect a rejection
  return { lease: await leaseTaken.promise, finish, result };
}

/** The lease is lost: assertHeld throws LockLostError and the signal carries the same error. */
function expectLost(lease: Lease): LockLostError {
  let thrown: unknown;
  try {
    lease.assertHeld();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(LockLostError);
  expect(lease.signal.aborted).toBe(true);
  expect(lease.signal.reason).toBe(thrown);
  return thrown as LockLostError;
}

// lease 30 s, skew 2 s, margin 5 % of 30 s = 1.5 s: safe time 26.5 s.
const SAFE_MS = 26_500;

describe('hold: heart-beating', () => {
  it('writes the ledger, then renews KooDrive, every heartbeatSeconds; releases when work settles', async () => {
    const { lease, finish, result } = await start(makeHolder());
    expect(lease).toMatchObject({ lockId: 'lock-1', userId: 'user-1', moduleCode: '100' });
    await clock.advance(25_000);
    lease.assertHeld();
    finish.resolve('done');
    await expect(result).resolves.toBe('done');
    expect(log).toEqual([
      '0 koodrive create user-1 100',
      '0 ledger acquire lock-1',
      '10000 ledger heartbeat lock-1',
      '10000 koodrive renew lock-1',
      '20000 ledger heartbeat lock-1',
      '20000 koodrive renew lock-1',
      '25000 koodrive release lock-1',
      '25000 ledger released lock-1',
    ]);
    expect(ledger.items.get('lock-1')).toMatchObject({ status: 'RELEASED', holder: 'worker-1' });
    expect(ledger.items.get('lock-1')?.leaseSeconds).toBe(30);
    expect(ledger.heartbeatArgs).toEqual([
      ['lock-1', 'worker-1', 30],
      ['lock-1', 'worker-1', 30],
    ]);
    expect(koodrive.held.size).toBe(0);
  });

  it('keeps the lease for as long as work runs (ten minutes, past KooDrive’s own expiry)', async () => {
    const { lease, finish, result } = await start(makeHolder());
    await clock.advance(10 * 60_000 + 5000);
    lease.assertHeld();
    expect(lease.signal.aborted).toBe(false);
    expect(log.filter((line) => line.includes('renew'))).toHaveLength(60);
    finish.resolve('ok');
    await result;
  });

  it('heartbeat defaults to a third of the lease', async () => {
    const { finish, result } = await start(makeHolder({ leaseSeconds: 30, heartbeatSeconds: undefined }));
    await clock.advance(21_000);
    expect(log.filter((line) => line.includes('ledger heartbeat'))).toEqual([
      '10000 ledger heartbeat lock-1',
      '20000 ledger heartbeat lock-1',
    ]);
    finish.resolve('ok');
    await result;
  });

  it('retries a failed ledger heartbeat with a small, growing backoff, then renews', async () => {
    ledger.heartbeats = ['error', 'error'];
    const { lease, finish, result } = await start(makeHolder());
    await clock.advance(10_200);
    // random() = 0.5: waits of 0.5 × 100 ms, then 0.5 × 200 ms.
    expect(log.slice(2)).toEqual([
      '10000 ledger heartbeat lock-1',
      '10050 ledger heartbeat lock-1',
      '10150 ledger heartbeat lock-1',
      '10150 koodrive renew lock-1',
    ]);
    // The lease now runs from the start of the successful write.
    clock.pause(10_150 + SAFE_MS - 1 - clock.monotonic());
    lease.assertHeld();
    finish.resolve('ok');
    await result;
  });

  it('a failed renew is retried until the next heartbeat, which writes the ledger first again', async () => {
    koodrive.renewals = Array.from({ length: 200 }, () => BUSY);
    const { lease, finish, result } = await start(makeHolder());
    await clock.advance(21_000);
    const cycle = log.slice(2);
    expect(cycle[0]).toBe('10000 ledger heartbeat lock-1');
    expect(cycle[1]).toBe('10000 koodrive renew lock-1');
    // Between the two ledger writes only renews, all before the next heartbeat was due at 10 s + 10 s.
    const second = cycle.findIndex((line, i) => i > 0 && line.endsWith('ledger heartbeat lock-1'));
    const renews = cycle.slice(1, second);
    expect(renews.length).toBeGreaterThan(5);
    expect(renews.every((line) => line.endsWith('koodrive renew lock-1'))).toBe(true);
    expect(renews.every((line) => Number(line.split(' ')[0]) < 20_000)).toBe(true);
    // The backoff is capped at 0.5 × 2 s, so the next ledger write comes less than a second late.
    const secondAt = Number(cycle[second]?.split(' ')[0]);
    expect(secondAt).toBeGreaterThanOrEqual(20_000);
    expect(secondAt).toBeLessThanOrEqual(21_000);
    expect(cycle[second + 1]).toBe(`${secondAt} koodrive renew lock-1`);
    lease.assertHeld();
    finish.resolve('ok');
    await result;
  });

  it('a KooDrive lock never renewed is lost 600 s − margin after its creation, however well the ledger goes', async () => {
    koodrive.renewals = Array.from({ length: 100_000 }, () => BUSY);
    // lease 120 s: margin 2 s, KooDrive's lock lasts 600 s from the create.
    const { lease, finish, result } = await start(
      makeHolder({ leaseSeconds: 120, heartbeatSeconds: 40, clockSkewSeconds: 10 }),
    );
    await clock.advance(597_999);
    lease.assertHeld();
    await clock.advance(1);
    expect(expectLost(lease).message).toMatch(/safe time/);
    finish.resolve('ok');
    await result;
  });
});

describe('hold: a lost lease', () => {
  it('a pause past the safe time: assertHeld throws at once, before any timer ran', async () => {
    const { lease, finish, result } = await start(makeHolder());
    clock.pause(SAFE_MS - 1);
    lease.assertHeld();
    expect(lease.signal.aborted).toBe(false);
    clock.pause(1);
    const lost = expectLost(lease);
    expect(lost.lockId).toBe('lock-1');
    expect(lost.status).toBeUndefined();
    expect(lost.message).toContain('26.5 s');
    // The timers that were due during the pause now run: no heartbeat, no renew after the loss.
    await clock.advance(60_000);
    expect(log.slice(2)).toEqual([]);
    finish.resolve('late');
    await expect(result).resolves.toBe('late');
    // Lost by time only: the item is still this holder's, so the holder releases the lock itself.
    expect(log.slice(2)).toEqual(['86500 koodrive release lock-1', '86500 ledger released lock-1']);
  });

  it('the signal aborts at the deadline when the ledger keeps failing, and nothing is renewed', async () => {
    ledger.heartbeats = Array.from({ length: 1000 }, () => 'error' as const);
    const { lease, finish, result } = await start(makeHolder());
    let abortedAt: number | undefined;
    lease.signal.addEventListener('abort', () => (abortedAt = clock.monotonic()));
    await clock.advance(SAFE_MS - 1);
    lease.assertHeld();
    await clock.advance(1);
    expect(abortedAt).toBe(SAFE_MS);
    expectLost(lease);
    await clock.advance(60_000);
    expect(log.some((line) => line.includes('renew'))).toBe(false);
    finish.resolve('ok');
    await result;
  });

  it('a ledger heartbeat that hangs is given up at the deadline; its late success counts for nothing', async () => {
    const late = deferred<void>();
    ledger.heartbeats = [{ deferred: late.promise }];
    const { lease, finish, result } = await start(makeHolder());
    await clock.advance(SAFE_MS);
    expectLost(lease);
    late.resolve();
    await clock.advance(30_000);
    expect(log.slice(2)).toEqual(['10000 ledger heartbeat lock-1']);
    expectLost(lease);
    finish.resolve('ok');
    await result;
  });

  it('a heartbeat that finds the item claimed by a sweep aborts the signal; the sweep releases the lock', async () => {
    const { lease, finish, result } = await start(makeHolder());
    ledger.claim('lock-1');
    await clock.advance(10_000);
    const lost = expectLost(lease);
    expect(lost.status).toBe('RELEASING');
    await clock.advance(60_000);
    finish.resolve('ok');
    await expect(result).resolves.toBe('ok');
    // No renew after the failed ledger write, and no release of a lock the sweep owns now.
    expect(log.slice(2)).toEqual(['10000 ledger heartbeat lock-1']);
    expect(ledger.items.get('lock-1')?.status).toBe('RELEASING');
  });

  it('KooDrive refusing the renewal (the lock is gone) loses the lease; the holder closes its item', async () => {
    koodrive.renewals = [
      { kind: 'permanent', httpStatus: 400, code: '13000309', message: 'lock no longer exists' },
    ];
    const { lease, finish, result } = await start(makeHolder());
    await clock.advance(10_000);
    expect(expectLost(lease).message).toMatch(/KooDrive refused to renew it: lock no longer exists/);
    await clock.advance(30_000);
    finish.resolve('ok');
    await result;
    expect(log.slice(2)).toEqual([
      '10000 ledger heartbeat lock-1',
      '10000 koodrive renew lock-1',
      '40000 koodrive release lock-1',
      '40000 ledger released lock-1',
    ]);
  });
});

describe('hold: which renew failures end the lease', () => {
  it.each([
    ['invalid-input', true],
    ['permanent', true],
    ['auth', false],
    ['retryable', false],
  ] as const)('a renew refused as %s: lease lost %s', async (kind, lost) => {
    koodrive.renewals = [{ kind, message: `refused (${kind})` }];
    const { lease, finish, result } = await start(makeHolder());
    await clock.advance(10_100);
    if (lost) {
      expectLost(lease);
    } else {
      lease.assertHeld();
      // Retried after 0.5 × 100 ms, still before the next heartbeat.
      expect(log.slice(2)).toEqual([
        '10000 ledger heartbeat lock-1',
        '10000 koodrive renew lock-1',
        '10050 koodrive renew lock-1',
      ]);
    }
    finish.resolve('ok');
    await result;
  });
});

describe('hold: when work settles', () => {
  it('rethrows what work threw (also synchronously), after releasing', async () => {
    const holder = makeHolder();
    const boom = new Error('backup failed');
    await expect(
      holder.hold('user-1', '100', () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    await expect(holder.hold('user-1', '101', () => Promise.reject(boom))).rejects.toBe(boom);
    expect(log.filter((line) => line.includes('release'))).toEqual([
      '0 koodrive release lock-1',
      '0 ledger released lock-1',
      '0 koodrive release lock-2',
      '0 ledger released lock-2',
    ]);
  });

  it('a failed release is retried, then left RELEASE_FAILED; hold resolves with work’s value and reports it', async () => {
    koodrive.releases = [BUSY, BUSY, BUSY];
    const reported: [Error, unknown][] = [];
    const holder = makeHolder({ onReleaseError: (error, lock) => reported.push([error, lock]) });
    const result = holder.hold('user-1', '100', () => 'value');
    await clock.advance(1000);
    await expect(result).resolves.toBe('value');
    // Backoff 0.5 × 200 ms, then 0.5 × 400 ms.
    expect(log.slice(2)).toEqual([
      '0 koodrive release lock-1',
      '100 koodrive release lock-1',
      '300 koodrive release lock-1',
      '300 ledger record lock-1 failed',
    ]);
    expect(ledger.recorded).toEqual([
      { lockId: 'lock-1', userId: 'user-1', moduleCode: '100', outcome: 'failed', attempts: 3, error: BUSY },
    ]);
    expect(reported).toHaveLength(1);
    expect(reported[0]?.[0]).toBeInstanceOf(KooDriveLockError);
    expect(reported[0]?.[1]).toEqual({ lockId: 'lock-1', userId: 'user-1', moduleCode: '100' });
  });

  it('a permanent release failure is not retried; work’s own error still wins', async () => {
    koodrive.releases = [{ kind: 'auth', httpStatus: 401, message: 'refused' }];
    const boom = new Error('backup failed');
    await expect(makeHolder().hold('user-1', '100', () => Promise.reject(boom))).rejects.toBe(boom);
    expect(log.filter((line) => line.includes('release') || line.includes('record '))).toEqual([
      '0 koodrive release lock-1',
      '0 ledger record lock-1 failed',
    ]);
  });

  it('a failed RELEASED write is reported, not thrown; a throwing hook changes nothing', async () => {
    ledger.released = 'error';
    const hook = vi.fn(() => {
      throw new Error('hook broke');
    });
    await expect(makeHolder({ onReleaseError: hook }).hold('user-1', '100', () => 7)).resolves.toBe(7);
    expect(hook).toHaveBeenCalledTimes(1);
    expect(String(hook.mock.calls[0])).toMatch(/was released, but recording it failed/);
  });

  it('a RELEASED write that never answers is given up after 10 s: hold returns, the hook hears it', async () => {
    ledger.released = 'hang';
    const hook = vi.fn();
    let settled = false;
    const result = makeHolder({ onReleaseError: hook })
      .hold('user-1', '100', () => 7)
      .then((value) => {
        settled = true;
        return value;
      });
    await clock.advance(9_999);
    expect(settled).toBe(false);
    await clock.advance(1);
    await expect(result).resolves.toBe(7);
    expect(String(hook.mock.calls[0])).toMatch(/was released, but recording it failed/);
    expect(clock.pending).toBe(0);
  });

  // KooDrive revives an expired lock on renew: a renew landing after the DELETE would hold the lock for 10 minutes
  // under a RELEASED item. Whoever releases (hold after work, or close()) waits for the renew's answer first.
  it.each(['work settles', 'close()'] as const)(
    'a renew in flight when %s: the DELETE waits for its answer',
    async (ending) => {
      const answer = deferred<void>();
      koodrive.renewals = [answer.promise];
      const holder = makeHolder();
      const finish = deferred<string>();
      const result = holder.hold('user-1', '100', (lease) => {
        lease.signal.addEventListener('abort', () => finish.resolve('stopped'));
        return finish.promise;
      });
      await clock.advance(10_000);
      expect(log.at(-1)).toBe('10000 koodrive renew lock-1');
      const closed = ending === 'close()' ? holder.close() : (finish.resolve('done'), undefined);
      await clock.advance(5_000);
      expect(log.some((line) => line.includes('koodrive release'))).toBe(false);
      answer.resolve();
      await clock.advance(0);
      await result;
      await closed;
      expect(log.slice(-3)).toEqual([
        '15000 koodrive renewed lock-1',
        '15000 koodrive release lock-1',
        '15000 ledger released lock-1',
      ]);
    },
  );

  it('no timer is left once hold returns, even with a heartbeat in flight', async () => {
    ledger.heartbeats = ['hang'];
    const { finish, result } = await start(makeHolder());
    await clock.advance(10_000);
    expect(log.at(-1)).toBe('10000 ledger heartbeat lock-1');
    expect(clock.pending).toBeGreaterThan(0);
    finish.resolve('ok');
    await result;
    expect(clock.pending).toBe(0);
  });

  it('a lease kept past hold() no longer passes assertHeld', async () => {
    let kept: Lease | undefined;
    await makeHolder().hold('user-1', '100', (lease) => {
      kept = lease;
      lease.assertHeld();
      return 'ok';
    });
    expect(() => kept?.assertHeld()).toThrow(LockLostError);
    expect(() => kept?.assertHeld()).toThrow(/hold\(\) has ended/);
  });

  it('work that settles at once leaves no timer either', async () => {
    await makeHolder().hold('user-1', '100', () => 'ok');
    expect(clock.pending).toBe(0);
  });
});

describe('acquire', () => {
  it('a ledger write slower than the safe time is given up and the KooDrive lock released again', async () => {
    ledger.acquired = 'hang';
    const result = makeHolder()
      .acquire('user-1', '100')
      .catch((e: unknown) => e);
    await clock.advance(SAFE_MS);
    const error = await result;
    expect(error).toBeInstanceOf(AcquireAbortedError);
    expect((error as AcquireAbortedError).undone).toBe(true);
    expect((error as AcquireAbortedError).cause).toBeInstanceOf(HolderTimeoutError);
    expect(log).toEqual([
      '0 koodrive create user-1 100',
      '0 ledger acquire lock-1',
      '26500 koodrive release lock-1',
    ]);
  });

  it('a create that never answers is given up after 10 s, nothing recorded', async () => {
    koodrive.createLock = () => new Promise<never>(() => {});
    const work = vi.fn<() => void>();
    const result = makeHolder()
      .hold('user-1', '100', work)
      .catch((e: unknown) => e);
    await clock.advance(9_999);
    expect(work).not.toHaveBeenCalled();
    await clock.advance(1);
    const error = await result;
    expect(error).toBeInstanceOf(KooDriveLockError);
    expect(error).toMatchObject({ operation: 'create', error: { kind: 'retryable' } });
    expect((error as Error).message).toMatch(/did not answer within 10000 ms/);
    expect(log).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('hold does not run work when the lock cannot be taken', async () => {
    ledger.acquired = 'error';
    const work = vi.fn();
    await expect(makeHolder().hold('user-1', '100', work)).rejects.toBeInstanceOf(AcquireAbortedError);
    expect(work).not.toHaveBeenCalled();
  });
});

describe('configuration', () => {
  it('refuses a safe time that cannot cover a heartbeat, naming the numbers', () => {
    // lease 10 s − skew 1 s − margin 0.5 s = 8.5 s, not longer than a 9 s heartbeat.
    const build = () => makeHolder({ leaseSeconds: 10, heartbeatSeconds: 9, clockSkewSeconds: 1 });
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(/10 s lease leaves a safe time of 8\.5 s .*clock skew 1 s.*margin 0\.5 s.*9 s/);
    expect(() => makeHolder({ leaseSeconds: 10, heartbeatSeconds: 8, clockSkewSeconds: 1 })).not.toThrow();
  });

  it('refuses a KooDrive request timeout above the 30 s the "certainly expired" rule counts on', () => {
    expect(() => makeHolder({ koodriveTimeoutMs: 30_001 })).toThrow(ConfigError);
    expect(() => makeHolder({ koodriveTimeoutMs: 30_001 })).toThrow(
      /koodriveTimeoutMs .*at most 30000.*30001/,
    );
    expect(() => makeHolder({ koodriveTimeoutMs: 0 })).toThrow(/koodriveTimeoutMs/);
    expect(() => makeHolder({ koodriveTimeoutMs: 30_000 })).not.toThrow();
  });

  it('refuses a lease outside 5–600 s', () => {
    expect(() => makeHolder({ leaseSeconds: 601 })).toThrow(/from 5 to 600, got 601/);
    expect(() => makeHolder({ leaseSeconds: 4 })).toThrow(/from 5 to 600, got 4/);
  });

  it('takes the skew allowance from CLOCK_SKEW_SECONDS, else 10', () => {
    vi.stubEnv('CLOCK_SKEW_SECONDS', '3');
    expect(makeHolder({ clockSkewSeconds: undefined, leaseSeconds: 60 }).timing.safeMs).toBe(55_000);
    vi.stubEnv('CLOCK_SKEW_SECONDS', '');
    expect(makeHolder({ clockSkewSeconds: undefined, leaseSeconds: 60 }).timing.safeMs).toBe(48_000);
    vi.stubEnv('CLOCK_SKEW_SECONDS', ' 0 ');
    expect(makeHolder({ clockSkewSeconds: undefined, leaseSeconds: 60 }).timing.safeMs).toBe(58_000);
    vi.stubEnv('CLOCK_SKEW_SECONDS', '300');
    expect(
      makeHolder({ clockSkewSeconds: undefined, leaseSeconds: 600, heartbeatSeconds: 60 }).timing.safeMs,
    ).toBe(298_000);
    // The functions' rule (readEnv): decimal digits only, so '1e1' and '0x5' are refused here too.
    for (const bad of ['soon', '-1', '301', '2.5', '1e1', '0x5']) {
      vi.stubEnv('CLOCK_SKEW_SECONDS', bad);
      expect(() => makeHolder({ clockSkewSeconds: undefined }), bad).toThrow(
        /CLOCK_SKEW_SECONDS must be a whole number from 0 to 300/,
      );
    }
    vi.unstubAllEnvs();
  });

  it('needs KooDrive settings and a table unless the ports are given', () => {
    expect(() => new LockHolder({ ledger })).toThrow(/secretId/);
    expect(() => new LockHolder({ koodrive })).toThrow(/tableName/);
    expect(() => new LockHolder({ koodrive, tableName: 't', settings: '{}' })).not.toThrow();
    expect(() => new LockHolder({ ledger, settings: { endpoint: 'http://example.com' } })).toThrow(
      /endpoint must be https/,
    );
  });
});

describe('with MemoryLedger and the sweep’s own verdict', () => {
  // The sweep's rule (lease.ts judge) with its clock up to the skew allowance ahead of the holder's.
  const policy = { staleAfterSeconds: 900, clockSkewSeconds: 2 };

  it('while assertHeld passes, the sweep never finds the item stale, whatever the pauses', async () => {
    const memory = new MemoryLedger({ now: () => clock.now() });
    const holder = makeHolder({ ledger: memory });
    const { lease, finish, result } = await start(holder);
    let held = 0;
    // Steps of mixed length, some of them pauses in which no timer runs.
    const steps = [900, 4000, 9000, 12_000, 700, 26_000, 3000, 15_000, 27_000, 5000];
    for (const [i, ms] of steps.entries()) {
      if (i % 3 === 2) clock.pause(ms);
      else await clock.advance(ms);
      let ok = true;
      try {
        lease.assertHeld();
      } catch {
        ok = false;
      }
      if (!ok) break;
      held += 1;
      const item = (await memory.get('lock-1'))!;
      expect(judge(item, clock.now() + policy.clockSkewSeconds * 1000, policy)).toEqual({ action: 'leave' });
    }
    expect(held).toBeGreaterThan(3);
    finish.resolve('ok');
    await result;
  });

  it('a sweep’s claim ends the lease at the next heartbeat; the item stays the sweep’s', async () => {
    const memory = new MemoryLedger({ now: () => clock.now() });
    const { lease, finish, result } = await start(makeHolder({ ledger: memory }));
    const read = (await memory.get('lock-1'))!;
    expect(await memory.claim(read, 60)).toBeDefined();
    await clock.advance(10_000);
    expect(expectLost(lease).status).toBe('RELEASING');
    finish.resolve('ok');
    await result;
    expect((await memory.get('lock-1'))?.status).toBe('RELEASING');
    expect(log.filter((line) => line.includes('koodrive'))).toEqual(['0 koodrive create user-1 100']);
  });
});

describe('"certainly expired" covers a renew still in flight (issue: closed EXPIRED at 644 s, live until 650 s)', () => {
  it('lease 10 s, a renew in flight for 20 s: the sweep closes the failed item only after KooDrive’s lock expired', async () => {
    // One clock for all (no skew). The worker heart-beats every second on a 10 s lease with a 2 s allowance (safe
    // time 7.5 s); the sweep allows 10 s and runs every second. Its heartbeat at 24 s lands at once but is answered
    // 6 s late; the renew it then sends at 30 s is in flight for 20 s and lands at 50 s: KooDrive keeps the lock
    // until 650 s. Every DELETE fails, so the item ends RELEASE_FAILED with heartbeatAt 24 s and the sweep's
    // "certainly expired" rule alone ends it.
    const memory = new MemoryLedger({ now: () => clock.now() });
    const slowLedger: HolderLedger = {
      recordAcquired: (lock) => memory.recordAcquired(lock),
      async recordHeartbeat(lockId, holder, leaseSeconds) {
        const startedAt = clock.monotonic();
        const written = await memory.recordHeartbeat(lockId, holder, leaseSeconds);
        if (startedAt === 24_000) await clock.sleep(6_000);
        return written;
      },
      recordReleased: (lockId) => memory.recordReleased(lockId),
      record: (result) => memory.record(result),
    };
    /** When KooDrive's lock expires, on the shared clock (ms); renewals landing after it change nothing. */
    let expiresAt = 0;
    const renewedAt: number[] = [];
    const expiring: KooDriveLocks = {
      createLock: () => {
        expiresAt = clock.monotonic() + 600_000;
        return Promise.resolve({ ok: true, lockId: 'lock-1' });
      },
      async renewLock() {
        if (clock.monotonic() === 30_000) await clock.sleep(20_000);
        if (clock.monotonic() >= expiresAt)
          return { ok: false, error: { kind: 'permanent', message: 'gone' } };
        expiresAt = clock.monotonic() + 600_000;
        renewedAt.push(clock.monotonic());
        return { ok: true };
      },
      releaseLock: () => Promise.resolve({ ok: false, error: BUSY }),
    };
    const holder = makeHolder({
      ledger: slowLedger,
      koodrive: expiring,
      leaseSeconds: 10,
      heartbeatSeconds: 1,
      clockSkewSeconds: 2,
    });
    const result = holder.hold('user-1', '100', (lease) => {
      return new Promise<void>((resolve) => lease.signal.addEventListener('abort', () => resolve()));
    });

    const policy = { staleAfterSeconds: 900, clockSkewSeconds: 10 };
    const sweepDeps = {
      ledger: memory,
      engine: {
        gateway: {
          release: (): Promise<AttemptOutcome> => Promise.resolve({ ok: false, error: BUSY }),
          refreshCredentials: () => Promise.resolve(false),
        },
        clock,
        random: () => 0.5,
        remainingMs: () => 60_000,
      },
      options: { ...DEFAULT_ENGINE_OPTIONS, maxAttempts: 1 },
    };
    let closedAt: number | undefined;
    let releaseFailed: LedgerItem | undefined;
    while (closedAt === undefined && clock.monotonic() < 1_000_000) {
      await clock.advance(1000);
      const item = memory.items.get('lock-1');
      if (item?.status === 'RELEASE_FAILED') releaseFailed ??= structuredClone(item);
      const report = await sweep({ ...policy, dryRun: false, limit: 10 }, sweepDeps);
      if (report.summary.closedExpired > 0) closedAt = clock.monotonic();
    }
    await result;

    // The scenario is the issue's: the last heartbeat recorded at 24 s, the renew that landed last at 50 s.
    expect(releaseFailed).toMatchObject({ heartbeatAt: NOW + 24_000, leaseSeconds: 10 });
    expect(renewedAt.at(-1)).toBe(50_000);
    expect(expiresAt).toBe(650_000);
    // Closed only once KooDrive's lock has expired. The old rule, heartbeat + lease + 600 s + skew = 644 s, closed it
    // at the first sweep past 644 s, while the lock was live until 650 s.
    expect(closedAt).toBeGreaterThan(expiresAt);
    // The rule now adds the 30 s a renew may be in flight: 24 + 10 + 30 + 600 + 10 = 674 s.
    expect(certainlyExpiredAt(releaseFailed!, policy)).toBe(NOW + 674_000);
    expect(closedAt).toBe(675_000);
    expect(memory.items.get('lock-1')?.status).toBe('EXPIRED');
  });
});
