/**
 * The network between the simulated processes and the two services, as wrappers around the ports (production code
 * has no fault switches): latency, delayed calls, lost calls (never answered: the KooDrive client's own timeout
 * answers, a ledger call hangs), ambiguous calls (applied, but the caller sees an error), KooDrive 5xx and 429, and
 * ledger errors. Every answer reaches its caller through its actor: deferred while it is paused, never when dead.
 */
import type {
  AttemptOutcome,
  LockError,
  LockGateway,
  LockRef,
  LockResult,
  OutcomeRecorder,
} from '../../src/core/model';
import type { Actor, Rng, Scheduler } from './clock';
import type { CreateAnswer, KooDriveModel, RenewAnswer } from './koodrive-model';

/** Per-call probabilities of each fault, per service. */
export interface FaultRates {
  /** The call takes seconds instead of milliseconds (each way). */
  delay: number;
  /** The request never arrives; no answer (KooDrive: the client's timeout answers). */
  lostRequest: number;
  /** Applied, but the answer never arrives (KooDrive: the client's timeout answers). */
  lostResponse: number;
  /** Applied, but the caller sees an error. */
  ambiguous: number;
  /** Not applied; the caller sees a retryable error (KooDrive: 5xx). */
  error: number;
  /** KooDrive only: not applied, 429 with Retry-After. */
  throttle: number;
  /**
   * Ledger writes only: applied twice, the second copy (the same request, as an SDK retry after a lost answer
   * sends it) landing seconds later.
   */
  duplicate?: number;
}

export const NO_FAULTS: FaultRates = {
  delay: 0,
  lostRequest: 0,
  lostResponse: 0,
  ambiguous: 0,
  error: 0,
  throttle: 0,
};

/** Counts of faults injected, by kind ("ledger.ambiguous", "holder.crash", …). */
export class FaultLog {
  readonly counts = new Map<string, number>();

  add(kind: string): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }

  mergeInto(total: Map<string, number>): void {
    for (const [kind, n] of this.counts) total.set(kind, (total.get(kind) ?? 0) + n);
  }
}

type Settled<T> = { value: T } | { error: Error };

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

interface CallSpec<T> {
  service: 'koodrive' | 'ledger';
  /** The lock the call is about, for the trace. */
  subject?: string;
  /** Runs at the service when the request arrives. */
  apply: () => T | Promise<T>;
  /** KooDrive: the client's attempt timeout and what it answers; absent (ledger): a lost call hangs. */
  timeout?: { ms: number; answer: () => T };
  /** What the caller sees for an error the service answered without applying anything. */
  error: (kind: 'error' | 'throttle') => Settled<T>;
  /** What the caller sees when the call was applied but the answer went wrong. */
  ambiguous: () => Settled<T>;
  /** Told when an answer is handed to the caller (the checker's view of what the caller learned). */
  delivered?: (answer: Settled<T>, sentAt: number) => void;
}

