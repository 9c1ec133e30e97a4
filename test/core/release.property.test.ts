/**
 * Properties of the release use case over generated, often hostile, input: it never throws, never sends an unsafe
 * ID, and what it reports agrees with what the gateway did in both directions — a record or lock is reported done
 * exactly when the gateway released it (or answered that it was already released), and failed exactly when not.
 * The expected answers come from an oracle written here from the README's contract, not from the code's parsers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_OPTIONS } from '../../src/core/engine';
import type { AttemptOutcome, LockRef, ReleaseReport } from '../../src/core/model';
import { handleReleaseEvent, type ReleaseContext } from '../../src/core/release';
import { FakeClock, FakeGateway, seededRandom } from '../helpers/fakes';
import { MemoryLedger } from '../helpers/ledger-fakes';

const SAFE_ID = /^[\x21-\x7e]{1,256}$/;
const DEFAULT_USER = 'default-user';
const MAX_LOCKS = 500;

const validId = (value: unknown): value is string => typeof value === 'string' && SAFE_ID.test(value);
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const pair = (lock: LockRef): string => JSON.stringify([lock.userId, lock.lockId]);

/**
 * A gateway whose answer depends on the lock alone (released, already released, refused for good, or failing
 * every attempt), remembering which locks it answered as done: the truth the report is checked against.
 */
function scriptedGateway(): { gateway: FakeGateway; done: Map<string, 'released' | 'alreadyReleased'> } {
  const done = new Map<string, 'released' | 'alreadyReleased'>();
  const gateway = new FakeGateway((lock): AttemptOutcome => {
    let h = 0;
    for (const c of pair(lock)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    switch (h % 4) {
      case 0:
        done.set(pair(lock), 'released');
        return { ok: true, outcome: 'released' };
      case 1:
        done.set(pair(lock), 'alreadyReleased');
        return { ok: true, outcome: 'alreadyReleased' };
      case 2:
        return { ok: false, error: { kind: 'permanent', httpStatus: 400, message: 'refused' } };
      default:
        return { ok: false, error: { kind: 'retryable', httpStatus: 503, message: 'busy' } };
    }
  });
  return { gateway, done };
}

function context(gateway: FakeGateway): ReleaseContext {
  return {
    engine: { gateway, clock: new FakeClock(), random: seededRandom(3), remainingMs: () => 60_000 },
    options: { ...DEFAULT_ENGINE_OPTIONS, recordReserveMs: 0 },
    defaultUserId: DEFAULT_USER,
    maxLocksPerInvoke: MAX_LOCKS,
    // An empty ledger: find-by-user finds nothing.
    userLedger: new MemoryLedger({ now: () => 0 }),
    leases: {
      ledger: new MemoryLedger({ now: () => 0 }),
      policy: { staleAfterSeconds: 900, clockSkewSeconds: 10 },
    },
  };
}

/** README, "Release requests": the keys a direct payload, an entry of `locks` and an SQS body may hold. */
const DIRECT_KEYS = ['lockIds', 'locks', 'userId', 'moduleCode', 'dryRun', 'force'];
const ENTRY_KEYS = ['lockId', 'userId'];
const onlyKeys = (value: Record<string, unknown>, known: string[]): boolean =>
  Object.keys(value).every((key) => known.includes(key));

/** The lock a valid SQS body names (README: `{"lockId", "userId"}`, userId defaulting to the secret's). */
function lockOfBody(body: string): LockRef | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!isPlainObject(parsed) || !onlyKeys(parsed, ENTRY_KEYS)) return undefined;
  const userId = parsed.userId === undefined ? DEFAULT_USER : parsed.userId;
  return validId(parsed.lockId) && validId(userId) ? { lockId: parsed.lockId, userId } : undefined;
}

/**
 * What a direct payload asks for: its entries, `'findByUser'` for a valid find-by-user request, or undefined when
 * it must be refused as a whole.
 */
function entriesOf(
  payload: unknown,
): { entries: (LockRef | undefined)[]; dryRun: boolean } | 'findByUser' | undefined {
  if (!isPlainObject(payload) || !onlyKeys(payload, DIRECT_KEYS)) return undefined;
  const { lockIds, locks, dryRun, force, userId, moduleCode } = payload;
  if (dryRun !== undefined && typeof dryRun !== 'boolean') return undefined;
  if (force !== undefined && typeof force !== 'boolean') return undefined;
  if (lockIds === undefined && locks === undefined) {
    return validId(userId) && (moduleCode === undefined || validId(moduleCode)) ? 'findByUser' : undefined;
  }
  if (lockIds !== undefined && locks !== undefined) return undefined;
  if (moduleCode !== undefined || (locks !== undefined && userId !== undefined)) return undefined;
  const list: unknown = lockIds ?? locks;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_LOCKS) return undefined;
  if (locks !== undefined && list.some((item) => isPlainObject(item) && !onlyKeys(item, ENTRY_KEYS))) {
    return undefined;
  }
  const valid = (lockId: unknown, userId: unknown): LockRef | undefined => {
    const user = userId === undefined ? DEFAULT_USER : userId;
    return validId(lockId) && validId(user) ? { lockId, userId: user } : undefined;
  };
  const entries =
    lockIds !== undefined
      ? list.map((lockId) => valid(lockId, payload.userId))
      : list.map((item) => (isPlainObject(item) ? valid(item.lockId, item.userId) : undefined));
  return { entries, dryRun: dryRun === true };
}

