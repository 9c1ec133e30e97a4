/**
 * One simulated schedule: worker processes holding KooDrive locks through the production LockHolder, the
 * production sweep (and through it the release engine) on its one-minute schedule, the in-memory ledger
 * (MemoryLedger) and KooDrive model behind a faulty network, on virtual time. Everything random comes from the
 * schedule's seed.
 */
import { MemoryLedger } from '../../src/testing/memory-ledger';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from '../../src/core/engine';
import { LockLostError } from '../../src/core/errors';
import {
  MAX_KOODRIVE_REQUEST_SECONDS,
  holderTiming,
  type HolderLedger,
  type HolderTiming,
  type ReleaseLedger,
  type SweepLedger,
} from '../../src/core/lease';
import type { Clock, LockGateway, LockRef } from '../../src/core/model';
import { MIN_CLAIM_LEASE_SECONDS } from '../../src/core/sweep';
import { AcquireAbortedError, LockHolder, type KooDriveLocks, type Lease } from '../../src/ledger/holder';
import { runSweep } from './sweep-driver';
import { Checker, FORCED_SUFFIX, OUT_OF_BAND, type LivenessSample, type Violation } from './checker';
import { Rng, Scheduler, SIM_EPOCH_MS, type Actor } from './clock';
import { Coverage } from './coverage';
import { FaultLog, Network, NO_FAULTS, koodrivePorts, ledgerPorts, type FaultRates } from './faults';
import { KooDriveModel } from './koodrive-model';
import { ServiceLedger } from './service-ledger';
import { runRelease, type ReleaseRequest } from './release-driver';

/** Ways to build a broken system from the outside (ports and wrappers only), for the checker's own tests. */
export interface Variant {
  name: string;
  /** The clock a holder process uses (default: its actor's clock). */
  holderClock?(actor: Actor): Clock;
  /** Wraps a holder's ledger port (in the holder's process, above the network). */
  holderLedger?(ledger: HolderLedger, koodrive: KooDriveLocks): HolderLedger;
  /** Wraps a holder's KooDrive port (in the holder's process, above the network). */
  holderKooDrive?(koodrive: KooDriveLocks): KooDriveLocks;
  /** The sweep's clock-skew allowance (default: the schedule's allowance). */
  sweepSkewAllowanceSeconds?(allowanceSeconds: number): number;
  /** The release function without its live-lease check (the release path before it decided from the ledger). */
  releaseWithoutLeaseCheck?: boolean;
  /** Wraps the release function's ledger port (in its process, above the network). */
  releaseLedger?(ledger: ReleaseLedger): ReleaseLedger;
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
  /** How often each protocol branch ran (coverage.ts). */
  coverage: Map<string, number>;
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
/** The last stretch of a schedule in which no sweep is crashed or killed. */
const CALM_MS = 5 * 60_000;
/** The release function's Lambda timeout. */
export const RELEASE_TIMEOUT_MS = 30_000;
const KOODRIVE_TIMEOUT_MS = 5_000;
const MODULES = ['100', '101', '102'];
/** A renew answered this long after its heartbeat landed counts as late. */
const LATE_RENEW_MS = 3_000;

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
  sweepCrashMidRelease: number;
  /** Chance that a worker process is stopped on purpose (a deploy, a scale-in): SIGTERM, close(), exit. */
  closePerWorker: number;
  /** Whether a KooDrive renew revives an expired lock nobody replaced. */
  revive: boolean;
  lag: { readLagMs: number; indexLagMs: number };
  /** Outage bursts (true time from the start, ms). */
  renewOutage?: { worker: number; from: number; ms: number };
  koodriveOutage?: { from: number; ms: number };
  /** KooDrive's DELETE fails for everyone (holders and sweeps); creates and renews still work. */
  releaseOutage?: { from: number; ms: number };
  ledgerOutage?: { from: number; ms: number };
  /** Short stretches in which every KooDrive renew fails: a renew then lands long after its heartbeat. */
  renewFlaps: Array<{ from: number; ms: number }>;
  /** Release-function invocations (SQS batches and direct invokes) per minute of work. */
  releaseRequestsPerMinute: number;
  /** Chance that a holder dies right after a renew that landed late (a retry after its heartbeat). */
  crashAfterLateRenew: number;
  /** Per hold: KooDrive drops the lock by itself meanwhile. */
  droppedPerHold: number;
  /**
   * A stretch in which one worker's renewals land as late as the protocol allows, and it dies right after: each
   * renew after a heartbeat fails until shortly before the next heartbeat is due, the last one lands at the end of
   * the KooDrive request bound (this worker's client waits MAX_KOODRIVE_REQUEST_SECONDS), the holder crashes on
   * its answer and KooDrive fails every DELETE of that lock until it expires. The sweep then keeps the item
   * RELEASE_FAILED until it judges the lock certainly expired: the one path that tests that bound against the
   * model's lock (a bound short by the lease closes it while the late renewal keeps it live).
   */
  lateRenewBurst?: { worker: number; from: number; ms: number };
}