export class Network {
  /** The caller's wall clock when it sent the ledger call being applied: DynamoLedger writes its own now. */
  ledgerCallerNow = 0;
  /** A short name for every call made, for the trace hash. */
  onCall: ((actor: Actor, what: string) => void) | undefined;
  /** Told of every fault injected into a call, with the caller. */
  onFault: ((actor: Actor, kind: string) => void) | undefined;
  /**
   * Outage bursts: true when this call fails because its service is down for this caller now (a KooDrive renew
   * outage for one holder, the ledger down for everyone, KooDrive down for the sweep). The call is not applied and
   * its caller sees a retryable error.
   */
  outage:
    ((actor: Actor, what: string, subject?: string) => 'down' | 'slow' | 'late' | undefined) | undefined;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly rng: Rng,
    private readonly rates: { koodrive: FaultRates; ledger: FaultRates },
    readonly faults: FaultLog,
  ) {}

  private latency(service: 'koodrive' | 'ledger', delayed: boolean): number {
    if (delayed) return this.rng.int(1_000, 30_000);
    return service === 'koodrive' ? this.rng.int(2, 40) : this.rng.int(1, 12);
  }

  call<T>(actor: Actor, what: string, spec: CallSpec<T>): Promise<T> {
    this.onCall?.(actor, spec.subject === undefined ? what : `${what} ${spec.subject}`);
    const { rng, faults, scheduler } = this;
    const rates = this.rates[spec.service];
    const sentAt = scheduler.now;
    const callerNow = actor.clock.now();
    const outage = this.outage?.(actor, what, spec.subject);
    const down = outage === 'down';
    const delayed = outage === 'slow' || outage === 'late' || rng.chance(rates.delay);
    if (delayed) {
      faults.add(`${spec.service}.delay`);
      this.onFault?.(actor, 'delay');
    }
    // A slow path (an outage's 'slow'): seconds late, yet within the client's timeout when it can be. 'late': it
    // lands in the last seconds of the client's timeout and its answer comes straight back.
    const out =
      outage === 'late' && spec.timeout
        ? rng.int(Math.max(1, spec.timeout.ms - 3_000), spec.timeout.ms - 100)
        : outage === 'slow' && spec.timeout
          ? rng.int(1_000, spec.timeout.ms)
          : this.latency(spec.service, delayed);
    const back = this.latency(spec.service, outage !== 'late' && delayed && rng.chance(0.5));
    const roll = rng.next();
    let p = rates.lostRequest;
    const fault = down
      ? 'error'
      : roll < p
        ? 'lostRequest'
        : roll < (p += rates.lostResponse)
          ? 'lostResponse'
          : roll < (p += rates.ambiguous)
            ? 'ambiguous'
            : roll < (p += rates.error)
              ? 'error'
              : roll < (p += rates.throttle)
                ? 'throttle'
                : undefined;
    if (fault !== undefined) {
      if (!down) faults.add(`${spec.service}.${fault}`);
      this.onFault?.(actor, down ? 'outage' : fault);
    }

    return new Promise<T>((resolve, reject) => {
      const settle = (answer: Settled<T>): void => {
        spec.delivered?.(answer, sentAt);
        if ('value' in answer) resolve(answer.value);
        else reject(answer.error);
      };
      const timeoutAt = spec.timeout ? sentAt + spec.timeout.ms : Infinity;
      // The KooDrive client gives up at its timeout, whatever happens to the request.
      let answered = false;
      const answer = (at: number, result: () => Settled<T>): void => {
        if (at >= timeoutAt) return;
        scheduler.at(
          at,
          () => {
            if (answered) return;
            answered = true;
            settle(result());
          },
          actor,
        );
      };
      if (spec.timeout) {
        const timeout = spec.timeout;
        scheduler.at(
          timeoutAt,
          () => {
            if (answered) return;
            answered = true;
            settle({ value: timeout.answer() });
          },
          actor,
        );
      }
      // A KooDrive request still on its way when its client gives up is never applied: the client closed the
      // connection (the protocol assumes a call lands within the client's timeout, DESIGN §5).
      if (fault === 'lostRequest' || sentAt + out >= timeoutAt) return;
      if (fault === 'error' || fault === 'throttle') {
        answer(sentAt + out + back, () => spec.error(fault));
        return;
      }
      if (spec.service === 'ledger' && what !== 'ledger.openItems' && rng.chance(rates.duplicate ?? 0)) {
        faults.add('ledger.duplicate');
        scheduler.at(sentAt + rng.int(1_000, 30_000), () => {
          this.ledgerCallerNow = callerNow;
          // The copy's answer goes nowhere: its caller took the first one.
          void Promise.resolve()
            .then(() => spec.apply())
            .catch(() => undefined);
        });
      }
      // The request arrives and is applied, whether or not its caller is still there to hear the answer.
      scheduler.at(sentAt + out, () => {
        let result: Promise<T>;
        this.ledgerCallerNow = callerNow;
        try {
          result = Promise.resolve(spec.apply());
        } catch (error) {
          result = Promise.reject(asError(error));
        }
        result.then(
          (value) => {
            if (fault === 'lostResponse') return;
            answer(scheduler.now + back, () => (fault === 'ambiguous' ? spec.ambiguous() : { value }));
          },
          (error: unknown) => {
            if (fault === 'lostResponse') return;
            answer(scheduler.now + back, () =>
              fault === 'ambiguous' ? spec.ambiguous() : { error: asError(error) },
            );
          },
        );
      });
    });
  }
}

