/** The production time and randomness ports: the one place src/ reads the system clock or arms a timer. */
import { describe, expect, it } from 'vitest';
import { systemClock, systemRandom } from '../../src/core/model';

const refTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('systemClock', () => {
  it('now() is the wall clock in epoch ms', () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('monotonic() is performance.now()', () => {
    const before = performance.now();
    const reading = systemClock.monotonic();
    expect(reading).toBeGreaterThanOrEqual(before);
    expect(reading).toBeLessThanOrEqual(performance.now());
  });

  it('sleep(ms) resolves after about ms', async () => {
    const start = performance.now();
    await systemClock.sleep(30);
    expect(performance.now() - start).toBeGreaterThanOrEqual(25);
  });

  it('setTimer calls fn once after ms, and never keeps the process alive', async () => {
    const before = refTimers();
    let calls = 0;
    const start = performance.now();
    const fired = new Promise<number>((resolve) => {
      systemClock.setTimer(30, () => {
        calls += 1;
        resolve(performance.now() - start);
      });
    });
    expect(refTimers()).toBe(before); // unref'd: not among the handles that keep Node running
    expect(await fired).toBeGreaterThanOrEqual(25);
    expect(calls).toBe(1);
  });

  it('a cancelled timer never fires', async () => {
    let fired = false;
    const timer = systemClock.setTimer(10, () => {
      fired = true;
    });
    timer.cancel();
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(fired).toBe(false);
  });
});

describe('systemRandom', () => {
  it('draws from [0, 1), not always the same value', () => {
    const draws = Array.from({ length: 50 }, () => systemRandom());
    expect(draws.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(draws).size).toBeGreaterThan(40);
  });
});