const burst = (rng: Rng, p: number, minMs: number, maxMs: number) =>
  rng.chance(p) ? { from: rng.int(0, WORK_MS - minMs), ms: rng.int(minMs, maxMs) } : undefined;

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
    duplicate: ledger ? 0.005 * scale : 0,
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
    sweepCrashMidRelease: rng.pick([0, 0, 0.1]),
    releaseRequestsPerMinute: rng.pick([0, 1, 3]),
    revive: rng.chance(0.5),
    lag: {
      readLagMs: rng.pick([0, 0, 1000, 5000, 20_000]),
      indexLagMs: rng.pick([0, 500, 2000, 10_000, 20_000]),
    },
    ...optional(
      'renewOutage',
      rng.chance(0.25) ? { worker: rng.int(1, 2), ...burst(rng, 1, 10 * MINUTE, 14 * MINUTE)! } : undefined,
    ),
    ...optional('koodriveOutage', burst(rng, 0.15, MINUTE, 4 * MINUTE)),
    ...optional('releaseOutage', burst(rng, 0.3, 11 * MINUTE, 14 * MINUTE)),
    ...optional('ledgerOutage', burst(rng, 0.15, 2 * MINUTE, 6 * MINUTE)),
    droppedPerHold: rng.pick([0, 0, 0.05]),
    crashAfterLateRenew: rng.pick([0, 0.3]),
    renewFlaps: rng.chance(0.5)
      ? Array.from({ length: rng.int(10, 25) }, () => ({
          from: rng.int(0, WORK_MS),
          ms: rng.int(5_000, 40_000),
        }))
      : [],
    // Drawn last: the plans of schedules without the burst stay as they were.
    ...optional(
      'lateRenewBurst',
      rng.chance(0.2) ? { worker: rng.int(1, 2), ...burst(rng, 1, 4 * MINUTE, 8 * MINUTE)! } : undefined,
    ),
    closePerWorker: rng.pick([0, 0.1, 0.3]),
  };
}

/** `{ [key]: value }` when value is defined, else nothing (exactOptionalPropertyTypes). */
function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [k in K]: V });
}