const timeoutError = (ms: number): LockError => ({ kind: 'retryable', message: `timed out after ${ms} ms` });

function koodriveError(kind: 'error' | 'throttle', rng: Rng): { error: LockError; retryAfterMs?: number } {
  if (kind === 'throttle') {
    return {
      error: {
        kind: 'retryable',
        message: 'throttled by the API gateway',
        httpStatus: 429,
        code: 'APIGW.0308',
      },
      retryAfterMs: rng.int(1, 3) * 1000,
    };
  }
  const status = rng.pick([500, 502, 503, 504]);
  return { error: { kind: 'retryable', message: `server error (HTTP ${status})`, httpStatus: status } };
}

/** The KooDrive ports one process uses: the holder's KooDriveLocks and the engine's LockGateway. */
export interface KooDrivePorts extends LockGateway {
  createLock(userId: string, moduleCode: string): Promise<CreateAnswer>;
  renewLock(lock: LockRef): Promise<RenewAnswer>;
  releaseLock(lock: LockRef): Promise<AttemptOutcome>;
}

export interface KooDriveCallObserver {
  /** A renew is being sent (the checker looks at the ledger item then). */
  renewing?(lockId: string): void;
  /** A create or renew the caller saw succeed; sentAt is when it started (true time). */
  acknowledged?(actor: Actor, op: 'create' | 'renew', lockId: string, sentAt: number): void;
  /** Any answer to a renew or release handed to the caller: succeeded, or the error's kind (a timeout is retryable). */
  answered?(
    op: 'renew' | 'release',
    lockId: string,
    answer: { ok: true } | { ok: false; kind: string },
  ): void;
}

export function koodrivePorts(
  net: Network,
  rng: Rng,
  model: KooDriveModel,
  actor: Actor,
  timeoutMs: number,
  observer: KooDriveCallObserver = {},
): KooDrivePorts {
  const failure = <T>(kind: 'error' | 'throttle'): Settled<T> => ({
    value: { ok: false, ...koodriveError(kind, rng) } as T,
  });
  const timedOut = <T>(): T => ({ ok: false, error: timeoutError(timeoutMs) }) as T;
  const common = <T>() => ({
    service: 'koodrive' as const,
    timeout: { ms: timeoutMs, answer: timedOut<T> },
    error: failure<T>,
    // Applied, but the answer is lost: the client sees a gateway error or its timeout.
    ambiguous: (): Settled<T> => (rng.chance(0.5) ? failure<T>('error') : { value: timedOut<T>() }),
  });
  const told =
    (op: 'renew' | 'release', lockId: string) =>
    (answer: Settled<{ ok: true } | { ok: false; error: LockError }>): void => {
      if (!('value' in answer)) return;
      observer.answered?.(
        op,
        lockId,
        answer.value.ok ? { ok: true } : { ok: false, kind: answer.value.error.kind },
      );
    };
  const releaseLock = (lock: LockRef): Promise<AttemptOutcome> =>
    net.call(actor, 'kd.release', {
      ...common<AttemptOutcome>(),
      subject: lock.lockId,
      apply: () => model.release(lock, actor.name),
      delivered: told('release', lock.lockId),
    });
  return {
    createLock: (userId, moduleCode) =>
      net.call(actor, 'kd.create', {
        ...common<CreateAnswer>(),
        apply: () => model.create(userId, moduleCode, actor.name),
        delivered: (answer, sentAt) => {
          if ('value' in answer && answer.value.ok) {
            observer.acknowledged?.(actor, 'create', answer.value.lockId, sentAt);
          }
        },
      }),
    renewLock: (lock) => {
      observer.renewing?.(lock.lockId);
      return net.call(actor, 'kd.renew', {
        ...common<RenewAnswer>(),
        subject: lock.lockId,
        apply: () => model.renew(lock, actor.name),
        delivered: (answer, sentAt) => {
          told('renew', lock.lockId)(answer);
          if ('value' in answer && answer.value.ok) {
            observer.acknowledged?.(actor, 'renew', lock.lockId, sentAt);
          }
        },
      });
    },
    releaseLock,
    release: releaseLock,
    refreshCredentials: () => Promise.resolve(false),
  };
}

