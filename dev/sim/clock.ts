/**
 * The simulation's virtual time: one event queue ordered by (virtual time, sequence number), a seeded random
 * generator, and actors (holder processes, sweep invocations) that each see the world through their own Clock.
 *
 * Time advances only when every task is waiting: after each event the scheduler lets the microtask queue run
 * dry (a setImmediate turn: Node runs every pending nextTick and promise job before it) and only then takes the
 * next event. Nothing here reads the system clock, so the same seed replays the same schedule step for step.
 */
import type { Clock, Random, Timer } from '../../src/core/model';

/** splitmix32-style mixing of a 32-bit state; mulberry32: fast, good enough, and fully determined by the seed. */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Helpers over a Random: integers, picks and coin flips. */
export class Rng {
  constructor(readonly next: Random) {}

  static seeded(seed: number): Rng {
    return new Rng(mulberry32(seed));
  }

  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** A child generator whose stream does not depend on how much this one is used later. */
  fork(): Rng {
    return Rng.seeded(Math.floor(this.next() * 4294967296));
  }
}

interface Event {
  at: number;
  seq: number;
  fn: () => void;
  actor: Actor | undefined;
  cancelled: boolean;
}

/** A min-heap of events by (at, seq). */
class EventQueue {
  private readonly heap: Event[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(event: Event): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent] as Event)) break;
      heap[i] = heap[parent] as Event;
      i = parent;
    }
    heap[i] = event;
  }

  pop(): Event | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const child = r < heap.length && before(heap[r] as Event, heap[l] as Event) ? r : l;
      if (!before(heap[child] as Event, last)) break;
      heap[i] = heap[child] as Event;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * Lets every pending promise job run. Called from inside a promise job (the scheduler's loop after its first
 * await), a nextTick callback runs only once V8's whole job queue is empty, including the jobs those jobs queue:
 * Node drains the job queue, then the tick queue. Nothing the simulation runs queues ticks of its own, so this is
 * the point where every task waits for an event. (setImmediate gives the same schedules, at 2.5× the cost.)
 */
export function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

/** A full event-loop turn: every job and tick queued so far has run. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The true time the simulation starts at (epoch ms); any fixed value works. */
export const SIM_EPOCH_MS = 1_750_000_000_000;

export class Scheduler {
  /** Virtual true time, epoch ms. */
  now = SIM_EPOCH_MS;
  private seq = 0;
  private readonly queue = new EventQueue();
  private nextActorId = 1;
  /** Events run so far (a cost measure). */
  steps = 0;
  /** Called after every event, once the microtasks it caused have run (the checker looks at the world then). */
  afterStep: (() => void) | undefined;

  /** Runs `fn` at virtual time `at` (never earlier than now). For an actor's event: dropped when it is dead, deferred while it is paused. */
  at(at: number, fn: () => void, actor?: Actor): Timer {
    const event: Event = { at: Math.max(at, this.now), seq: this.seq++, fn, actor, cancelled: false };
    this.queue.push(event);
    return {
      cancel: () => {
        event.cancelled = true;
      },
    };
  }

  after(ms: number, fn: () => void, actor?: Actor): Timer {
    return this.at(this.now + Math.max(0, ms), fn, actor);
  }

  actor(name: string, options: { skewMs?: number; frozenMonotonic?: boolean } = {}): Actor {
    return new Actor(this, this.nextActorId++, name, options.skewMs ?? 0, options.frozenMonotonic ?? false);
  }

  /** Runs events in order until the queue is empty or the next event lies after `until`; then now = until. */
  async run(until: number): Promise<void> {
    await turn();
    this.afterStep?.();
    for (;;) {
      const event = this.queue.pop();
      if (event === undefined) break;
      if (event.at > until) {
        this.queue.push(event);
        break;
      }
      if (event.cancelled) continue;
      const actor = event.actor;
      if (actor !== undefined) {
        if (actor.dead) continue;
        if (actor.pausedUntil > event.at) {
          // A paused process runs nothing: its timers and the answers sent to it wait until it wakes up, in order.
          this.at(actor.pausedUntil, event.fn, actor);
          continue;
        }
      }
      this.now = event.at;
      this.steps += 1;
      event.fn();
      await drainMicrotasks();
      this.afterStep?.();
    }
    this.now = Math.max(this.now, until);
  }
}

/**
 * A process (a holder's host, a sweep invocation): its own clock skew, and it can crash (nothing of it runs any
 * more, its pending calls are never answered) or pause (nothing of it runs until it wakes; its monotonic clock
 * jumps over the pause, as a frozen container's or a stopped-the-world GC's does).
 */
export class Actor {
  dead = false;
  /** Virtual true time until which the actor is paused (no pause: in the past). */
  pausedUntil = 0;
  readonly clock: Clock;

  constructor(
    readonly scheduler: Scheduler,
    readonly id: number,
    readonly name: string,
    readonly skewMs: number,
    frozenMonotonic: boolean,
  ) {
    const frozenAt = scheduler.now;
    this.clock = {
      now: () => scheduler.now + skewMs,
      monotonic: frozenMonotonic ? () => frozenAt : () => scheduler.now,
      sleep: (ms) => new Promise<void>((resolve) => scheduler.after(ms, resolve, this)),
      setTimer: (ms, fn) => scheduler.after(ms, fn, this),
    };
  }

  crash(): void {
    this.dead = true;
  }

  /** Freezes the actor from now for `ms`. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.scheduler.now + ms);
  }

  /** True while paused at the current virtual time. */
  get paused(): boolean {
    return this.pausedUntil > this.scheduler.now;
  }

  /** Delivers to this actor after `ms` (deferred while paused, never when dead). */
  deliver(ms: number, fn: () => void): void {
    this.scheduler.after(ms, fn, this);
  }

  /** A promise that never settles: what a dead process's pending calls look like. */
  static never<T>(): Promise<T> {
    return new Promise<T>(() => undefined);
  }
}
