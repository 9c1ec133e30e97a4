/** In-memory fakes of the project's own ports, for unit tests of the core. */
import type { AttemptOutcome, Clock, LockGateway, LockRef } from '../../src/core/model';
import { lockKey } from '../../src/core/requests';

/** A clock whose sleeps pass instantly and move virtual time forward. */
export class FakeClock implements Clock {
  sleeps: number[] = [];
  constructor(public time = 0) {}
  now = (): number => this.time;
  monotonic = (): number => this.time;
  sleep = async (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.time += ms;
    await Promise.resolve();
  };
  setTimer = (): never => {
    throw new Error('FakeClock has no timers: use the simulation clock');
  };
}

/** A deterministic uniform random source (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Script = (lock: LockRef, attempt: number) => AttemptOutcome | Promise<AttemptOutcome>;

/**
 * A gateway that answers from a script and records what it was asked, and how many calls ran at once. A lock is
 * its (userId, lockId) pair: the attempt number the script gets and `released` count the pair, never the ID alone.
 */
export class FakeGateway implements LockGateway {
  calls: LockRef[] = [];
  refreshes: Array<number | undefined> = [];
  inFlight = 0;
  maxInFlight = 0;
  /** lockKey of every lock a call released (answered `released`). */
  released = new Set<string>();
  refreshAnswer = true;

  constructor(private readonly script: Script = () => ({ ok: true, outcome: 'released' })) {}

  /** Calls for this lock ID, of this user only when `userId` is given. */
  attemptsFor(lockId: string, userId?: string): number {
    return this.calls.filter((c) => c.lockId === lockId && (userId === undefined || c.userId === userId))
      .length;
  }

  wasReleased(lock: LockRef): boolean {
    return this.released.has(lockKey(lock));
  }

  async release(lock: LockRef): Promise<AttemptOutcome> {
    this.calls.push(lock);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((resolve) => setImmediate(resolve));
      const answer = await this.script(lock, this.attemptsFor(lock.lockId, lock.userId));
      if (answer.ok && answer.outcome === 'released') this.released.add(lockKey(lock));
      return answer;
    } finally {
      this.inFlight -= 1;
    }
  }

  refreshCredentials(version: number | undefined): Promise<boolean> {
    this.refreshes.push(version);
    return Promise.resolve(this.refreshAnswer);
  }
}

export const locks = (n: number, userId = 'user-1'): LockRef[] =>
  Array.from({ length: n }, (_, i) => ({ lockId: `lock-${i}`, userId }));
