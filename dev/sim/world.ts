/**
 * One simulated schedule: worker processes holding KooDrive locks through the production LockHolder, the
 * production sweep (and through it the release engine) on its one-minute schedule, the in-memory ledger
 * (MemoryLedger) and KooDrive model behind a faulty network, on virtual time. Everything random comes from the
 * schedule's seed.
 */
import { MemoryLedger } from '../../src/testing/memory-ledger';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/core/engine';
import { holderTiming, type HolderLedger, type HolderTiming, type SweepLedger } from '../../src/core/lease';
import type { Clock } from '../../src/core/model';
import { MIN_CLAIM_LEASE_SECONDS } from '../../src/core/sweep';
import { LockHolder, type KooDriveLocks, type Lease } from '../../src/ledger/holder';
import { runSweep } from './sweep-driver';
import { Checker, type LivenessSample, type Violation } from './checker';
import { Rng, Scheduler, SIM_EPOCH_MS, type Actor } from './clock';
import { FaultLog, Network, NO_FAULTS, koodrivePorts, ledgerPorts, type FaultRates } from './faults';
import { KooDriveModel } from './koodrive-model';

/** Ways to build a broken system from the outside (ports and wrappers only), for the checker's own tests. */
export interface Variant {
  name: string;
  /** The clock a holder process uses (default: its actor's clock). */
  holderClock?(actor: Actor): Clock;
  /** Wraps a holder's ledger port (in the holder's process, above the network). */
  holderLedger?(ledger: HolderLedger, koodrive: KooDriveLocks): HolderLedger;
  /** The sweep's clock-skew allowance (default: the schedule's allowance). */
  sweepSkewAllowanceSeconds?(allowanceSeconds: number): number;
  /** Wraps the sweep's ledger port (below the network: runs at the service). */
  sweepLedger?(ledger: SweepLedger, store: MemoryLedger): SweepLedger;
}

export const CORRECT: Variant = { name: 'correct' };

export interface ScheduleResult {
  seed: number;
  violations: Violation[];
  faults: FaultLog;
  liveness: LivenessSample[];
  steps: number;
  holds: number;
  sweeps: number;
  /** A hash of every call made, in order, with its virtual time and caller: equal for equal schedules. */
  traceHash: string;
  /** hold() calls that never settled although their process lived on, and those processes. */
  stuckHolds: number;
  stuckHolders: string[];
  /** With `trace`: the calls made, one line each. */
  trace?: string[];
}

export interface ScheduleOptions {
  variant?: Variant;
  trace?: boolean;
  /** Stop at the first violation (the test of a broken variant). */
  stopAtViolation?: boolean;
}

const MINUTE = 60_000;
const WORK_MS = 12 * MINUTE;
const DRAIN_MS = 16 * MINUTE;
export const SWEEP_PERIOD_MS = MINUTE;
export const SWEEP_TIMEOUT_MS = 50_000;
export const SWEEP_JITTER_MS = 2_000;
const KOODRIVE_TIMEOUT_MS = 5_000;
const MODULES = ['100', '101', '102'];

interface Plan {
  allowanceSeconds: number;
  users: number;
  modules: number;
  workers: number;
  rates: { koodrive: FaultRates; ledger: FaultRates };
  crashPerHold: number;
  pausePerHold: number;
  sweepCrashAfterClaim: number;
  sweepKilled: number;
  sweepLate: number;
  sweepDuplicate: number;
}

function plan(rng: Rng): Plan {
  const intensity = rng.pick([0, 1, 1, 2, 2, 3]);
  const scale = [0, 0.3, 1, 2.5][intensity] as number;
  const rates = (ledger: boolean): FaultRates => ({
    delay: 0.02 * scale,
    lostRequest: 0.006 * scale,
    lostResponse: 0.006 * scale,
    ambiguous: 0.01 * scale,
    error: 0.015 * scale,
    throttle: ledger ? 0 : 0.01 * scale,
  });
  return {
    allowanceSeconds: rng.pick([10, 10, 5, 2]),
    users: rng.int(1, 3),
    modules: rng.int(1, 2),
    workers: rng.int(2, 4),
    rates:
      intensity === 0
        ? { koodrive: NO_FAULTS, ledger: NO_FAULTS }
        : { koodrive: rates(false), ledger: rates(true) },
    crashPerHold: rng.pick([0.05, 0.15, 0.3]),
    pausePerHold: rng.pick([0.05, 0.15, 0.3]),
    sweepCrashAfterClaim: rng.pick([0, 0.05, 0.15]),
    sweepKilled: rng.pick([0, 0.02]),
    sweepLate: rng.pick([0, 0.05, 0.2]),
    sweepDuplicate: rng.pick([0, 0.05, 0.2]),
  };
}