/** IDs that are often hostile: control characters, CR/LF, NUL, non-ASCII, empty, overlong; valid ones too. */
const hostileId = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('a', '\r', '\n', '\0', ' ', 'é', '\u2028', ':'), maxLength: 20 }),
  fc.constant('x'.repeat(257)),
  fc.stringMatching(/^[\x21-\x7e]{1,20}$/),
  fc.constantFrom('lock-1', 'lock-2', 'user-1', 'user-2'),
  fc.anything(),
);
const sqsRecord = fc.record({
  messageId: fc.uuid(),
  eventSource: fc.constant('aws:sqs'),
  body: fc.oneof(
    fc.string(),
    fc.json(),
    fc
      .record({ lockId: hostileId, userId: fc.option(hostileId, { nil: undefined }) })
      .map((b) => JSON.stringify(b)),
  ),
});
const sqsEvent = fc.record({
  Records: fc.uniqueArray(sqsRecord, { minLength: 1, maxLength: 20, selector: (r) => r.messageId }),
});
const directPayload = fc.oneof(
  fc.anything(),
  fc.record(
    {
      userId: hostileId,
      moduleCode: hostileId,
      dryRun: fc.boolean(),
      force: fc.oneof(fc.boolean(), fc.anything()),
      dryrun: fc.boolean(),
    },
    { requiredKeys: [] },
  ),
  fc.record({ lockIds: fc.array(hostileId, { maxLength: 30 }), userId: hostileId }, { requiredKeys: [] }),
  fc.record(
    {
      locks: fc.array(fc.oneof(fc.record({ lockId: hostileId, userId: hostileId }), fc.anything()), {
        maxLength: 30,
      }),
      dryRun: fc.oneof(fc.boolean(), fc.anything()),
    },
    { requiredKeys: ['locks'] },
  ),
);

describe('release reports what the gateway did, whatever it is given', () => {
  it('SQS events: a record is left out of batchItemFailures exactly when its lock was released', async () => {
    await fc.assert(
      fc.asyncProperty(sqsEvent, async (event) => {
        const { gateway, done } = scriptedGateway();
        const answer = await handleReleaseEvent(event, context(gateway));
        expect('batchItemFailures' in answer).toBe(true);
        for (const call of gateway.calls) {
          expect(call.lockId).toMatch(SAFE_ID);
          expect(call.userId).toMatch(SAFE_ID);
        }
        const failed = new Set(
          ('batchItemFailures' in answer ? answer.batchItemFailures : []).map((f) => f.itemIdentifier),
        );
        expect([...failed].every((id) => event.Records.some((r) => r.messageId === id))).toBe(true);
        const named = new Set<string>();
        for (const record of event.Records) {
          const lock = lockOfBody(record.body);
          if (lock) named.add(pair(lock));
          const released = lock !== undefined && done.has(pair(lock));
          // reported done ⇔ done by the gateway; failed ⇔ not (an invalid record included)
          expect(failed.has(record.messageId), `record ${record.messageId}`).toBe(!released);
        }
        // each lock a valid record names is sent (at least once); nothing else is
        expect(new Set(gateway.calls.map(pair))).toEqual(named);
      }),
      { numRuns: 300 },
    );
  });

  it('direct payloads: each lock is reported released / alreadyReleased exactly as the gateway answered', async () => {
    await fc.assert(
      fc.asyncProperty(directPayload, async (payload) => {
        const { gateway, done } = scriptedGateway();
        const report = (await handleReleaseEvent(payload, context(gateway))) as ReleaseReport;
        for (const call of gateway.calls) {
          expect(call.lockId).toMatch(SAFE_ID);
          expect(call.userId).toMatch(SAFE_ID);
        }
        const asked = entriesOf(payload);
        const { summary, results } = report;
        for (const result of results) expect(result.lockId).toMatch(/^[\x21-\x7e…]*$/);
        if (asked === undefined) {
          // refused as a whole: exactly the payloads the contract refuses, and nothing counted as failed
          expect(report.error?.kind).toBe('invalid-input');
          expect(results).toEqual([]);
          expect(summary.failed).toBe(0);
          expect(gateway.calls).toEqual([]);
          return;
        }
        if (asked === 'findByUser') {
          // the ledger is empty: nothing found, nothing sent, and the answer says what that means
          expect(report.error).toBeUndefined();
          expect(results).toEqual([]);
          expect((report as { note?: string }).note).toMatch(/not taken through the holder/);
          expect(gateway.calls).toEqual([]);
          return;
        }
        expect(report.error).toBeUndefined();
        expect(summary.requested).toBe(asked.entries.length);
        const distinct = new Map<string, LockRef>();
        for (const lock of asked.entries) if (lock) distinct.set(pair(lock), lock);
        const invalid = asked.entries.filter((e) => e === undefined).length;
        expect(results).toHaveLength(distinct.size + invalid);
        expect(results.filter((r) => r.error?.kind === 'invalid-input')).toHaveLength(invalid);
        const reported = results.filter((r) => r.error?.kind !== 'invalid-input');
        expect(new Set(reported.map(pair))).toEqual(new Set(distinct.keys()));
        for (const result of reported) {
          const truth = done.get(pair(result));
          if (asked.dryRun) expect(result.outcome).toBe('wouldRelease');
          else expect(result.outcome, pair(result)).toBe(truth ?? 'failed');
        }
        if (asked.dryRun) expect(gateway.calls).toEqual([]);
        expect(summary.released).toBe(
          reported.filter((r) => done.get(pair(r)) === 'released').length * +!asked.dryRun,
        );
        expect(summary.failed).toBe(results.filter((r) => r.outcome === 'failed').length);
      }),
      { numRuns: 500 },
    );
  });
});
