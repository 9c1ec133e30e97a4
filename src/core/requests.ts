/**
 * Turns what the release function receives (SQS records, a direct-invoke payload) into lock requests.
 * Every entry becomes either a valid lock or an invalid entry with a clear message; a payload that cannot be
 * read as a whole (unknown key, bad value, wrong shape, empty or too long a list) is refused as a whole, naming
 * the field. Nothing throws.
 */
import { closestMatch } from 'leven';
import { describeType, idProblem, type LockError, type LockRef } from './model';

export type Entry =
  { ok: true; lock: LockRef } | { ok: false; lockId: string; userId: string; message: string };

/** `{"lockIds": […]}` or `{"locks": […]}`: these locks. */
export interface DirectRequest {
  kind: 'locks';
  entries: Entry[];
  dryRun: boolean;
  /** Release even a live lease (an operator's override; direct invoke only). */
  force: boolean;
}

/** `{"userId": "…", "moduleCode": "…"}` without lock IDs: that user's open ledger items (of that module). */
export interface FindByUserRequest {
  kind: 'findByUser';
  userId: string;
  moduleCode?: string;
  dryRun: boolean;
  force: boolean;
}

/** Why a payload was refused as a whole: the field at fault (a key, or "payload") and what is wrong with it. */
export interface Refusal {
  field: string;
  message: string;
}

/** A payload refused as a whole (unknown key, bad value, wrong shape, an empty or too long list). */
export interface RefusedRequest {
  refused: Refusal;
  /** How many entries the payload held, when it could tell (nothing was attempted). */
  requested: number;
}

/** The answer's error for a refused payload: `invalid-input`, naming the field. */
export interface RefusalError extends LockError {
  kind: 'invalid-input';
  field: string;
}

export function refusalError(refusal: Refusal): RefusalError {
  return { kind: 'invalid-input', field: refusal.field, message: refusal.message };
}

/** What an answer or a log line shows of a bad ID: at most this many characters. */
const PREVIEW_LENGTH = 32;

/** A printable, bounded rendering of a bad ID for the report: never the raw value. */
export function preview(value: unknown): string {
  if (typeof value !== 'string') return '';
  const safe = value.slice(0, PREVIEW_LENGTH).replace(/[^\x21-\x7e]/g, '?');
  return value.length > PREVIEW_LENGTH ? `${safe}…` : safe;
}

/** A key as an error message shows it: printable, at most 32 characters. */
export function keyPreview(key: string): string {
  return preview(key) || '?';
}

/** Keys of a "did you mean" suggestion are at most this far (Levenshtein) from the key given. */
const SUGGEST_DISTANCE = 3;

/**
 * The first key of `value` that is not in `known`, as a refusal naming it and the closest known key
 * ("`dryrun`: unknown key, did you mean `dryRun`?"); undefined when every key is known. `where` prefixes nested
 * fields ("locks[2]."). Other unknown keys are counted in the message.
 */
export function unknownKey(
  value: Record<string, unknown>,
  known: readonly string[],
  where = '',
): Refusal | undefined {
  const unknown = Object.keys(value).filter((key) => !known.includes(key));
  const first = unknown[0];
  if (first === undefined) return undefined;
  const shown = keyPreview(first);
  // A hostile key may be a megabyte long: only its preview is compared.
  const lower = shown.toLowerCase();
  const closest =
    closestMatch(shown, known, { maxDistance: SUGGEST_DISTANCE }) ??
    // A shortened or lengthened key ("module" for "moduleCode", "lockIdsList" for "lockIds").
    (lower.length >= 3
      ? known.find((k) => k.toLowerCase().startsWith(lower) || lower.startsWith(k.toLowerCase()))
      : undefined);
  const hint = closest
    ? `did you mean \`${closest}\`?`
    : `the known keys are ${known.map((k) => `\`${k}\``).join(', ')}`;
  const more =
    unknown.length > 1 ? ` (and ${unknown.length - 1} more unknown key${unknown.length > 2 ? 's' : ''})` : '';
  return { field: `${where}${shown}`, message: `\`${where}${shown}\`: unknown key, ${hint}${more}` };
}

/** The keys of a direct-invoke payload. */
export const DIRECT_KEYS = ['lockIds', 'locks', 'userId', 'moduleCode', 'dryRun', 'force'] as const;
const ENTRY_KEYS = ['lockId', 'userId'] as const;
const SHAPE =
  'expected {"lockIds": ["…"], "userId": "…"}, {"locks": [{"lockId": "…", "userId": "…"}]} or {"userId": "…", "moduleCode": "…"}';

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
  // Forcing past a live lease is an operator's decision, taken on a direct invoke, never from a queue.
  if ('force' in parsed) {
    const message = 'message body: "force" is accepted only on a direct invoke, never from SQS';
    const entry = toEntry('message body', parsed.lockId, parsed.userId, defaultUserId);
    return entry.ok
      ? { ok: false, lockId: entry.lock.lockId, userId: entry.lock.userId, message }
      : { ...entry, message: `${message}; ${entry.message}` };
  }
  const unknown = unknownKey(parsed, ENTRY_KEYS);
  if (unknown)
    return {
      ok: false,
      lockId: preview(parsed.lockId),
      userId: preview(parsed.userId),
      message: `message body: ${unknown.message}`,
    };
  return toEntry('message body', parsed.lockId, parsed.userId, defaultUserId);
}

