/**
 * Turns what the release function receives (SQS records, a direct-invoke payload) into lock requests.
 * Every entry becomes either a valid lock or an invalid entry with a clear message; nothing throws.
 */
import { describeType, idProblem, type LockRef } from './model';

export type Entry =
  { ok: true; lock: LockRef } | { ok: false; lockId: string; userId: string; message: string };

export interface DirectRequest {
  entries: Entry[];
  dryRun: boolean;
  /** `"force": true`: release even a lock whose ledger item shows a live lease (an operator's decision). */
  force: boolean;
}

/** A payload refused as a whole (not an object, wrong shape, too many locks). */
export interface RefusedRequest {
  refused: string;
  /** How many entries the payload held, when it could tell. */
  requested: number;
}

const PREVIEW_LENGTH = 64;

/** A printable, bounded rendering of a bad ID for the report: never the raw value. */
export function preview(value: unknown): string {
  if (typeof value !== 'string') return '';
  const safe = value.slice(0, PREVIEW_LENGTH).replace(/[^\x21-\x7e]/g, '?');
  return value.length > PREVIEW_LENGTH ? `${safe}…` : safe;
}

/** Validates one (lockId, userId) pair; `where` prefixes the message ("locks[3]", "message body"). */
export function toEntry(where: string, lockId: unknown, userId: unknown, defaultUserId?: string): Entry {
  const effectiveUserId = userId === undefined ? defaultUserId : userId;
  const problems = [idProblem('lockId', lockId)];
  if (effectiveUserId === undefined) {
    problems.push('userId is missing and the secret names no defaultUserId');
  } else {
    problems.push(idProblem('userId', effectiveUserId));
  }
  const found = problems.filter((p): p is string => p !== undefined);
  if (found.length === 0) {
    return { ok: true, lock: { lockId: lockId as string, userId: effectiveUserId as string } };
  }
  return {
    ok: false,
    lockId: preview(lockId),
    userId: preview(effectiveUserId),
    message: `${where}: ${found.join('; ')}`,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses one SQS message body: JSON `{"lockId": "…", "userId": "…"}`. */
export function parseSqsBody(body: unknown, defaultUserId?: string): Entry {
  if (typeof body !== 'string') {
    return { ok: false, lockId: '', userId: '', message: 'message body is missing' };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { ok: false, lockId: '', userId: '', message: 'message body is not JSON' };
  }
  if (!isObject(parsed)) {
    return {
      ok: false,
      lockId: '',
      userId: '',
      message: `message body must be a JSON object {"lockId", "userId"}, got ${describeType(parsed)}`,
    };
  }
  const entry = toEntry('message body', parsed.lockId, parsed.userId, defaultUserId);
  // Forcing past a live lease is an operator's decision, taken on a direct invoke, never from a queue.
  if ('force' in parsed) {
    const message = 'message body: "force" is accepted only on a direct invoke, never from SQS';
    return entry.ok
      ? { ok: false, lockId: entry.lock.lockId, userId: entry.lock.userId, message }
      : { ...entry, message: `${message}; ${entry.message}` };
  }
  return entry;
}

/**
 * Parses a direct-invoke payload: `{"lockIds": [...], "userId": "…"}` or
 * `{"locks": [{"lockId", "userId"}, ...]}`, with optional booleans `dryRun` and `force`.
 */
export function parseDirectPayload(
  payload: unknown,
  defaultUserId: string | undefined,
  maxLocks: number,
): DirectRequest | RefusedRequest {
  const shape = 'expected {"lockIds": ["…"], "userId": "…"} or {"locks": [{"lockId": "…", "userId": "…"}]}';
  if (!isObject(payload)) {
    return { refused: `payload must be a JSON object, got ${describeType(payload)}; ${shape}`, requested: 0 };
  }
  const { lockIds, locks, dryRun, force } = payload;
  if (dryRun !== undefined && typeof dryRun !== 'boolean') {
    return { refused: `dryRun must be true or false, got ${describeType(dryRun)}`, requested: 0 };
  }
  if (force !== undefined && typeof force !== 'boolean') {
    return { refused: `force must be true or false, got ${describeType(force)}`, requested: 0 };
  }
  if ((lockIds === undefined) === (locks === undefined)) {
    return {
      refused: `payload must hold exactly one of "lockIds" and "locks"; ${shape}`,
      requested: 0,
    };
  }
  const list = lockIds ?? locks;
  const field = lockIds !== undefined ? 'lockIds' : 'locks';
  if (!Array.isArray(list)) {
    return { refused: `${field} must be an array, got ${describeType(list)}`, requested: 0 };
  }
  if (list.length > maxLocks) {
    return {
      refused: `payload holds ${list.length} locks; at most ${maxLocks} per invocation: split it, or send them through the queue`,
      requested: list.length,
    };
  }
  let entries: Entry[];
  if (lockIds !== undefined) {
    const userId = payload.userId;
    entries = list.map((lockId, i) => toEntry(`lockIds[${i}]`, lockId, userId, defaultUserId));
  } else {
    entries = list.map((item: unknown, i) =>
      isObject(item)
        ? toEntry(`locks[${i}]`, item.lockId, item.userId, defaultUserId)
        : {
            ok: false,
            lockId: '',
            userId: '',
            message: `locks[${i}] must be an object {"lockId", "userId"}, got ${describeType(item)}`,
          },
    );
  }
  return { entries, dryRun: dryRun === true, force: force === true };
}

/** The key two requests for the same lock share. */
export function lockKey(lock: LockRef): string {
  return `${lock.userId}\n${lock.lockId}`;
}

/** The distinct valid locks, in first-appearance order. */
export function distinctLocks(entries: readonly Entry[]): LockRef[] {
  const seen = new Map<string, LockRef>();
  for (const entry of entries) {
    if (entry.ok && !seen.has(lockKey(entry.lock))) seen.set(lockKey(entry.lock), entry.lock);
  }
  return [...seen.values()];
}
