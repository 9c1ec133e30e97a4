/**
 * A Clock (src/core/model.ts) whose time moves only when a test advances it: the timers due meanwhile fire in
 * order, and after each one `settle` lets the work it started finish (the testbed waits there for the holder's
 * calls in flight), so a heartbeat due at 10 s has run, renew answer included, when `advance(10_000)` returns.
 */
import type { Clock, Timer } from '../core/model';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/** 2026-01-01T00:00:00Z: where a virtual clock starts unless told otherwise. */
export const VIRTUAL_EPOCH_MS = Date.UTC(2026, 0, 1);

/** A full event-loop turn: every promise job, tick and I/O callback queued so far has run. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class VirtualClock implements Clock {
  private readonly startAt: number;
  private mono = 0;
  private seq = 0;
  private readonly pending: Pending[] = [];

  /**
   * @param startAt epoch ms of now() at the start.
   * @param settle awaited before each timer fires and once at the end of advance(); default one event-loop turn.
   */
  constructor(
    startAt: number = VIRTUAL_EPOCH_MS,
    private readonly settle: () => Promise<void> = turn,
  ) {
    this.startAt = startAt;
  }

  /** The start plus the time advanced: exact at the end of each advance(), whatever fired in between. */
  now(): number {
    return this.startAt + this.mono;
  }

  monotonic(): number {
    return this.mono;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const entry: Pending = { at: this.mono + Math.max(0, ms), seq: this.seq++, fn };
    this.pending.push(entry);
    return {
      cancel: () => {
        const i = this.pending.indexOf(entry);
        if (i >= 0) this.pending.splice(i, 1);
      },
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(ms, resolve));
  }

  /** Timers armed and not yet fired or cancelled. */
  get timers(): number {
    return this.pending.length;
  }

  /** Moves time forward by `ms`, firing every timer due on the way in order (ties in the order armed). */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0) || !Number.isFinite(ms))
      throw new RangeError(`advance(ms) needs a finite ms >= 0, got ${ms}`);
    const end = this.mono + ms;
    for (;;) {
      await this.settle();
      const next = this.next(end);
      if (!next) break;
      this.pending.splice(this.pending.indexOf(next), 1);
      this.move(next.at);
      next.fn();
    }
    this.move(end);
    await this.settle();
  }

  private next(end: number): Pending | undefined {
    let first: Pending | undefined;
    for (const entry of this.pending) {
      if (entry.at > end) continue;
      if (!first || entry.at < first.at || (entry.at === first.at && entry.seq < first.seq)) first = entry;
    }
    return first;
  }

  private move(to: number): void {
    this.mono = to;
  }
}