/** True for an object that is meant as an SQS event but is not one (so it is not taken for a payload). */
function looksLikeSqs(payload: Record<string, unknown>): boolean {
  return 'Records' in payload;
}

function refuse(field: string, message: string, requested = 0): RefusedRequest {
  return { refused: { field, message }, requested };
}

function booleanField(
  payload: Record<string, unknown>,
  name: 'dryRun' | 'force',
  requested: number,
): RefusedRequest | boolean {
  const value = payload[name];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') {
    return refuse(name, `${name} must be true or false, got ${describeType(value)}`, requested);
  }
  return value;
}

/**
 * Parses a direct-invoke payload: `{"lockIds": [...], "userId": "…"}`, `{"locks": [{"lockId", "userId"}, ...]}`
 * or, for find-by-user, `{"userId": "…", "moduleCode": "…"}` (moduleCode optional), each with the optional
 * booleans `dryRun` and `force`. A payload with an unknown key (in an entry of `locks` too), a bad value, an
 * empty or too long list, or no lock IDs and no userId is refused as a whole: nothing is attempted.
 */
export function parseDirectPayload(
  payload: unknown,
  defaultUserId: string | undefined,
  maxLocks: number,
): DirectRequest | FindByUserRequest | RefusedRequest {
  if (!isObject(payload)) {
    return refuse('payload', `payload must be a JSON object, got ${describeType(payload)}; ${SHAPE}`);
  }
  if (looksLikeSqs(payload)) {
    return refuse(
      'Records',
      '`Records`: not an SQS event (each record needs "eventSource": "aws:sqs" and a "messageId"), and not a key of a direct payload',
    );
  }
  const { lockIds, locks, userId, moduleCode } = payload;
  // A refused payload still says how many entries it held (none of them was attempted).
  const received = Array.isArray(lockIds) ? lockIds.length : Array.isArray(locks) ? locks.length : 0;
  const unknown = unknownKey(payload, DIRECT_KEYS);
  if (unknown) return { refused: unknown, requested: received };
  const dryRun = booleanField(payload, 'dryRun', received);
  if (typeof dryRun !== 'boolean') return dryRun;
  const force = booleanField(payload, 'force', received);
  if (typeof force !== 'boolean') return force;

  if (lockIds === undefined && locks === undefined) {
    if (userId === undefined) {
      return refuse(
        'lockIds',
        `payload names no lock: give "lockIds", "locks", or a "userId" to find; ${SHAPE}`,
      );
    }
    const problem =
      idProblem('userId', userId) ??
      (moduleCode === undefined ? undefined : idProblem('moduleCode', moduleCode));
    if (problem) return refuse(problem.startsWith('userId') ? 'userId' : 'moduleCode', problem);
    return {
      kind: 'findByUser',
      userId: userId as string,
      ...(moduleCode !== undefined ? { moduleCode: moduleCode as string } : {}),
      dryRun,
      force,
    };
  }
  if (lockIds !== undefined && locks !== undefined) {
    return refuse('locks', `payload must hold only one of "lockIds" and "locks"; ${SHAPE}`, received);
  }
  const field = lockIds !== undefined ? 'lockIds' : 'locks';
  if (moduleCode !== undefined) {
    return refuse(
      'moduleCode',
      `moduleCode finds a user's locks: give it with "userId" alone, not with "${field}"`,
      received,
    );
  }
  const list = lockIds ?? locks;
  if (!Array.isArray(list)) return refuse(field, `${field} must be an array, got ${describeType(list)}`);
  if (list.length === 0) {
    return refuse(
      field,
      `${field} is empty: name at least one lock (or send only "userId" to find that user's locks)`,
    );
  }
  if (list.length > maxLocks) {
    return refuse(
      field,
      `${field} holds ${list.length} locks; at most ${maxLocks} per invocation: split it, or send them through the queue`,
      list.length,
    );
  }
  let entries: Entry[];
  if (lockIds !== undefined) {
    entries = list.map((lockId, i) => toEntry(`lockIds[${i}]`, lockId, userId, defaultUserId));
  } else {
    if (userId !== undefined) {
      return refuse('userId', 'userId goes into each entry of "locks", not next to it', received);
    }
    for (const [i, item] of list.entries()) {
      const unknownInEntry = isObject(item) ? unknownKey(item, ENTRY_KEYS, `locks[${i}].`) : undefined;
      if (unknownInEntry) return { refused: unknownInEntry, requested: list.length };
    }
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
  return { kind: 'locks', entries, dryRun, force };
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
