/**
 * The simulation's properties, checked as the schedule runs (each from what the models and the network saw,
 * never from what the code under test computed):
 *
 * - exclusion: whenever a holder's work passes `assertHeld()`, its KooDrive lock is live in the model, and no
 *   other holder of the same user and module passes `assertHeld()` after it took over (held intervals never
 *   overlap). A lock KooDrive itself dropped (out of band) is exempt until its holder was told so by a renew
 *   refusal; after that refusal, passing `assertHeld()` is a violation;
 * - no false release: a sweep's DELETE never frees the lock of a holder that is alive, still working, and within
 *   its safe time, measured here on true time: the start of its last ledger write (acquire or heartbeat) it saw
 *   succeed before its previous safe time ran out + safe time, and never later than the start of its last
 *   KooDrive create or renew it saw succeed + 600 s − margin;
 * - liveness: the lock of every holder that stopped (crashed, or returned from hold() with the lock still live:
 *   a failed release, a lost lease, a takeover) is freed within the bound (see `livenessBound`);
 * - no leak: a holder that returns from hold(), or whose close() resolved, has freed its lock, unless it saw its
 *   release fail or a takeover;
 *   and a lock the ledger knew is never left to KooDrive's own 10-minute expiry while an undisturbed sweep ran in
 *   time to free it (expiry would otherwise hide every leak);
 * - every EXPIRED close is checked against the model: KooDrive's lock is no longer live when it is closed;
 * - claims are exclusive: no sweep claims a lock another sweep claimed while that sweep still runs;
 * - a lost lease is never renewed: when a holder sends a KooDrive renew, its ledger item is still its own HELD item;
 * - no early give-up: unless its process is closing, a holder gives its lease up only once its safe time (measured
 *   as for no false release, from the writes and renewals it saw succeed) has run out, or after a refusal it saw, a
 *   forced or an out-of-band release;
 * - no false refusal: the release path answers `held` only for a lock some state of its ledger item showed live
 *   when the request started (a HELD or RELEASING state whose heartbeatAt + lease + skew allowance had not passed
 *   by the release function's clock): a dead worker's lock is not refused to the on-call engineer or a producer;
 * - quiescence: at the end, after a long stretch without new work, no item is HELD, RELEASING or RELEASE_FAILED
 *   and no KooDrive lock of a finished or dead holder is still live.
 */
import { timeToFreeBoundSeconds, type HolderTiming } from '../../src/core/lease';
import type { Actor, Scheduler } from './clock';
import { LOCK_MS, type KooDriveModel, type ModelLock } from './koodrive-model';

/** Who releases a lock out of band in KooDrive (a user's other device, support): no protocol actor. */
export const OUT_OF_BAND = 'koodrive-console';
/** The name of a release invocation an operator forced (`"force": true`) ends so. */
export const FORCED_SUFFIX = '-force';
const isForced = (by: string | undefined): boolean => by?.endsWith(FORCED_SUFFIX) ?? false;

export interface Violation {
  property:
    | 'exclusion'
    | 'no-false-release'
    | 'liveness'
    | 'leak'
    | 'expired-close'
    | 'double-claim'
    | 'quiescence'
    | 'lost-lease-renewed'
    | 'early-give-up'
    | 'live-lease-overwritten'
    | 'false-report'
    | 'false-refusal'
    | 'stated-bound';
  at: number;
  message: string;
}

/** A holder process incarnation. */
export interface HolderProc {
  actor: Actor;
  timing: HolderTiming;
  /** close() was called: its leases end on purpose. */
  closing?: boolean;
}