/** A DynamoDB failure as the SDK reports one: retryable, nothing written. */
export class SimulatedLedgerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InternalServerError';
  }
}

/** The ledger calls one process makes, each through the network. */
export interface LedgerCallObserver {
  /** A holder ledger write (recordAcquired / recordHeartbeat) the caller saw succeed. */
  acknowledged?(actor: Actor, op: string, lockId: string, sentAt: number): void;
  /** A ledger call about a lock the caller saw fail, with the error it got. */
  failed?(actor: Actor, op: string, lockId: string, error: Error): void;
}

/** Wraps every method of a ledger port so each call goes through the network as `actor`. */
export function ledgerPorts<L extends object>(
  net: Network,
  actor: Actor,
  ledger: L,
  observer: LedgerCallObserver = {},
): L {
  const spec = {
    service: 'ledger' as const,
    error: (): Settled<never> => ({ error: new SimulatedLedgerError('simulated DynamoDB 500') }),
    ambiguous: (): Settled<never> => ({
      error: new SimulatedLedgerError('simulated socket hang up after the write'),
    }),
  };
  const call = <T>(what: string, apply: () => Promise<T>, lockId?: string): Promise<T> =>
    net.call<T>(actor, what, {
      ...spec,
      ...(lockId !== undefined ? { subject: lockId } : {}),
      apply,
      ...(lockId !== undefined
        ? {
            delivered: (answer: Settled<T>, sentAt: number) => {
              if ('value' in answer) observer.acknowledged?.(actor, what, lockId, sentAt);
              else observer.failed?.(actor, what, lockId, answer.error);
            },
          }
        : {}),
    });
  const target = ledger as Record<string, unknown>;
  return new Proxy(ledger, {
    get(_, name: string) {
      const member = target[name];
      if (typeof member !== 'function') return member;
      const method = member as (...args: unknown[]) => unknown;
      if (name === 'openItems') {
        return () => pagedThroughNetwork(call, () => method.call(ledger) as AsyncIterable<unknown>);
      }
      if (name === 'claimRecorder') {
        return (claimed: unknown): OutcomeRecorder => {
          const recorder = method.call(ledger, claimed) as OutcomeRecorder;
          return {
            record: (result: LockResult) =>
              call('ledger.claimRecord', () => recorder.record(result), result.lockId),
          };
        };
      }
      return (...args: unknown[]) => {
        const first = args[0];
        const lockId =
          typeof first === 'string'
            ? first
            : typeof first === 'object' && first !== null && 'lockId' in first
              ? String(first.lockId)
              : undefined;
        return call(`ledger.${name}`, () => method.apply(ledger, args) as Promise<unknown>, lockId);
      };
    },
  });
}

/** An AsyncIterable whose every page is one call through the network. */
function pagedThroughNetwork(
  call: <T>(what: string, apply: () => Promise<T>) => Promise<T>,
  open: () => AsyncIterable<unknown>,
): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      let inner: AsyncIterator<unknown> | undefined;
      return {
        next: () =>
          call('ledger.openItems', () => {
            inner ??= open()[Symbol.asyncIterator]();
            return inner.next();
          }),
        return: (value?: unknown) => {
          void inner?.return?.(value);
          return Promise.resolve({ done: true as const, value });
        },
      };
    },
  };
}