/** Leases a holder may choose; those whose safe time cannot cover a heartbeat with the allowance are skipped. */
const LEASES = [120, 120, 60, 30, 20, 10];

function leaseFor(rng: Rng, allowanceSeconds: number): { leaseSeconds: number; timing: HolderTiming } {
  for (;;) {
    const leaseSeconds = rng.pick(LEASES);
    try {
      return { leaseSeconds, timing: holderTiming({ leaseSeconds, clockSkewSeconds: allowanceSeconds }) };
    } catch {
      // refused configuration: pick another
    }
  }
}

/** FNV-1a over strings, as two 32-bit halves. */
class TraceHash {
  private a = 0x811c9dc5;
  private b = 0x01000193;

  add(text: string): void {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < text.length; i += 1) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 13);
    }
    this.a = a >>> 0;
    this.b = b >>> 0;
  }

  hex(): string {
    return this.a.toString(16).padStart(8, '0') + this.b.toString(16).padStart(8, '0');
  }
}

export async function runSchedule(seed: number, options: ScheduleOptions = {}): Promise<ScheduleResult> {
  const variant = options.variant ?? CORRECT;
  const rng = Rng.seeded(seed);
  const p = plan(rng.fork());
  const scheduler = new Scheduler();
  const faults = new FaultLog();
  const net = new Network(scheduler, rng.fork(), p.rates, faults);
  const model = new KooDriveModel(() => scheduler.now);
  const store = new MemoryLedger({ now: () => net.ledgerCallerNow });
  const allowanceMs = p.allowanceSeconds * 1000;
  const skew = (r: Rng) => r.int(-allowanceMs, allowanceMs);
  const sweepSkewMs = skew(rng);
  const checker = new Checker(scheduler, model, {
    skewAllowanceMs: allowanceMs,
    sweepPeriodMs: SWEEP_PERIOD_MS,
    sweepSkewMs,
    sweepJitterMs: SWEEP_JITTER_MS,
    releaseSlackMs: KOODRIVE_TIMEOUT_MS,
    claimLeaseMs: Math.max(MIN_CLAIM_LEASE_SECONDS * 1000, SWEEP_TIMEOUT_MS),
  });
  model.observer = {
    created: (lock, by) => checker.created(lock, by),
    released: (lock, by, at) => checker.released(lock, by, at),
  };
  const hash = new TraceHash();
  const trace: string[] | undefined = options.trace ? [] : undefined;
  net.onCall = (actor, what) => {
    const line = `${scheduler.now - SIM_EPOCH_MS} ${actor.name} ${what}`;
    hash.add(line);
    trace?.push(line);
  };
  const note = (line: string) => {
    const text = `${scheduler.now - SIM_EPOCH_MS} ${line}`;
    hash.add(text);
    trace?.push(text);
  };

  let holds = 0;
  /** hold() calls not returned yet, by process: at the end, those of live processes never returned. */
  const pendingHolds = new Map<Actor, number>();
  const users = Array.from({ length: p.users }, (_, i) => `user${i + 1}`);
  const modules = MODULES.slice(0, p.modules);
  const workEnd = SIM_EPOCH_MS + WORK_MS;
  const end = workEnd + DRAIN_MS;

  // ---- holders ----

  /** The ledger a holder writes through: records the heartbeatAt values holders put there, for the checker. */
  const observedHolderLedger: HolderLedger = {
    recordAcquired: async (lock) => {
      const item = await store.recordAcquired(lock);
      checker.heartbeatWritten(item.lockId, item.heartbeatAt);
      return item;
    },
    recordHeartbeat: async (lockId, holder, leaseSeconds) => {
      const at = await store.recordHeartbeat(lockId, holder, leaseSeconds);
      checker.heartbeatWritten(lockId, at);
      return at;
    },
    recordReleased: (lockId) => store.recordReleased(lockId),
    record: (result) => store.record(result),
  };

  const startWorker = (index: number, incarnation: number, skewMs: number, workerRng: Rng): void => {
    const actor = scheduler.actor(`w${index}.${incarnation}`, { skewMs });
    const { leaseSeconds, timing } = leaseFor(workerRng, p.allowanceSeconds);
    checker.addProc({ actor, timing });
    const koodrive = koodrivePorts(net, workerRng.fork(), model, actor, KOODRIVE_TIMEOUT_MS, {
      acknowledged: (a, op, lockId, sentAt) => checker.koodriveAck(a, op, lockId, sentAt),
      renewing: (lockId) => checker.renewing(actor, lockId, store.items.get(lockId)),
    });
    const networkLedger = ledgerPorts(net, actor, observedHolderLedger, {
      acknowledged: (a, op, lockId, sentAt) => {
        if (op === 'ledger.recordAcquired' || op === 'ledger.recordHeartbeat') {
          checker.ledgerAck(a, lockId, sentAt);
        }
      },
    });
    const ledger = variant.holderLedger ? variant.holderLedger(networkLedger, koodrive) : networkLedger;
    const clock = variant.holderClock ? variant.holderClock(actor) : actor.clock;
    const holder = new LockHolder({
      name: actor.name,
      leaseSeconds,
      clockSkewSeconds: p.allowanceSeconds,
      koodrive,
      ledger,
      clock,
      random: workerRng.fork().next,
    });

    const restart = () => {
      if (scheduler.now + MINUTE < workEnd) {
        scheduler.after(workerRng.int(5_000, 60_000), () =>
          startWorker(index, incarnation + 1, skewMs, workerRng),
        );
      }
    };

    const loop = async (): Promise<void> => {
      while (actor.clock.now() - skewMs < workEnd) {
        const userId = workerRng.pick(users);
        const moduleCode = workerRng.pick(modules);
        const workMs = workerRng.chance(0.3)
          ? workerRng.int(1_000, 20_000)
          : workerRng.int(20_000, 4 * MINUTE);
        holds += 1;
        const holdStart = scheduler.now;
        if (workerRng.chance(p.crashPerHold)) {
          scheduler.after(workerRng.int(0, workMs + 5_000), () => {
            if (actor.dead) return;
            faults.add('holder.crash');
            note(`${actor.name} crashes`);
            actor.crash();
            checker.crashed(actor);
            restart();
          });
        }
        if (workerRng.chance(p.pausePerHold)) {
          const pauseMs = workerRng.int(Math.round(timing.leaseMs * 0.2), Math.round(timing.leaseMs * 2.5));
          scheduler.after(workerRng.int(0, workMs), () => {
            if (actor.dead) return;
            faults.add(pauseMs > timing.safeMs ? 'holder.pause>safe' : 'holder.pause<safe');
            note(`${actor.name} pauses ${pauseMs}`);
            actor.pause(pauseMs);
          });
        }
        const stepRng = workerRng.fork();
        pendingHolds.set(actor, (pendingHolds.get(actor) ?? 0) + 1);
        try {
          await holder.hold(userId, moduleCode, async (lease: Lease) => {
            checker.workStarted(lease.lockId);
            try {
              const until = scheduler.now + workMs;
              while (scheduler.now < until) {
                await actor.clock.sleep(stepRng.int(2_000, 20_000));
                lease.assertHeld();
                checker.passed(lease.lockId);
              }
            } finally {
              checker.workSettled(lease.lockId);
            }
          });
          note(`${actor.name} hold done after ${scheduler.now - holdStart}`);
        } catch (error) {
          note(`${actor.name} hold failed: ${(error as Error).name}`);
        }
        pendingHolds.set(actor, (pendingHolds.get(actor) ?? 1) - 1);
        await actor.clock.sleep(workerRng.int(0, 30_000));
      }
    };
    void loop();
  };

  for (let i = 0; i < p.workers; i += 1) {
    const workerRng = rng.fork();
    const skewMs = skew(workerRng);
    scheduler.after(workerRng.int(0, 20_000), () => startWorker(i + 1, 1, skewMs, workerRng));
  }

  // ---- sweeps ----

  let sweeps = 0;
  let running: Actor[] = [];
  const faulted = new Set<Actor>();
  net.onFault = (actor) => faulted.add(actor);
  const sweepAllowance = variant.sweepSkewAllowanceSeconds
    ? variant.sweepSkewAllowanceSeconds(p.allowanceSeconds)
    : p.allowanceSeconds;
  const sweepRng = rng.fork();
  const firstSweep = SIM_EPOCH_MS + sweepRng.int(0, SWEEP_PERIOD_MS);
  const invoke = (startAt: number, late: boolean, duplicate: boolean): void => {
    const crashAfterClaim = sweepRng.chance(p.sweepCrashAfterClaim);
    const killAfter = sweepRng.chance(p.sweepKilled) ? sweepRng.int(0, SWEEP_TIMEOUT_MS) : undefined;
    const invocationRng = sweepRng.fork();
    scheduler.at(startAt, () => {
      sweeps += 1;
      // Not a fault: the schedule does not wait for the previous invocation to end.
      if (running.some((other) => !other.dead)) faults.add('sweep.overlapping');
      const actor = scheduler.actor(`sweep${sweeps}`, { skewMs: sweepSkewMs });
      running = [...running.filter((other) => !other.dead), actor];
      const startedAt = scheduler.now;
      let disrupted = false;
      const disrupt = (kind: string) => {
        if (actor.dead) return;
        faults.add(kind);
        note(`${actor.name} ${kind}`);
        actor.crash();
        disrupted = true;
        checker.sweepDisrupted(startedAt);
      };
      if (duplicate) faults.add('sweep.duplicate');
      if (late) {
        faults.add('sweep.late');
        checker.sweepDisrupted(startedAt);
      }
      let service: SweepLedger = store;
      if (crashAfterClaim) {
        service = {
          ...bindSweep(store),
          claim: async (item, leaseSeconds) => {
            const claimed = await store.claim(item, leaseSeconds);
            if (claimed) disrupt('sweep.crashAfterClaim');
            return claimed;
          },
        };
      }
      if (variant.sweepLedger) service = variant.sweepLedger(service, store);
      const ledger = ledgerPorts(net, actor, service);
      const gateway = koodrivePorts(net, invocationRng.fork(), model, actor, KOODRIVE_TIMEOUT_MS);
      // The Lambda's timeout ends the invocation wherever it is.
      scheduler.after(killAfter ?? SWEEP_TIMEOUT_MS, () =>
        disrupt(killAfter === undefined ? 'sweep.timeout' : 'sweep.killed'),
      );
      const options: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS, attemptTimeoutMs: KOODRIVE_TIMEOUT_MS };
      void runSweep({
        ledger,
        clock: actor.clock,
        random: invocationRng.fork().next,
        gateway,
        remainingMs: () => startedAt + SWEEP_TIMEOUT_MS - actor.clock.monotonic(),
        clockSkewSeconds: sweepAllowance,
        options,
      }).then(
        () => {
          // A sweep that hit an injected fault may have left work for the next one.
          if (!disrupted && faulted.has(actor)) checker.sweepDisrupted(startedAt);
          actor.crash(); // the invocation is over: nothing of it runs any more
        },
        (error: unknown) => {
          note(`${actor.name} failed: ${(error as Error).name}`);
          checker.sweepDisrupted(startedAt);
          actor.crash();
        },
      );
    });
  };
  for (let at = firstSweep; at < end; at += SWEEP_PERIOD_MS) {
    const late = sweepRng.chance(p.sweepLate);
    const startAt = at + (late ? sweepRng.int(SWEEP_JITTER_MS, 40_000) : sweepRng.int(0, SWEEP_JITTER_MS));
    invoke(startAt, late, false);
    // EventBridge delivers at least once: now and then the same tick invokes the sweep twice.
    if (sweepRng.chance(p.sweepDuplicate)) invoke(startAt + sweepRng.int(0, 200), false, true);
  }

  if (options.stopAtViolation) {
    scheduler.afterStep = () => {
      if (checker.violations.length > 0) throw new StopSchedule();
    };
  }
  try {
    await scheduler.run(end);
    checker.finish(store.items.values());
  } catch (error) {
    if (!(error instanceof StopSchedule)) throw error;
  }
  const stuck: string[] = [];
  for (const [actor, n] of pendingHolds) if (!actor.dead && n > 0) stuck.push(actor.name);
  return {
    seed,
    violations: checker.violations,
    faults,
    liveness: checker.liveness,
    steps: scheduler.steps,
    holds,
    sweeps,
    traceHash: hash.hex(),
    stuckHolds: stuck.length,
    stuckHolders: stuck,
    ...(trace ? { trace } : {}),
  };
}

class StopSchedule extends Error {}

function bindSweep(store: MemoryLedger): SweepLedger {
  return {
    openItems: () => store.openItems(),
    claim: (item, leaseSeconds) => store.claim(item, leaseSeconds),
    claimRecorder: (claimed) => store.claimRecorder(claimed),
    closeExpired: (item) => store.closeExpired(item),
  };
}
