/**
 * Scripted KooDrive failures in the words of a worker's test ("the renewal fails: the lock is gone"), turned into
 * the emulator's fault rules. Shared by createTestbed() and the koodrive-emulator command.
 */
import { DEFAULT_NOT_FOUND_CODE, type Fault, type FaultRule } from './koodrive-emulator';

/** The KooDrive call a failure applies to. */
export type KooDriveOperation = 'create' | 'renew' | 'release';

/** What KooDrive answers instead (see `fail`). */
export type KooDriveFailureKind =
  /** HTTP 503: retryable. */
  | 'unavailable'
  /** HTTP 429 with `Retry-After: 1`: retryable. */
  | 'throttled'
  /** Business code 13000201, "internal invocation failure": retryable. */
  | 'internal'
  /** Business code 13000309, the lock does not exist: a renew refused so, the lease is lost. */
  | 'gone'
  /** The connection is dropped without an answer. */
  | 'drop'
  /** The answer comes this many (real) milliseconds late; the call takes effect. */
  | { latencyMs: number }
  /** Any HTTP status (and body). */
  | { status: number; body?: unknown };

export interface KooDriveFailure {
  /** The call that fails; default every call. */
  on?: KooDriveOperation;
  /** Only calls for this lock (renew, release). */
  lockId?: string;
  /** Only calls for this user. */
  userId?: string;
  /** How many calls fail; default every matching call until `heal()`. */
  times?: number;
  with: KooDriveFailureKind;
}

const METHODS: Record<KooDriveOperation, string> = { create: 'POST', renew: 'PATCH', release: 'DELETE' };

/** The operation of a KooDrive request method (POST create, PATCH renew, DELETE release). */
export function operationOf(method: string): KooDriveOperation | 'other' {
  return method === 'POST'
    ? 'create'
    : method === 'PATCH'
      ? 'renew'
      : method === 'DELETE'
        ? 'release'
        : 'other';
}

/** The emulator's rule for a scripted failure; a RangeError names what is wrong with it. */
export function faultRuleOf(failure: KooDriveFailure): FaultRule {
  const method = failure.on === undefined ? undefined : METHODS[failure.on];
  if (failure.on !== undefined && method === undefined) {
    throw new RangeError(`on must be create, renew or release, got ${JSON.stringify(failure.on)}`);
  }
  return {
    match: (req) =>
      (method === undefined || req.method === method) &&
      (failure.lockId === undefined || req.lockId === failure.lockId) &&
      (failure.userId === undefined || req.userId === failure.userId),
    ...(failure.times !== undefined ? { times: failure.times } : {}),
    action: faultOf(failure.with),
  };
}

function faultOf(kind: KooDriveFailureKind): Fault {
  if (typeof kind === 'object' && kind !== null) {
    if ('latencyMs' in kind && Number.isFinite(kind.latencyMs))
      return { type: 'latency', ms: kind.latencyMs };
    if ('status' in kind && Number.isInteger(kind.status)) {
      return { type: 'status', status: kind.status, ...(kind.body !== undefined ? { body: kind.body } : {}) };
    }
    throw new RangeError(`unknown failure ${JSON.stringify(kind)}`);
  }
  switch (kind) {
    case 'unavailable':
      return { type: 'status', status: 503 };
    case 'throttled':
      return { type: 'throttle', retryAfterSeconds: 1 };
    case 'internal':
      return { type: 'internal' };
    case 'gone':
      return {
        type: 'status',
        status: 400,
        body: { code: DEFAULT_NOT_FOUND_CODE, msg: 'resource does not exist' },
      };
    case 'drop':
      return { type: 'drop' };
    default:
      throw new RangeError(
        `unknown failure ${JSON.stringify(kind)}: unavailable, throttled, internal, gone, drop, { latencyMs } or { status }`,
      );
  }
}