/** What the checker knows about one KooDrive lock a holder created. */
export interface LockRecord {
  lock: ModelLock;
  proc: HolderProc;
  /** The holder learned the lock ID (its create answer arrived). */
  known: boolean;
  /** True start of the last ledger write (recordAcquired / recordHeartbeat) the holder saw succeed in time. */
  ledgerBase?: number;
  /** True start of the last create / renew the holder saw succeed in time. */
  koodriveBase?: number;
  /** The holder's last heartbeatAt written to the ledger (its own clock, read when the write was sent). */
  lastHeartbeatAt?: number;
  /** True time that write landed in the ledger (later than the reading when the write was delayed in flight). */
  lastHeartbeatLandedAt?: number;
  working: boolean;
  settled: boolean;
  /** True time the holder crashed while this lock was not yet freed. */
  crashedAt?: number;
  /** True time hold() returned (or gave up on an aborted acquire) with this lock. */
  returnedAt?: number;
  /** True time a renew refusal reached the holder. */
  refusedAt?: number;
  /** A heartbeat of the holder was refused: the item is someone else's now. */
  takenOver?: boolean;
  /** The holder saw one of its KooDrive releases of this lock fail. */
  releaseFailed?: boolean;
  /** Sweep claims of this lock that lost their version check (an eventually consistent read, a write since). */
  lostClaims?: number;
}

export interface LivenessSample {
  lockId: string;
  leaseSeconds: number;
  /** From the holder's last recorded heartbeat (true time) to the lock's freeing. */
  ttfMs: number;
  boundMs: number;
  /** Sweeps that were disrupted (crashed, killed, or hit an injected fault) while the lock waited. */
  extended: boolean;
  /** Freed by KooDrive's expiry because it never reached the ledger. */
  byExpiry: boolean;
  /** The stated bound, src/core/lease.ts's timeToFreeBoundSeconds for this lease and the schedule's allowance (ms). */
  statedBoundMs: number;
  /** Freed by a sweep in a schedule without outage bursts and with no sweep disrupted while it waited. */
  undisturbed: boolean;
}

export interface CheckerOptions {
  skewAllowanceMs: number;
  sweepPeriodMs: number;
  /** The sweep's skew (true → sweep clock). */
  sweepSkewMs: number;
  /** How late a scheduled sweep may start. */
  sweepJitterMs: number;
  /** How long an undisturbed sweep takes from its start to a DELETE that KooDrive applied (one attempt's timeout). */
  releaseSlackMs: number;
  /** The longest lease a sweep's claim takes (its remaining time, at least the sweep's minimum claim lease). */
  claimLeaseMs: number;
  /** The longest the sweep index lags behind the items. */
  indexLagMs: number;
  /** The longest an item read through it lags (an eventually consistent read may be older than the item). */
  readLagMs: number;
  /** The schedule injected no outage burst (renew, KooDrive, DELETE or ledger outages, renew flaps, late renewals). */
  undisturbed: boolean;
}

