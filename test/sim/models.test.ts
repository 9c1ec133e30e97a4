/**
 * The simulation's own parts: the virtual scheduler (order, pauses, crashes, no real time) and the KooDrive model
 * (the lock rules of the KooDrive API documentation and the emulator: one live lock per user and module, 10 minutes
 * from creation or renewal, release idempotent).
 */
import { describe, expect, it } from 'vitest';
import { Rng, Scheduler, SIM_EPOCH_MS, mulberry32 } from '../../dev/sim/clock';
import { KooDriveModel } from '../../dev/sim/koodrive-model';

describe('the virtual scheduler', () => {
  it('runs events by virtual time, then by the order they were scheduled, and only advances when all wait', async () => {
    const scheduler = new Scheduler();
    const log: string[] = [];
    const actor = scheduler.actor('a', { skewMs: 1500 });
    scheduler.after(2000, () => log.push(`b@${scheduler.now - SIM_EPOCH_MS}`));
    scheduler.after(1000, () => log.push(`a@${scheduler.now - SIM_EPOCH_MS}`));
    scheduler.after(1000, () => log.push(`a2@${scheduler.now - SIM_EPOCH_MS}`));
    void (async () => {
      await actor.clock.sleep(1500);
      // A chain of promise jobs runs before time moves on.
      for (let i = 0; i < 50; i += 1) await Promise.resolve();
      log.push(`sleeper@${scheduler.now - SIM_EPOCH_MS} wall ${actor.clock.now() - SIM_EPOCH_MS}`);
    })();
    await scheduler.run(SIM_EPOCH_MS + 10_000);
    expect(log).toEqual(['a@1000', 'a2@1000', 'sleeper@1500 wall 3000', 'b@2000']);
    expect(scheduler.now).toBe(SIM_EPOCH_MS + 10_000);
  });

  it('defers a paused actor’s events to its wake-up, in order, and drops a crashed actor’s', async () => {
    const scheduler = new Scheduler();
    const log: string[] = [];
    const paused = scheduler.actor('p');
    const dead = scheduler.actor('d');
    paused.clock.setTimer(1000, () => log.push(`p1@${paused.clock.monotonic() - SIM_EPOCH_MS}`));
    paused.clock.setTimer(3000, () => log.push(`p2@${paused.clock.monotonic() - SIM_EPOCH_MS}`));
    paused.clock.setTimer(9000, () => log.push(`p3@${paused.clock.monotonic() - SIM_EPOCH_MS}`));
    const cancelled = paused.clock.setTimer(2000, () => log.push('cancelled'));
    cancelled.cancel();
    dead.clock.setTimer(1000, () => log.push('dead'));
    scheduler.after(500, () => {
      paused.pause(5000);
      dead.crash();
    });
    await scheduler.run(SIM_EPOCH_MS + 20_000);
    expect(log).toEqual(['p1@5500', 'p2@5500', 'p3@9000']);
  });

  it('draws the same numbers from the same seed', () => {
    const a = Rng.seeded(42);
    const b = new Rng(mulberry32(42));
    const xs = Array.from({ length: 5 }, () => a.int(0, 1000));
    expect(Array.from({ length: 5 }, () => b.int(0, 1000))).toEqual(xs);
    expect(new Set(xs).size).toBeGreaterThan(1);
  });
});

describe('the KooDrive model', () => {
  const setup = () => {
    let now = 1_000_000;
    const model = new KooDriveModel(() => now);
    return { model, advance: (ms: number) => (now += ms) };
  };

  it('keeps one live lock per user and module, for 10 minutes after creation', () => {
    const { model, advance } = setup();
    const first = model.create('u', '100', 'w1');
    expect(first.ok).toBe(true);
    expect(model.create('u', '100', 'w2')).toMatchObject({
      ok: false,
      error: { kind: 'permanent', httpStatus: 400 },
    });
    expect(model.create('u', '101', 'w2').ok).toBe(true);
    expect(model.create('v', '100', 'w2').ok).toBe(true);
    advance(599_999);
    expect(model.create('u', '100', 'w2').ok).toBe(false);
    advance(1);
    expect(model.create('u', '100', 'w2').ok).toBe(true);
  });

  it('restarts the 10 minutes on renew, revives an expired lock nobody replaced, and refuses a released one', () => {
    const { model, advance } = setup();
    const created = model.create('u', '100', 'w1');
    if (!created.ok) throw new Error('create failed');
    const ref = { lockId: created.lockId, userId: 'u' };
    advance(500_000);
    expect(model.renew(ref, 'w1')).toEqual({ ok: true });
    advance(500_000);
    expect(model.create('u', '100', 'w2').ok).toBe(false);
    advance(200_000);
    expect(model.freedAt(ref.lockId)).toBe(1_000_000 + 500_000 + 600_000);
    expect(model.renew(ref, 'w1')).toEqual({ ok: true });
    expect(model.release(ref, 'w1')).toEqual({ ok: true, outcome: 'released' });
    expect(model.release(ref, 'sweep')).toEqual({ ok: true, outcome: 'alreadyReleased' });
    expect(model.renew(ref, 'w1')).toMatchObject({ ok: false, error: { kind: 'permanent' } });
    expect(model.release({ lockId: ref.lockId, userId: 'other' }, 'x')).toEqual({
      ok: true,
      outcome: 'alreadyReleased',
    });
  });
});
