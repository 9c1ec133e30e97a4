/**
 * The release domain: what is asked for, what KooDrive answered, what is reported.
 * Pure types and tiny helpers; no environment, SDK or HTTP here.
 */

/** One lock to release: KooDrive identifies a lock by its opaque ID and the user holding it. */
export interface LockRef {
  lockId: string;
  userId: string;
}

export type ErrorKind = 'invalid-input' | 'auth' | 'retryable' | 'permanent' | 'deadline';

export interface LockError {
  kind: ErrorKind;
  message: string;
  httpStatus?: number;
  /** KooDrive business code or API-gateway error code, as a string. */
  code?: string;
}

/** `held`: not released, because its ledger item shows a live lease (README, "Leases and the promise"). */
export type Outcome = 'released' | 'alreadyReleased' | 'failed' | 'wouldRelease' | 'held';

export interface LockResult {
  lockId: string;
  userId: string;
  outcome: Outcome;
  attempts: number;
  error?: LockError;
  /** `held` only: the ledger status that holds it (RELEASING: a sweep is releasing it). */
  status?: 'HELD' | 'RELEASING';
  /** `held` only: the holder named in the item (absent for an anonymous holder). */
  holder?: string;
  /** `held` only: seconds until the lease runs out by the sweep's rule. */
  leaseLeftSeconds?: number;
}

export interface ReportSummary {
  requested: number;
  released: number;
  alreadyReleased: number;
  failed: number;
  duplicates: number;
  /** Release reports: the locks not released because their lease is live. */
  held?: number;
  wouldRelease?: number;
  durationMs: number;
}

export interface ReleaseReport {
  summary: ReportSummary;
  results: LockResult[];
  /** Set when the payload was refused as a whole (wrong shape, too many locks): nothing was attempted. */
  error?: LockError;
}

/**
 * What one release attempt against KooDrive answered.
 * `credentialsVersion` identifies the credentials the attempt was signed with, so a re-read after an
 * authentication failure can tell whether newer credentials already exist.
 */
export type AttemptOutcome =
  | { ok: true; outcome: 'released' | 'alreadyReleased' }
  | { ok: false; error: LockError; retryAfterMs?: number; credentialsVersion?: number };

/** Port: the KooDrive side of a release, as the engine sees it. */
export interface LockGateway {
  /** One DELETE attempt, freshly signed. Never throws for HTTP or network failures. */
  release(lock: LockRef): Promise<AttemptOutcome>;
  /**
   * Called after an authentication failure signed with `credentialsVersion`. Resolves true when
   * newer credentials are now in use (re-read now or by a concurrent caller), false when a re-read is
   * not allowed yet or found nothing new.
   */
  refreshCredentials(credentialsVersion: number | undefined): Promise<boolean>;
}

/**
 * What the release path read before it released a lock, and whether an operator forced it. Its outcome write is
 * conditional on this: a failure is recorded only on the item it read (the same version, or still absent), so no
 * outcome write ever turns a live HELD item into RELEASE_FAILED.
 */
export interface ReleaseBasis {
  /** The version read, `absent` when there was no item, `unread` when the read failed (only with force). */
  read: number | 'absent' | 'unread';
  /** An operator's `"force": true`: recorded on the item as forcedAt. */
  forced: boolean;
}

/** Port: where final outcomes are recorded (the ledger); optional. Never called for dry runs. */
export interface OutcomeRecorder {
  /**
   * Without a basis the write is unconditional (a final item stays final). With the basis the release path decided
   * from, a failure is written only on the item it read: the same version, or still no item (else
   * LedgerConflictError), and a forced release is marked forcedAt.
   */
  record(result: LockResult, basis?: ReleaseBasis): Promise<void>;
}

/** A timer that can be cancelled; cancelling one that already fired does nothing. */
export interface Timer {
  cancel(): void;
}

/**
 * Port: time, injected so tests and the simulation control it. Nothing in src/ reads the system clock or
 * arms a timer except `systemClock` below.
 */
export interface Clock {
  /** Wall-clock time, epoch ms (what the ledger stores; may jump or be skewed between machines). */
  now(): number;
  /** A monotonic reading in ms (only differences mean anything): what leases are measured on. */
  monotonic(): number;
  sleep(ms: number): Promise<void>;
  /** Calls `fn` once after `ms`; the timer never keeps the process alive. */
  setTimer(ms: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  setTimer(ms, fn) {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

/** Port: uniform randomness in [0, 1); seeded in tests and the simulation. */
export type Random = () => number;

export const systemRandom: Random = () => Math.random();

/** The maximum length of a lock or user ID, and its alphabet: printable ASCII without space. */
export const MAX_ID_LENGTH = 256;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

/** Returns why `value` is not a valid lock or user ID, or undefined when it is valid. */
export function idProblem(name: string, value: unknown): string | undefined {
  if (typeof value !== 'string') return `${name} must be a string, got ${describeType(value)}`;
  if (value.length === 0) return `${name} must not be empty`;
  if (value.length > MAX_ID_LENGTH)
    return `${name} is ${value.length} characters long; at most ${MAX_ID_LENGTH}`;
  if (!PRINTABLE_ASCII.test(value)) return `${name} may hold only printable ASCII characters (0x21-0x7E)`;
  return undefined;
}

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}