export class Checker {
  readonly violations: Violation[] = [];
  readonly records = new Map<string, LockRecord>();
  readonly liveness: LivenessSample[] = [];
  /** Sweeps that were disrupted: their start, and the crash, the end of a faulted run, or a late start (true time). */
  readonly disruptedSweeps: Array<{ startedAt: number; at: number }> = [];
  /** Every sweep invocation's start (true time). */
  readonly sweepStarts: number[] = [];
  /** Each lock's latest claim: the sweep that wrote it and the item's version it left. */
  private readonly claims = new Map<string, { by: Actor; version: number; at: number }>();
  /** Locks an operator forced the release of (the ledger item carries forcedAt): no lease protects them any more. */
  private readonly forced = new Set<string>();
  /** Locks whose DELETE by a sweep was answered with a failure (KooDrive down for the sweep). */
  private readonly sweepDeleteFailed = new Set<string>();
  private readonly procs = new Map<string, HolderProc>();
  /** Per user+module: the lock that last passed assertHeld(), and the locks another one took over from. */
  private readonly current = new Map<string, string>();
  private readonly superseded = new Set<string>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly model: KooDriveModel,
    private readonly options: CheckerOptions,
  ) {}

  private violate(property: Violation['property'], message: string): void {
    this.violations.push({ property, at: this.scheduler.now, message });
  }

  addProc(proc: HolderProc): void {
    this.procs.set(proc.actor.name, proc);
  }

  // ---- KooDrive model events ----

  created(lock: ModelLock, by: string): void {
    const proc = this.procs.get(by);
    if (proc === undefined) return;
    this.records.set(lock.lockId, { lock, proc, known: false, working: false, settled: false });
  }

  released(lock: ModelLock, by: string, at: number): void {
    const record = this.records.get(lock.lockId);
    if (record === undefined || by === record.proc.actor.name || by === OUT_OF_BAND) return;
    if (isForced(by) || this.forced.has(lock.lockId)) return;
    if (record.proc.actor.dead || !record.known || record.settled) return;
    const deadline = this.deadline(record);
    if (deadline !== undefined && at < deadline) {
      this.violate(
        'no-false-release',
        `${by} released ${lock.lockId} of live holder ${record.proc.actor.name} ${fmt(deadline - at)} before its safe time ended`,
      );
    }
  }

  // ---- what holders saw ----

  /** The holder saw a create or renew succeed (sent at `sentAt`). */
  koodriveAck(actor: Actor, op: 'create' | 'renew', lockId: string, sentAt: number): void {
    const record = this.records.get(lockId);
    if (record === undefined || record.proc.actor !== actor) return;
    if (op === 'create') record.known = true;
    const deadline = this.deadline(record);
    if (deadline !== undefined && this.scheduler.now >= deadline) return;
    record.koodriveBase = Math.max(record.koodriveBase ?? sentAt, sentAt);
  }

  /** The holder saw recordAcquired / recordHeartbeat succeed (sent at `sentAt`). */
  ledgerAck(actor: Actor, lockId: string, sentAt: number): void {
    const record = this.records.get(lockId);
    if (record === undefined || record.proc.actor !== actor) return;
    const deadline = this.deadline(record);
    if (deadline !== undefined && this.scheduler.now >= deadline) return;
    record.ledgerBase = Math.max(record.ledgerBase ?? sentAt, sentAt);
  }

  /** A heartbeatAt a holder's write put in the ledger. */
  heartbeatWritten(lockId: string, heartbeatAt: number): void {
    const record = this.records.get(lockId);
    if (record === undefined) return;
    if (record.lastHeartbeatAt === undefined || heartbeatAt >= record.lastHeartbeatAt) {
      record.lastHeartbeatAt = heartbeatAt;
      record.lastHeartbeatLandedAt = this.scheduler.now;
    }
  }

  /** The safe time's end on true time, once the lease started. */
  deadline(record: LockRecord): number | undefined {
    if (record.ledgerBase === undefined) return undefined;
    const { safeMs, marginMs } = record.proc.timing;
    return Math.min(record.ledgerBase + safeMs, (record.koodriveBase ?? -Infinity) + LOCK_MS - marginMs);
  }

  workStarted(lockId: string): void {
    const record = this.records.get(lockId);
    if (record) record.working = true;
  }

  workSettled(lockId: string): void {
    const record = this.records.get(lockId);
    if (record) record.settled = true;
  }

  /** Work passed assertHeld() now. */
  passed(lockId: string): void {
    const record = this.records.get(lockId);
    if (record === undefined) return;
    const { lock } = record;
    if (record.refusedAt !== undefined) {
      this.violate(
        'exclusion',
        `${record.proc.actor.name} passed assertHeld() on ${lockId} ${fmt(this.scheduler.now - record.refusedAt)} after KooDrive refused to renew it`,
      );
      return;
    }
    if (record.takenOver) {
      this.violate(
        'exclusion',
        `${record.proc.actor.name} passed assertHeld() on ${lockId} after the ledger refused its heartbeat`,
      );
      return;
    }
    // KooDrive dropped it by itself, or an operator forced its release: the holder cannot know before its next
    // heartbeat is refused (by the ledger, or by KooDrive).
    if (lock.releasedBy === OUT_OF_BAND || isForced(lock.releasedBy) || this.forced.has(lockId)) return;
    if (!this.model.isLive(lock)) {
      this.violate(
        'exclusion',
        `${record.proc.actor.name} passed assertHeld() on ${lockId}, which KooDrive ${
          lock.releasedAt !== undefined ? `released (by ${lock.releasedBy ?? '?'})` : 'let expire'
        } ${fmt(this.scheduler.now - (this.model.freedAt(lockId) ?? this.scheduler.now))} ago`,
      );
    }
    const key = `${lock.userId}/${lock.moduleCode}`;
    if (this.superseded.has(lockId)) {
      this.violate(
        'exclusion',
        `${record.proc.actor.name} passed assertHeld() on ${lockId} after another holder of ${key} did`,
      );
    }
    const previous = this.current.get(key);
    if (previous !== lockId) {
      if (previous !== undefined) this.superseded.add(previous);
      this.current.set(key, lockId);
    }
  }

  /** A holder sends a KooDrive renew: its ledger item must still be its own HELD item (a lost lease is never renewed). */
  renewing(
    actor: Actor,
    lockId: string,
    item: { status: string; holder?: string; forcedAt?: number } | undefined,
  ): void {
    if (item === undefined || (item.status === 'HELD' && item.holder === actor.name)) return;
    // An operator forced its release: the holder learns it at its next heartbeat, renewing until then.
    if (item.forcedAt !== undefined) return;
    this.violate(
      'lost-lease-renewed',
      `${actor.name} renews ${lockId} in KooDrive although its ledger item is ${item.status}${
        item.status === 'HELD' ? ` by ${item.holder ?? 'nobody'}` : ''
      }`,
    );
  }

  /** A renew or release answer reached the holder `actor`. */
  holderAnswered(
    actor: Actor,
    op: 'renew' | 'release',
    lockId: string,
    answer: { ok: true } | { ok: false; kind: string },
  ): void {
    const record = this.records.get(lockId);
    if (record === undefined || record.proc.actor !== actor || answer.ok) return;
    if (op === 'release') record.releaseFailed = true;
    else if (answer.kind === 'permanent' || answer.kind === 'invalid-input') {
      record.refusedAt ??= this.scheduler.now;
    }
  }

  /** A sweep's DELETE of the lock was answered with a failure. */
  sweepDeleteAnswered(lockId: string, ok: boolean): void {
    if (!ok) this.sweepDeleteFailed.add(lockId);
  }

  /** A sweep's claim of the lock lost its version check: the lock waits for the next sweep. */
  claimLost(lockId: string): void {
    const record = this.records.get(lockId);
    if (record) record.lostClaims = (record.lostClaims ?? 0) + 1;
  }

  /** The holder reported a release it could not complete (onReleaseError, or an acquire it could not undo). */
  releaseFailed(lockId: string): void {
    const record = this.records.get(lockId);
    if (record) record.releaseFailed = true;
  }

  /**
   * The holder gave its lease up (its signal aborted). Before its safe time ended, with no refusal it saw (the ledger's
   * or KooDrive's) and no forced or out-of-band release, the worker stops for nothing and its backup is cut short.
   */
  gaveUp(lockId: string, why: string): void {
    const record = this.records.get(lockId);
    if (record === undefined || record.proc.actor.dead || record.proc.closing) return;
    if (record.takenOver || record.refusedAt !== undefined) return;
    const { lock } = record;
    if (lock.releasedBy === OUT_OF_BAND || isForced(lock.releasedBy) || this.forced.has(lockId)) return;
    const deadline = this.deadline(record);
    if (deadline !== undefined && this.scheduler.now < deadline) {
      this.violate(
        'early-give-up',
        `${record.proc.actor.name} gave up ${lockId} ${fmt(deadline - this.scheduler.now)} before its safe time ended, with no refusal seen (${why})`,
      );
    }
  }

  /** The holder's heartbeat was refused by the ledger: someone else owns the item now. */
  takenOver(lockId: string): void {
    const record = this.records.get(lockId);
    if (record) record.takenOver = true;
  }

  /**
   * hold() returned (or threw) for this lock while its process lives on: the holder released it, or saw its release
   * fail, or was taken over (the new owner releases it). Anything else is a leak the sweep would only hide.
   */
  holdReturned(actor: Actor, lockId: string): void {
    const record = this.records.get(lockId);
    if (record === undefined || record.proc.actor !== actor) return;
    record.returnedAt = this.scheduler.now;
    if (!this.model.isLive(record.lock) || record.takenOver || record.releaseFailed) return;
    this.violate(
      'leak',
      `${actor.name} returned from hold() with ${lockId} still live in KooDrive, without a failed release or a takeover`,
    );
  }

  /** close() resolved in the process of `actor`: every lock it held is free, unless its release failed or was taken over. */
  closed(actor: Actor): void {
    for (const record of this.records.values()) {
      if (record.proc.actor !== actor || !record.known) continue;
      if (!this.model.isLive(record.lock) || record.takenOver || record.releaseFailed) continue;
      this.violate(
        'leak',
        `${actor.name}'s close() resolved with ${record.lock.lockId} still live in KooDrive, without a failed release or a takeover`,
      );
    }
  }

  /**
   * The release path wrote an outcome over the item (`before` → `after`): never RELEASE_FAILED over the HELD item of
   * a holder whose lease is live, unless an operator forced it.
   */
  releaseRecorded(
    lockId: string,
    by: string,
    before: string | undefined,
    after: string,
    forced: boolean,
  ): void {
    if (forced) this.forced.add(lockId);
    const record = this.records.get(lockId);
    if (record === undefined || forced || before !== 'HELD' || after !== 'RELEASE_FAILED') return;
    const deadline = this.deadline(record);
    const live =
      !record.proc.actor.dead && !record.settled && deadline !== undefined && this.scheduler.now < deadline;
    if (live) {
      this.violate(
        'live-lease-overwritten',
        `${by} wrote RELEASE_FAILED over the HELD item of ${record.proc.actor.name}, ${fmt(deadline - this.scheduler.now)} before its safe time ended`,
      );
    }
  }

  /** The release path reported an outcome: a lock reported released is not live in KooDrive. */
  releaseReported(by: string, lockId: string, outcome: string): void {
    if (outcome !== 'released' && outcome !== 'alreadyReleased') return;
    const lock = this.model.locks.get(lockId);
    if (lock === undefined || !this.model.isLive(lock)) return;
    this.violate('false-report', `${by} reported ${lockId} ${outcome}, but KooDrive keeps it live`);
  }

  /**
   * The release path answered `held` for a lock, in a request that started at `startedAt` by its own clock. `leaseEnd`
   * is the latest heartbeatAt + lease any state of the item showed (undefined: never a HELD or RELEASING state).
   */
  refusedHeld(by: string, lockId: string, startedAt: number, leaseEnd: number | undefined): void {
    const liveUntil = leaseEnd === undefined ? undefined : leaseEnd + this.options.skewAllowanceMs;
    if (liveUntil !== undefined && liveUntil >= startedAt) return;
    this.violate(
      'false-refusal',
      `${by} refused ${lockId} as held, but ${
        liveUntil === undefined
          ? 'its ledger item never showed a lease'
          : `no state of its ledger item showed a lease past ${fmt(startedAt - liveUntil)} before the request`
      }`,
    );
  }

  /** A sweep invocation starts (true time). */
  sweepStarted(startedAt: number): void {
    this.sweepStarts.push(startedAt);
  }

  /** A sweep's claim was applied over `from` (the item as it was). */
  claimed(lockId: string, by: Actor, from: { status: string; version: number }): void {
    const previous = this.claims.get(lockId);
    if (
      previous !== undefined &&
      from.status === 'RELEASING' &&
      from.version === previous.version &&
      previous.by !== by &&
      !previous.by.dead
    ) {
      this.violate(
        'double-claim',
        `${by.name} claimed ${lockId} over the claim of ${previous.by.name}, which still runs`,
      );
    }
    this.claims.set(lockId, { by, version: from.version + 1, at: this.scheduler.now });
  }

  /** A sweep closed the item EXPIRED: KooDrive's lock must not be live any more. */
  closedExpired(lockId: string, by: string): void {
    const lock = this.model.locks.get(lockId);
    if (lock === undefined || !this.model.isLive(lock)) return;
    this.violate(
      'expired-close',
      `${by} closed ${lockId} EXPIRED while KooDrive keeps it live for another ${fmt(lock.expiresAt - this.scheduler.now)}`,
    );
  }

  /** The process of `actor` calls close() (a planned stop); answers how many of its locks are in work. */
  closing(actor: Actor): number {
    const proc = this.procs.get(actor.name);
    if (proc) proc.closing = true;
    return [...this.records.values()].filter((r) => r.proc.actor === actor && r.working && !r.settled).length;
  }

  crashed(actor: Actor): void {
    for (const record of this.records.values()) {
      if (record.proc.actor === actor && this.model.freedAt(record.lock.lockId) === undefined) {
        record.crashedAt = this.scheduler.now;
      }
    }
  }

  /**
   * A sweep was disrupted: it crashed or was killed now, or ended now after an injected fault, or started late now
   * (then `startedAt` is the tick it was due at).
   */
  sweepDisrupted(startedAt: number): void {
    this.disruptedSweeps.push({ startedAt, at: this.scheduler.now });
  }

  /**
   * The liveness bound for a crashed holder's lock that reached the ledger, as the latest true time it may be
   * freed. The item is stale by the sweep's clock at its last heartbeat reading + lease + skew allowance +
   * (holder skew − sweep skew), and visible to the sweep once that write landed (later when it was delayed in
   * flight); from the later of the two: + one period + the sweep's start jitter [the next sweep starts] + the
   * release slack [an undisturbed sweep's DELETE lands within one attempt's timeout]. Each disrupted sweep
   * meanwhile (crashed or killed after claiming, hit an injected fault, started late) adds the longest claim
   * lease + skew allowance + one period + the start jitter: a claim whose sweep died is stale after its lease +
   * the allowance, by the same sweep clock that wrote it.
   */
  livenessBound(record: LockRecord, basis: number, disrupted: number): number {
    const o = this.options;
    return (
      this.visibleAt(record, basis) +
      o.sweepPeriodMs +
      o.sweepJitterMs +
      o.releaseSlackMs +
      disrupted * (o.claimLeaseMs + o.skewAllowanceMs + o.sweepPeriodMs + o.sweepJitterMs) +
      (record.lostClaims ?? 0) * (o.sweepPeriodMs + o.sweepJitterMs)
    );
  }

  /**
   * src/core/lease.ts's timeToFreeBoundSeconds for this holder's lease and the schedule's clocks: the allowance,
   * each clock within it of true time (a difference of twice it), the sweep period and start jitter, and one KooDrive
   * attempt's timeout for the release.
   */
  statedBoundMs(record: LockRecord): number {
    const o = this.options;
    return (
      timeToFreeBoundSeconds({
        leaseSeconds: record.proc.timing.leaseMs / 1000,
        clockSkewSeconds: o.skewAllowanceMs / 1000,
        clockDifferenceSeconds: (2 * o.skewAllowanceMs) / 1000,
        schedulePeriodSeconds: o.sweepPeriodMs / 1000,
        scheduleJitterSeconds: o.sweepJitterMs / 1000,
        releaseSeconds: o.releaseSlackMs / 1000,
      }) * 1000
    );
  }

  /**
   * When the item is stale by the sweep's clock and listed by the index: the later of its last heartbeat reading
   * + lease + skew allowance + (holder skew − sweep skew) and the time that write landed + the index's or the
   * read's lag (a read older than the item's creation does not find it).
   */
  private visibleAt(record: LockRecord, basis: number): number {
    const o = this.options;
    const staleAt =
      basis + record.proc.timing.leaseMs + o.skewAllowanceMs + (record.proc.actor.skewMs - o.sweepSkewMs);
    return Math.max(staleAt, (record.lastHeartbeatLandedAt ?? staleAt) + Math.max(o.indexLagMs, o.readLagMs));
  }

  /**
   * At the end of the schedule: liveness of every stopped holder's lock (crashed, or hold() returned with the lock
   * live), no lock the ledger knew left to KooDrive's expiry, and quiescence.
   */
  finish(openItems: Iterable<{ lockId: string; status: string; sweepShard?: string }>): void {
    const now = this.scheduler.now;
    /**
     * Locks of stopped holders whose liveness bound (disrupted sweeps counted) had not run out when the schedule
     * ended: no sweep owed them anything yet, so neither their KooDrive lock nor their ledger item is judged by
     * quiescence (a holder that stopped, or whose release's ledger write failed, a lease before the end; a sweep that
     * lost a ledger answer in the last minutes and left its claim).
     */
    const pending = new Set<string>();
    for (const record of this.records.values()) {
      const stoppedAt = record.crashedAt ?? record.returnedAt;
      if (stoppedAt === undefined) continue;
      const lockId = record.lock.lockId;
      const freedAt = this.model.freedAt(lockId);
      const lock = this.model.locks.get(lockId);
      const byExpiry = lock?.releasedAt === undefined || lock.releasedAt > lock.expiresAt;
      if (record.lastHeartbeatAt === undefined) {
        // Never reached the ledger: only KooDrive's own expiry frees it.
        if (freedAt === undefined) {
          this.violate('liveness', `${lockId} never reached the ledger and is still live at the end`);
        } else if (record.crashedAt !== undefined) {
          this.liveness.push({
            lockId,
            leaseSeconds: record.proc.timing.leaseMs / 1000,
            ttfMs: freedAt - record.crashedAt,
            boundMs: LOCK_MS,
            extended: false,
            byExpiry: true,
            statedBoundMs: LOCK_MS,
            undisturbed: false,
          });
        }
        continue;
      }
      const basis = record.lastHeartbeatAt - record.proc.actor.skewMs;
      const end = freedAt ?? now;
      // A disrupted sweep that ran while the lock waited (from its heartbeat to its freeing) may have delayed it.
      const disrupted = this.disruptedSweeps.filter((d) => d.at >= basis && d.startedAt <= end).length;
      const bound = this.livenessBound(record, basis, disrupted) - basis;
      const who = `${record.crashedAt !== undefined ? 'crashed' : 'stopped'} holder ${record.proc.actor.name}`;
      if (now - basis <= bound) pending.add(lockId);
      // Still live, but its bound has not run out when the schedule ends: nothing to judge.
      if (freedAt === undefined && now - basis <= bound) continue;
      if (freedAt === undefined || freedAt - basis > bound) {
        this.violate(
          'liveness',
          `${lockId} of ${who} ${
            freedAt === undefined
              ? 'is still live at the end'
              : `was freed ${fmt(freedAt - basis)} after its last heartbeat`
          }; bound ${fmt(bound)} (${disrupted} disrupted sweep(s))${byExpiry && freedAt !== undefined ? ', by KooDrive expiry' : ''}`,
        );
      } else if (byExpiry && lock !== undefined) {
        this.expiryLeak(record, basis, lock.expiresAt, who);
      }
      if (freedAt !== undefined && record.crashedAt !== undefined) {
        const statedBoundMs = this.statedBoundMs(record);
        const undisturbed = this.options.undisturbed && disrupted === 0 && !byExpiry;
        this.liveness.push({
          lockId,
          leaseSeconds: record.proc.timing.leaseMs / 1000,
          ttfMs: freedAt - basis,
          boundMs: bound,
          extended: disrupted > 0,
          byExpiry,
          statedBoundMs,
          undisturbed,
        });
        // The stated bound (README, the time-to-free alarm) is a claim about undisturbed schedules: judge it there.
        if (undisturbed && freedAt - basis > statedBoundMs) {
          this.violate(
            'stated-bound',
            `${lockId} of ${who} was freed ${fmt(freedAt - basis)} after its last heartbeat in an undisturbed schedule, above the stated bound timeToFreeBoundSeconds() = ${fmt(statedBoundMs)}`,
          );
        }
      }
    }
    for (const item of openItems) {
      // An item the release path created for a lock the ledger never had is in no index: no sweep owns it (SQS
      // redelivers the request; an operator reads the report).
      if (item.status === 'RELEASE_FAILED' && item.sweepShard === undefined) continue;
      if (item.status === 'HELD' || item.status === 'RELEASING' || item.status === 'RELEASE_FAILED') {
        const record = this.records.get(item.lockId);
        if (record && !record.proc.actor.dead && !record.settled) continue;
        if (pending.has(item.lockId)) continue;
        // A sweep disrupted in the last minutes (a lost ledger answer: it hangs until its timeout) may have left a
        // claim, or the item untouched; the claim keeps the next sweeps off it for its lease + the allowance, and the
        // next sweep after that has not come yet.
        const claim = this.claims.get(item.lockId);
        const o = this.options;
        const window =
          o.claimLeaseMs + o.skewAllowanceMs + o.sweepPeriodMs + o.sweepJitterMs + o.releaseSlackMs;
        if (
          this.disruptedSweeps.some((d) => d.at >= (claim?.at ?? -Infinity) && d.startedAt + window > now)
        ) {
          continue;
        }
        this.violate(
          'quiescence',
          `${item.lockId} is still ${item.status} at the end, after its holder stopped`,
        );
      }
    }
    for (const record of this.records.values()) {
      if (!this.model.isLive(record.lock)) continue;
      if (!record.proc.actor.dead && !record.settled && record.working) continue;
      if (pending.has(record.lock.lockId)) continue;
      this.violate(
        'quiescence',
        `KooDrive lock ${record.lock.lockId} of ${record.proc.actor.name} is still live at the end`,
      );
    }
  }

  /**
   * A lock the ledger knew was freed by KooDrive's expiry: a leak, unless no sweep could have freed it first (every
   * sweep that started between the item turning visible and the expiry was disrupted, or a sweep's DELETE of it
   * failed: KooDrive was down for the sweep).
   */
  private expiryLeak(record: LockRecord, basis: number, expiresAt: number, who: string): void {
    const lockId = record.lock.lockId;
    if (this.sweepDeleteFailed.has(lockId)) return;
    const o = this.options;
    const from = this.visibleAt(record, basis);
    const until = expiresAt - o.releaseSlackMs;
    const disrupted = new Set(this.disruptedSweeps.map((d) => d.startedAt));
    // A disrupted sweep may have left a claim that keeps the next sweeps off the item until its lease ran out, and a
    // sweep running beside it (a duplicate invocation of the same tick) may have lost the claim race to it.
    const blocked = (at: number) =>
      this.disruptedSweeps.some(
        (d) => at + o.claimLeaseMs >= d.startedAt && at <= d.at + o.claimLeaseMs + o.skewAllowanceMs,
      );
    const fair = this.sweepStarts.filter(
      (at) => at >= from && at <= until && !disrupted.has(at) && !blocked(at),
    );
    if (fair.length === 0) return;
    this.violate(
      'leak',
      `${lockId} of ${who} was left to KooDrive's expiry ${fmt(expiresAt - basis)} after its last heartbeat, although ${fair.length} undisturbed sweep(s) ran after it was stale`,
    );
  }
}

export function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