const within = (b: { from: number; ms: number } | undefined, at: number): boolean =>
  b !== undefined && at >= SIM_EPOCH_MS + b.from && at < SIM_EPOCH_MS + b.from + b.ms;

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
  const coverage = new Coverage();
  const model = new KooDriveModel(() => scheduler.now, p.revive);
  const store = new MemoryLedger({ now: () => net.ledgerCallerNow });
  faults.add(p.revive ? 'koodrive.revives' : 'koodrive.noRevive');
  if (p.renewOutage) faults.add('burst.renewOutage');
  if (p.koodriveOutage) faults.add('burst.koodriveOutage');
  if (p.releaseOutage) faults.add('burst.releaseOutage');
  for (const _ of p.renewFlaps) faults.add('burst.renewFlap');
  if (p.ledgerOutage) faults.add('burst.ledgerOutage');
  if (p.lateRenewBurst) faults.add('burst.lateRenew');
  const outageRng = rng.fork();
  /** Locks whose DELETE KooDrive fails until the time given. */
  const undeletable = new Map<string, number>();
  net.outage = (actor, what, subject) => {
    const now = scheduler.now;
    if (what === 'kd.renew' && subject !== undefined) {
      // A renew on its way while the lock expires (the last renewal in flight): revives it, or is refused.
      const lock = model.locks.get(subject);
      const left = lock === undefined ? Infinity : lock.expiresAt - now;
      if (
        lock?.releasedAt === undefined &&
        left >= 0 &&
        left < KOODRIVE_TIMEOUT_MS &&
        outageRng.chance(0.5)
      ) {
        faults.add('koodrive.renewInFlightAtExpiry');
        return 'slow';
      }
    }
    if (what.startsWith('ledger.')) return within(p.ledgerOutage, now) ? 'down' : undefined;
    if (what === 'kd.renew' && subject !== undefined && lateRenewing(actor, now)) {
      // Renewals fail until the last seconds before the next heartbeat is due; then one lands late.
      const record = checker.records.get(subject);
      const base = record?.ledgerBase;
      if (record !== undefined && base !== undefined) {
        return now < base + record.proc.timing.heartbeatMs - 3_000 ? 'down' : 'late';
      }
    }
    if (within(p.koodriveOutage, now)) return 'down';
    if (what === 'kd.release' && within(p.releaseOutage, now)) return 'down';
    if (what === 'kd.release' && subject !== undefined && now < (undeletable.get(subject) ?? 0))
      return 'down';
    if (what === 'kd.renew' && p.renewFlaps.some((flap) => within(flap, now))) return 'down';
    if (actor.name.startsWith('sweep')) return undefined;
    const cutOff =
      what === 'kd.renew' &&
      p.renewOutage !== undefined &&
      actor.name.startsWith(`w${p.renewOutage.worker}.`) &&
      within(p.renewOutage, now);
    return cutOff ? 'down' : undefined;
  };
  /** The worker of the late-renew burst, inside its stretch. */
  const lateRenewing = (actor: Actor, at: number): boolean =>
    p.lateRenewBurst !== undefined &&
    actor.name.startsWith(`w${p.lateRenewBurst.worker}.`) &&
    within(p.lateRenewBurst, at);
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
    indexLagMs: p.lag.indexLagMs,
    readLagMs: p.lag.readLagMs,
    undisturbed:
      !p.renewOutage &&
      !p.koodriveOutage &&
      !p.releaseOutage &&
      !p.ledgerOutage &&
      !p.lateRenewBurst &&
      p.renewFlaps.length === 0,
  });
  model.observer = {
    created: (lock, by) => checker.created(lock, by),
    released: (lock, by, at) => checker.released(lock, by, at),
    answered: (branch, lockId) => {
      coverage.hit(branch);
      if (trace && branch !== 'koodrive.renew.live') note(`koodrive ${branch} ${lockId}`);
    },
  };
  const sweepActors = new Map<string, Actor>();
  const service = new ServiceLedger(store, () => scheduler.now, rng.fork(), p.lag, coverage, {
    claimed: (lockId, by, from) => {
      const actor = sweepActors.get(by);
      if (actor) checker.claimed(lockId, actor, from);
    },
    closedExpired: (lockId, by) => checker.closedExpired(lockId, by),
    claimLost: (lockId) => checker.claimLost(lockId),
    heartbeatWritten: (lockId, at) => checker.heartbeatWritten(lockId, at),
    releaseRecorded: (lockId, by, before, after, forced) =>
      checker.releaseRecorded(lockId, by, before, after, forced),
  });
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

  /** The ledger a holder writes through (it records the heartbeatAt values holders put there, for the checker). */
  const observedHolderLedger: HolderLedger = service.holder();

  const startWorker = (index: number, incarnation: number, skewMs: number, workerRng: Rng): void => {
    const actor = scheduler.actor(`w${index}.${incarnation}`, { skewMs });
    const { leaseSeconds, timing } = leaseFor(workerRng, p.allowanceSeconds);
    checker.addProc({ actor, timing });
    // The late-renew burst's worker waits as long for KooDrive as a holder may (its renewals land that late).
    const koodriveTimeoutMs =
      p.lateRenewBurst?.worker === index ? MAX_KOODRIVE_REQUEST_SECONDS * 1000 : KOODRIVE_TIMEOUT_MS;
    const koodrive = koodrivePorts(net, workerRng.fork(), model, actor, koodriveTimeoutMs, {
      acknowledged: (a, op, lockId, sentAt) => checker.koodriveAck(a, op, lockId, sentAt),
      renewing: (lockId) => checker.renewing(actor, lockId, store.items.get(lockId)),
      answered: (op, lockId, answer) => {
        if (op === 'renew') {
          coverage.hit(
            answer.ok
              ? 'holder.renew'
              : answer.kind === 'permanent'
                ? 'holder.renew.refused'
                : 'holder.renew.failed',
          );
        }
        checker.holderAnswered(actor, op, lockId, answer);
        // A renew that got through long after its heartbeat (a retry): the worst moment to die for a bound that
        // counts from the heartbeat (certainly expired).
        const landed = checker.records.get(lockId)?.lastHeartbeatLandedAt;
        const burst = lateRenewing(actor, scheduler.now);
        if (
          op === 'renew' &&
          answer.ok &&
          landed !== undefined &&
          scheduler.now - landed > LATE_RENEW_MS &&
          (burst || workerRng.chance(p.crashAfterLateRenew))
        ) {
          crash('holder.crashAfterLateRenew');
          // …and KooDrive fails every DELETE of that lock until it expires: a sweep that believes it expired
          // earlier closes it while it is live.
          const lock = model.locks.get(lockId);
          if (lock && lock.expiresAt + 2 * MINUTE < end && (burst || workerRng.chance(0.5))) {
            undeletable.set(lockId, lock.expiresAt);
          }
        }
      },
    });
    const networkLedger = ledgerPorts(net, actor, observedHolderLedger, {
      acknowledged: (a, op, lockId, sentAt) => {
        if (op === 'ledger.recordAcquired' || op === 'ledger.recordHeartbeat') {
          checker.ledgerAck(a, lockId, sentAt);
        }
      },
      // The holder learned that its item is someone else's now.
      failed: (_, op, lockId, error) => {
        if (op === 'ledger.recordHeartbeat' && error instanceof LockLostError) checker.takenOver(lockId);
      },
    });
    const ledger = variant.holderLedger ? variant.holderLedger(networkLedger, koodrive) : networkLedger;
    const clock = variant.holderClock ? variant.holderClock(actor) : actor.clock;
    const holder = new LockHolder({
      name: actor.name,
      leaseSeconds,
      clockSkewSeconds: p.allowanceSeconds,
      koodrive: variant.holderKooDrive ? variant.holderKooDrive(koodrive) : koodrive,
      ledger,
      clock,
      random: workerRng.fork().next,
      onReleaseError: (_, lock) => {
        coverage.hit('holder.releaseFailed');
        checker.releaseFailed(lock.lockId);
      },
    });

    const restart = () => {
      if (scheduler.now + MINUTE < workEnd) {
        scheduler.after(workerRng.int(5_000, 60_000), () =>
          startWorker(index, incarnation + 1, skewMs, workerRng),
        );
      }
    };

    const crash = (kind: string) => {
      if (actor.dead) return;
      faults.add(kind);
      note(`${actor.name} crashes`);
      actor.crash();
      checker.crashed(actor);
      restart();
    };

    // A planned stop (a deploy, a scale-in, a spot reclaim): SIGTERM calls close(), which frees the locks the
    // worker holds, then the process exits and a new one starts.
    if (workerRng.chance(p.closePerWorker)) {
      scheduler.after(workerRng.int(10_000, 8 * MINUTE), () => {
        if (actor.dead) return;
        const working = checker.closing(actor);
        faults.add('holder.close');
        note(`${actor.name} closes with ${working} lock(s) in work`);
        void holder.close().then(() => {
          if (working > 0) coverage.hit('holder.closed');
          if (actor.dead) return;
          checker.closed(actor);
          crash('holder.exitAfterClose');
        });
      });
    }

    const loop = async (): Promise<void> => {
      while (actor.clock.now() - skewMs < workEnd) {
        const userId = workerRng.pick(users);
        const moduleCode = workerRng.pick(modules);
        // Some backups outlast KooDrive's 10-minute lock (the holder must renew it on time and keep its lease), and
        // the holder cut off from KooDrive's renewals now and then works that long too.
        const long = workerRng.chance(p.renewOutage?.worker === index ? 0.5 : 0.03);
        const workMs = long
          ? workerRng.int(11 * MINUTE, 15 * MINUTE)
          : workerRng.chance(0.3)
            ? workerRng.int(1_000, 20_000)
            : workerRng.int(20_000, 4 * MINUTE);
        holds += 1;
        const holdStart = scheduler.now;
        if (workerRng.chance(p.crashPerHold)) {
          scheduler.after(workerRng.int(0, workMs + 5_000), () => crash('holder.crash'));
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
        const dropAt = workerRng.chance(p.droppedPerHold) ? workerRng.int(0, workMs) : undefined;
        pendingHolds.set(actor, (pendingHolds.get(actor) ?? 0) + 1);
        let lockId: string | undefined;
        try {
          await holder.hold(userId, moduleCode, async (lease: Lease) => {
            lockId = lease.lockId;
            checker.workStarted(lease.lockId);
            lease.signal.addEventListener('abort', () =>
              checker.gaveUp(lease.lockId, String(lease.signal.reason)),
            );
            if (dropAt !== undefined) {
              // KooDrive drops the lock by itself (another device of the user, support): no protocol actor did.
              scheduler.after(dropAt, () => {
                faults.add('koodrive.droppedLock');
                note(`${OUT_OF_BAND} drops ${lease.lockId}`);
                model.release(lease, OUT_OF_BAND);
              });
            }
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
          if (error instanceof AcquireAbortedError) {
            coverage.hit('holder.acquireAborted');
            lockId = error.lockId;
            if (!error.undone) checker.releaseFailed(lockId);
          } else if (error instanceof LockLostError) {
            const why = error.message;
            coverage.hit(
              why.includes('within the safe time')
                ? 'holder.lost.safeTime'
                : why.includes('refused to renew')
                  ? 'holder.lost.refused'
                  : why.includes('ledger status') ||
                      why.includes('held by') ||
                      why.includes('not in the ledger')
                    ? 'holder.lost.takenOver'
                    : 'holder.lost.other',
            );
          }
        }
        if (lockId !== undefined && !actor.dead) checker.holdReturned(actor, lockId);
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
  const invoke = (tickAt: number, startAt: number, late: boolean, duplicate: boolean): void => {
    // The last minutes are calm for the sweep: what it left behind is judged at the end.
    const calm = startAt > end - CALM_MS;
    const crashAfterClaim = sweepRng.chance(p.sweepCrashAfterClaim) && !calm;
    const killed = sweepRng.chance(p.sweepKilled) && !calm;
    const killAfter = killed ? sweepRng.int(0, SWEEP_TIMEOUT_MS) : undefined;
    const invocationRng = sweepRng.fork();
    scheduler.at(startAt, () => {
      sweeps += 1;
      // Not a fault: the schedule does not wait for the previous invocation to end.
      if (running.some((other) => !other.dead)) faults.add('sweep.overlapping');
      const actor = scheduler.actor(`sweep${sweeps}`, { skewMs: sweepSkewMs });
      sweepActors.set(actor.name, actor);
      running = [...running.filter((other) => !other.dead), actor];
      const startedAt = scheduler.now;
      checker.sweepStarted(startedAt);
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
        // Late from its tick on: a lock that waited for that tick waited longer.
        checker.sweepDisrupted(tickAt);
      }
      const observed = service.sweep(actor.name);
      let sweepLedger: SweepLedger = observed;
      if (crashAfterClaim) {
        sweepLedger = {
          ...observed,
          claim: async (item, leaseSeconds) => {
            const claimed = await observed.claim(item, leaseSeconds);
            if (claimed) disrupt('sweep.crashAfterClaim');
            return claimed;
          },
        };
      }
      if (variant.sweepLedger) sweepLedger = variant.sweepLedger(sweepLedger, store);
      const ledger = ledgerPorts(net, actor, sweepLedger);
      const ports = koodrivePorts(net, invocationRng.fork(), model, actor, KOODRIVE_TIMEOUT_MS, {
        answered: (op, lockId, answer) => {
          if (op === 'release') checker.sweepDeleteAnswered(lockId, answer.ok);
        },
      });
      const crashRng = invocationRng.fork();
      // The sweep dies mid-release now and then: its DELETE is on its way, its outcome write never happens.
      const gateway: LockGateway = {
        release: (lock) => {
          if (crashRng.chance(p.sweepCrashMidRelease) && !calm) {
            scheduler.after(crashRng.int(0, 3_000), () => disrupt('sweep.crashMidRelease'));
          }
          return ports.release(lock);
        },
        refreshCredentials: (v) => ports.refreshCredentials(v),
      };
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
        (report) => {
          if (report.summary.skipped > 0) coverage.hit('sweep.skipped');
          for (const result of report.results) {
            if (result.error?.kind === 'deadline') coverage.hit('sweep.deadline');
          }
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
    invoke(at, startAt, late, false);
    // EventBridge delivers at least once: now and then the same tick invokes the sweep twice.
    if (sweepRng.chance(p.sweepDuplicate)) invoke(at, startAt + sweepRng.int(0, 200), false, true);
  }

  // ---- release requests (SQS and direct invokes of the release function) ----

  const releaseRng = rng.fork();
  let releases = 0;
  /** 1–3 locks to ask for: live ones, stopped holders' ones, and ones the ledger never knew (or KooDrive never had). */
  const pickLocks = (): LockRef[] => {
    const records = [...checker.records.values()];
    const live = records.filter((r) => r.working && !r.settled && !r.proc.actor.dead);
    const stopped = records.filter((r) => r.crashedAt !== undefined || r.returnedAt !== undefined);
    // A lock the ledger never had whose ID someone else could know: its holder gave up recording it (an aborted
    // acquire). (A lock between its create and its record is known to its holder alone.)
    const unknown = records.filter((r) => r.lastHeartbeatAt === undefined && r.returnedAt !== undefined);
    return Array.from({ length: releaseRng.int(1, 3) }, () => {
      const roll = releaseRng.next();
      const from = roll < 0.4 ? live : roll < 0.75 ? stopped : unknown;
      if (from.length === 0 || releaseRng.chance(0.15)) {
        return { lockId: `never${releaseRng.int(1, 99)}@100`, userId: releaseRng.pick(users) };
      }
      const { lock } = releaseRng.pick(from);
      return { lockId: lock.lockId, userId: lock.userId };
    });
  };
  const invokeRelease = (): void => {
    releases += 1;
    const via = releaseRng.chance(0.6) ? 'sqs' : 'direct';
    // An operator forces a direct invoke now and then; a force key in an SQS body must be refused.
    const force = releaseRng.chance(via === 'direct' ? 0.3 : 0.05);
    const request: ReleaseRequest = { via, force, locks: pickLocks() };
    const name = `release${releases}${via === 'direct' && force ? FORCED_SUFFIX : ''}`;
    const actor = scheduler.actor(name, { skewMs: sweepSkewMs });
    const startedAt = scheduler.now;
    scheduler.after(RELEASE_TIMEOUT_MS, () => actor.crash());
    const invocationRng = releaseRng.fork();
    const ports = koodrivePorts(net, invocationRng.fork(), model, actor, KOODRIVE_TIMEOUT_MS);
    note(`${name} asks ${via}${force ? ' (force)' : ''} for ${request.locks.map((l) => l.lockId).join(' ')}`);
    const releaseLedger = ledgerPorts(net, actor, service.release(name));
    void runRelease(request, name, {
      ledger: variant.releaseLedger ? variant.releaseLedger(releaseLedger) : releaseLedger,
      clock: actor.clock,
      random: invocationRng.fork().next,
      gateway: ports,
      remainingMs: () => startedAt + RELEASE_TIMEOUT_MS - actor.clock.monotonic(),
      clockSkewSeconds: p.allowanceSeconds,
      checkLeases: !variant.releaseWithoutLeaseCheck,
      options: { ...DEFAULT_ENGINE_OPTIONS, attemptTimeoutMs: KOODRIVE_TIMEOUT_MS },
      onResult: (result) => {
        checker.releaseReported(name, result.lockId, result.outcome);
        if (result.outcome === 'held') {
          checker.refusedHeld(
            name,
            result.lockId,
            startedAt + sweepSkewMs,
            service.leaseEnds.get(result.lockId),
          );
        }
        if (result.outcome === 'failed') {
          const kind = result.error?.kind ?? 'unknown';
          coverage.hit(
            kind === 'invalid-input' && result.error?.message.includes('force')
              ? 'release.sqsForceRefused'
              : result.attempts === 0 && result.error?.message.includes('could not be read')
                ? 'release.unreadable'
                : `release.failed.${kind}`,
          );
        } else {
          coverage.hit(`release.${result.outcome}${force && via === 'direct' ? '.forced' : ''}`);
        }
      },
    }).then(
      () => actor.crash(),
      (error: unknown) => {
        note(`${name} failed: ${(error as Error).name}`);
        actor.crash();
      },
    );
  };
  if (p.releaseRequestsPerMinute > 0) {
    const count = Math.round((p.releaseRequestsPerMinute * WORK_MS) / MINUTE);
    for (let i = 0; i < count; i += 1) {
      scheduler.at(SIM_EPOCH_MS + releaseRng.int(0, WORK_MS), invokeRelease);
    }
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
    coverage: coverage.counts,
    ...(trace ? { trace } : {}),
  };
}

class StopSchedule extends Error {}
