/**
 * Hostile input through the REAL release handler against the local stack (the real KooDrive client, the
 * emulator recording what reaches it): property-based SQS bodies and direct payloads, plus the extremes —
 * 1 MB strings, CR/LF/NUL in IDs, non-ASCII, 10,000-entry payloads, 10,000-level nesting. The handler always
 * answers, never throws, never sends such a value, keeps its answer and its memory bounded, and refuses a
 * payload over MAX_LOCKS_PER_INVOKE as a whole.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import { applyEnv, LOCAL_USER_ID, startLocalStack, type LocalStack } from '../../dev/stack';
import type { ReleaseReport } from '../../src/core/model';
import { parseSweepEvent, SweepEventError } from '../../src/core/sweep-event';
import { handler } from '../../src/handlers/release';
import { handler as sweepHandler } from '../../src/handlers/sweep';
import { resetApp } from '../../src/wiring';
import { sqsRecord } from '../helpers/events';

/** The README's rule for valid IDs, restated here on purpose (not imported): 1–256 printable ASCII characters. */
const SAFE_ID = /^[\x21-\x7e]{1,256}$/;
const isValidId = (value: unknown): value is string => typeof value === 'string' && SAFE_ID.test(value);
/** What the answer may echo of a bad ID: a printable preview of at most 32 characters and an ellipsis. */
const PREVIEW = /^[\x21-\x7e]{0,32}…?$/;
const MAX_MESSAGE = 400;

const MEGABYTE = 'L'.repeat(1024 * 1024);
const MEGABYTE_NON_ASCII = 'ü'.repeat(512 * 1024);

function nestedArray(depth: number): unknown {
  let value: unknown = [];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}
function nestedObject(depth: number): unknown {
  let value: unknown = {};
  for (let i = 0; i < depth; i++) value = { lockId: value };
  return value;
}
const DEEP_ARRAY = nestedArray(10_000);
const DEEP_OBJECT = nestedObject(10_000);
/** The same nesting as SQS receives it: text (JSON.stringify itself would overflow the stack on it). */
const DEEP_ARRAY_TEXT = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
const DEEP_OBJECT_TEXT = `${'{"lockId":'.repeat(10_000)}{}${'}'.repeat(10_000)}`;

const validId = fc.stringMatching(/^[\x21-\x7e]{1,40}$/);
const badChar = fc.constantFrom(
  '\r',
  '\n',
  '\r\n',
  '\0',
  ' ',
  '\t',
  '\x7f',
  'é',
  'ü',
  '\u0085',
  '\u2028',
  '😀',
  '\uFEFF',
);
/** Values that are often hostile as an ID, from near-valid to absurd; `deep` adds 10,000-level nesting. */
function hostile(deep: boolean): fc.Arbitrary<unknown> {
  return fc.oneof(
    validId,
    validId,
    fc.tuple(validId, badChar, validId).map(([a, c, b]) => `${a}${c}${b}`),
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.constantFrom('', 'x'.repeat(256), 'x'.repeat(257), MEGABYTE, MEGABYTE_NON_ASCII, `${MEGABYTE}\r\n`),
    deep ? fc.constantFrom(DEEP_ARRAY, DEEP_OBJECT) : fc.constant([[['nested']]]),
    fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null)),
    fc.anything({ maxDepth: 2 }),
  );
}
const hostileId = hostile(true);

/** An SQS body: text that is often not JSON, or JSON of the wrong shape, or a record with hostile IDs. */
const sqsBody: fc.Arbitrary<unknown> = fc.oneof(
  fc.string(),
  fc.json(),
  fc.constantFrom(
    'not json',
    '',
    'null',
    '[]',
    '"lockId"',
    '{"__proto__": {"lockId": "a"}}',
    DEEP_ARRAY_TEXT,
    DEEP_OBJECT_TEXT,
    MEGABYTE,
  ),
  fc
    .record({ lockId: hostile(false), userId: hostile(false) }, { requiredKeys: [] })
    .map((body) => JSON.stringify(body)),
  fc.constantFrom(`{"lockId":${DEEP_ARRAY_TEXT}}`, `{"lockId":"a","userId":${DEEP_OBJECT_TEXT}}`),
  fc.constantFrom(undefined, 42, null),
);

let stack: LocalStack;
let restoreEnv: () => void;
let messageCounter = 0;

beforeAll(async () => {
  stack = await startLocalStack();
});
afterAll(async () => {
  await stack.close();
});
beforeEach(() => {
  restoreEnv = applyEnv({ ...stack.env, LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' });
  resetApp();
  stack.koodrive.reset();
});
afterEach(() => {
  restoreEnv();
  resetApp();
  stack.koodrive.reset();
});

function record(body: unknown): SQSRecord {
  messageCounter += 1;
  return sqsRecord(`hostile-${messageCounter}`, body as string);
}

/** The lock an SQS body names when it is valid (the secret's defaultUserId stands in for a missing userId). */
function validSqsLock(body: unknown): { lockId: string; userId: string } | undefined {
  if (typeof body !== 'string') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const { lockId, userId } = parsed as { lockId?: unknown; userId?: unknown };
  const user = userId === undefined ? LOCAL_USER_ID : userId;
  return isValidId(lockId) && isValidId(user) ? { lockId, userId: user } : undefined;
}

/** Everything that reached KooDrive since `from` named only IDs from `allowed`, all of them valid. */
function expectOnlySafeRequests(from: number, allowed: ReadonlySet<string>): void {
  for (const req of stack.koodrive.requests.slice(from)) {
    expect(req.lockId).toMatch(SAFE_ID);
    expect(req.userId).toMatch(SAFE_ID);
    expect(allowed.has(`${req.userId}\n${req.lockId}`), `unexpected request for ${req.lockId}`).toBe(true);
  }
}

/** A report bounded in size and printable: no echoed hostile value. */
function expectBoundedReport(report: ReleaseReport, entries: number): void {
  expect(JSON.stringify(report).length).toBeLessThan(1000 + entries * 800);
  for (const result of report.results) {
    const valid = isValidId(result.lockId) && isValidId(result.userId);
    if (!valid || result.error?.kind === 'invalid-input') {
      expect(result.lockId).toMatch(PREVIEW);
      expect(result.userId).toMatch(PREVIEW);
    }
    if (result.error) {
      expect(result.error.message.length).toBeLessThanOrEqual(MAX_MESSAGE);
      expect(result.error.message).toMatch(/^[\x20-\x7e…]*$/);
    }
  }
  if (report.error) expect(report.error.message.length).toBeLessThanOrEqual(MAX_MESSAGE);
}

describe('hostile SQS bodies (fast-check, real handler)', () => {
  it('every record is answered for, exactly the invalid ones come back, and only valid IDs reach KooDrive', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sqsBody, { minLength: 1, maxLength: 10 }), async (bodies) => {
        const from = stack.koodrive.requests.length;
        const records = bodies.map(record);
        const answer = (await handler({ Records: records }, lambdaContext('release'))) as SQSBatchResponse;
        expect(Object.keys(answer)).toEqual(['batchItemFailures']);
        const expected = records
          .filter((_, i) => validSqsLock(bodies[i]) === undefined)
          .map((r) => r.messageId);
        // Valid locks the emulator does not know are "already released": a success.
        expect(answer.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(expected.sort());
        const allowed = new Set(
          bodies.map(validSqsLock).flatMap((lock) => (lock ? [`${lock.userId}\n${lock.lockId}`] : [])),
        );
        expectOnlySafeRequests(from, allowed);
        expect(stack.koodrive.requests.length - from).toBe(allowed.size);
      }),
      { numRuns: 80 },
    );
  });
});

describe('hostile direct payloads (fast-check, real handler)', () => {
  const entry = fc.oneof(
    fc.record({ lockId: hostileId, userId: hostileId }, { requiredKeys: [] }),
    hostileId,
  );
  const payload: fc.Arbitrary<unknown> = fc.oneof(
    fc.anything({ maxDepth: 3 }),
    fc.constantFrom(DEEP_ARRAY, DEEP_OBJECT, MEGABYTE, null, undefined, 0, '{"lockIds": ["a"]}'),
    fc.record(
      {
        lockIds: fc.oneof(fc.array(hostileId, { maxLength: 20 }), hostileId),
        userId: hostileId,
        dryRun: fc.oneof(fc.boolean(), hostileId),
      },
      { requiredKeys: ['lockIds'] },
    ),
    fc.record(
      { locks: fc.oneof(fc.array(entry, { maxLength: 20 }), hostileId), dryRun: fc.boolean() },
      { requiredKeys: ['locks'] },
    ),
    fc.record({ lockIds: fc.array(validId, { maxLength: 5 }), locks: fc.array(entry, { maxLength: 5 }) }),
  );

  it('always answers a report: one result per entry or a refusal, bounded, only valid IDs sent', async () => {
    await fc.assert(
      fc.asyncProperty(payload, async (event) => {
        const from = stack.koodrive.requests.length;
        const list = listOf(event);
        if (list === 'findByUser') {
          // A valid find-by-user request needs the ledger, which this stack has not: a configuration error.
          await expect(handler(event, lambdaContext('release'))).rejects.toThrow(
            /LOCK_LEDGER_TABLE is required/,
          );
          expect(stack.koodrive.requests.length).toBe(from);
          return;
        }
        const report = (await handler(event, lambdaContext('release'))) as ReleaseReport;
        expect(report.summary).toBeDefined();
        expect(Array.isArray(report.results)).toBe(true);
        if (report.error) {
          expect(list, 'only a payload the contract refuses is refused').toBeUndefined();
          expect(report.error.kind).toBe('invalid-input');
          expect(typeof (report.error as { field?: unknown }).field).toBe('string');
          expect(report.results).toEqual([]);
          expect(report.summary.failed).toBe(0);
          expect(stack.koodrive.requests.length).toBe(from);
        } else {
          expect(list, 'a payload of neither shape is refused').toBeDefined();
          expect(report.summary.requested).toBe((list as unknown[]).length);
          expect(report.results.length + report.summary.duplicates).toBe((list as unknown[]).length);
        }
        expectBoundedReport(report, Array.isArray(list) ? list.length : 0);
        const allowed = new Set(
          report.results
            .filter((r) => r.error?.kind !== 'invalid-input')
            .map((r) => `${r.userId}\n${r.lockId}`),
        );
        for (const key of allowed) {
          const [userId, lockId] = key.split('\n');
          expect(isValidId(lockId) && isValidId(userId)).toBe(true);
        }
        expectOnlySafeRequests(from, allowed);
      }),
      { numRuns: 120 },
    );
  });
});

/** README, "Release requests": the keys of a direct payload and of an entry of `locks`. */
const DIRECT_KEYS = ['lockIds', 'locks', 'userId', 'moduleCode', 'dryRun', 'force'];
const ENTRY_KEYS = ['lockId', 'userId'];
const isPlain = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const onlyKeys = (value: Record<string, unknown>, known: string[]) =>
  Object.keys(value).every((key) => known.includes(key));

/**
 * The entry list of a payload of one of the two list shapes, 'findByUser' for a valid find-by-user request, or
 * undefined for a payload the contract refuses as a whole.
 */
function listOf(event: unknown): unknown[] | 'findByUser' | undefined {
  if (!isPlain(event) || !onlyKeys(event, DIRECT_KEYS)) return undefined;
  const { lockIds, locks, dryRun, force, userId, moduleCode } = event;
  if (dryRun !== undefined && typeof dryRun !== 'boolean') return undefined;
  if (force !== undefined && typeof force !== 'boolean') return undefined;
  if (lockIds === undefined && locks === undefined) {
    return isValidId(userId) && (moduleCode === undefined || isValidId(moduleCode))
      ? 'findByUser'
      : undefined;
  }
  if (lockIds !== undefined && locks !== undefined) return undefined;
  if (moduleCode !== undefined || (locks !== undefined && userId !== undefined)) return undefined;
  const list = lockIds ?? locks;
  if (!Array.isArray(list) || list.length === 0 || list.length > 10_000) return undefined;
  if (locks !== undefined && list.some((item) => isPlain(item) && !onlyKeys(item, ENTRY_KEYS)))
    return undefined;
  return list as unknown[];
}

describe('the extremes, one by one', () => {
  it.each([
    ['CR/LF in the lock ID', { lockIds: ['abc\r\nX-Injected: 1'] }],
    ['NUL in the lock ID', { lockIds: ['abc\0def'] }],
    ['CR/LF in the user ID', { lockIds: ['abc'], userId: '15050\r\nX-Injected: 1' }],
    ['non-ASCII lock ID', { lockIds: ['lock-ü-😀'] }],
    ['a 1 MB lock ID', { lockIds: [MEGABYTE] }],
    ['a 1 MB non-ASCII user ID', { locks: [{ lockId: 'a', userId: MEGABYTE_NON_ASCII }] }],
    ['a 10,000-level nested array as lock ID', { lockIds: [DEEP_ARRAY] }],
    ['a 10,000-level nested object as entry', { locks: [DEEP_OBJECT] }],
    ['a 10,000-level nested array as payload', DEEP_ARRAY],
    ['a 10,000-level nested lockIds', { lockIds: DEEP_ARRAY }],
    ['a 1 MB string as payload', MEGABYTE],
  ])('%s: answered, nothing sent, nothing echoed', async (_name, event) => {
    const report = (await handler(event, lambdaContext('release'))) as ReleaseReport;
    expect(stack.koodrive.requests).toHaveLength(0);
    expect(report.summary.released + report.summary.alreadyReleased).toBe(0);
    expectBoundedReport(report, 1);
    expect(JSON.stringify(report).length).toBeLessThan(2000);
  });

  it.each([
    ['a 1 MB body', MEGABYTE],
    ['a 1 MB lock ID', JSON.stringify({ lockId: MEGABYTE })],
    ['CR/LF in the lock ID', JSON.stringify({ lockId: 'a\r\nb' })],
    ['NUL in the user ID', JSON.stringify({ lockId: 'a', userId: 'u\0' })],
    ['a 10,000-level nested array', DEEP_ARRAY_TEXT],
    ['a 10,000-level nested lockId', DEEP_OBJECT_TEXT],
  ])('SQS, %s: that record comes back, nothing is sent', async (_name, body) => {
    const ok = stack.koodrive.seedLock(LOCAL_USER_ID, '102');
    const records = [record(body), record(JSON.stringify({ lockId: ok }))];
    const answer = (await handler({ Records: records }, lambdaContext('release'))) as SQSBatchResponse;
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: records[0]?.messageId }] });
    expect(stack.koodrive.requests.map((r) => r.lockId)).toEqual([ok]);
  });

  it('a 10,000-entry payload of 1 KB strings: each entry refused on its own, memory growth bounded', async () => {
    const gc = exposeGc();
    const lockIds = Array.from({ length: 10_000 }, (_, i) => `${i}-${'k'.repeat(1020)}`);
    gc();
    const before = process.memoryUsage().heapUsed;
    const report = (await handler({ lockIds }, lambdaContext('release'))) as ReleaseReport;
    gc();
    const grownMb = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
    expect(report.summary).toMatchObject({ requested: 10_000, failed: 10_000, released: 0 });
    expect(report.results.every((r) => r.error?.kind === 'invalid-input')).toBe(true);
    expect(report.results[7]?.error?.message).toBe('lockIds[7]: lockId is 1022 characters long; at most 256');
    expectBoundedReport(report, 10_000);
    expect(stack.koodrive.requests).toHaveLength(0);
    // The payload itself is 10 MB; the report (10,000 results of ~100-character previews and messages) a few.
    console.log(`heap growth: ${grownMb.toFixed(1)} MB`);
    expect(grownMb, `heap grew ${grownMb.toFixed(1)} MB`).toBeLessThan(40);
  });

  it('10,000 over-long IDs: each clipped to a 32-character preview in the answer, and one log line for them all', async () => {
    const lockIds = Array.from({ length: 10_000 }, (_, i) => `${i}-${'k'.repeat(998)}`);
    const restoreLevel = applyEnv({ LOG_LEVEL: 'INFO' });
    resetApp();
    const written: string[] = [];
    // Powertools writes INFO lines to stdout, WARN and ERROR to stderr: read both.
    const spies = [process.stdout, process.stderr].map((stream) =>
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
        written.push(
          ...String(chunk)
            .split('\n')
            .filter((line) => line.startsWith('{')),
        );
        return true;
      }),
    );
    let report: ReleaseReport;
    try {
      report = (await handler({ lockIds }, lambdaContext('release'))) as ReleaseReport;
    } finally {
      for (const spy of spies) spy.mockRestore();
      restoreLevel();
    }
    expect(report.results).toHaveLength(10_000);
    expect(report.results[3]?.lockId).toBe(`3-${'k'.repeat(30)}…`);
    // Each result is about 210 bytes: the clipped ID, the user, the outcome and a message naming the entry.
    const size = JSON.stringify(report).length;
    console.log(`answer for 10,000 over-long IDs: ${(size / 1024).toFixed(1)} KB`);
    expect(size).toBeLessThan(10_000 * 230);
    const lines = written.map((line) => JSON.parse(line) as Record<string, unknown>);
    const invalid = lines.filter((l) => l.message === 'entries not released: invalid input');
    expect(invalid).toHaveLength(1);
    expect(invalid[0]).toMatchObject({ count: 10_000, errorKind: 'invalid-input' });
    expect((invalid[0]?.first as unknown[]).length).toBe(5);
    expect(lines.filter((l) => l.message === 'lock not released')).toEqual([]);
    expect(written.join('\n').length).toBeLessThan(5000);
  });

  it('a 10,000-entry dry run of valid IDs: answered quickly, nothing sent, memory growth bounded', async () => {
    const gc = exposeGc();
    const lockIds = Array.from({ length: 10_000 }, (_, i) => `dry-${i}-${'k'.repeat(200)}`);
    gc();
    const before = process.memoryUsage().heapUsed;
    const started = Date.now();
    const report = (await handler({ lockIds, dryRun: true }, lambdaContext('release'))) as ReleaseReport;
    const tookMs = Date.now() - started;
    gc();
    const grownMb = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
    expect(report.summary).toMatchObject({ requested: 10_000, wouldRelease: 10_000 });
    expect(stack.koodrive.requests).toHaveLength(0);
    expect(tookMs).toBeLessThan(5000);
    console.log(`heap growth: ${grownMb.toFixed(1)} MB`);
    expect(grownMb, `heap grew ${grownMb.toFixed(1)} MB`).toBeLessThan(40);
  });

  it('a payload over MAX_LOCKS_PER_INVOKE (default 10,000) is refused whole with a clear message', async () => {
    const lockIds = Array.from({ length: 10_001 }, (_, i) => `over-${i}`);
    const report = (await handler({ lockIds }, lambdaContext('release'))) as ReleaseReport;
    expect(report.results).toEqual([]);
    expect(report.error).toEqual({
      kind: 'invalid-input',
      field: 'lockIds',
      message:
        'lockIds holds 10001 locks; at most 10000 per invocation: split it, or send them through the queue',
    });
    // Nothing was attempted, so nothing is counted as failed.
    expect(report.summary).toMatchObject({ requested: 10_001, released: 0, failed: 0 });
    expect(stack.koodrive.requests).toHaveLength(0);
  });

  it('honours a configured MAX_LOCKS_PER_INVOKE, for both payload shapes, and accepts exactly the maximum', async () => {
    process.env.MAX_LOCKS_PER_INVOKE = '3';
    resetApp();
    const ids = Array.from({ length: 4 }, () => stack.koodrive.seedLock(LOCAL_USER_ID, '102'));
    const tooMany = (await handler({ lockIds: ids }, lambdaContext('release'))) as ReleaseReport;
    expect(tooMany.error?.message).toMatch(/^lockIds holds 4 locks; at most 3 per invocation/);
    const tooManyLocks = (await handler(
      { locks: ids.map((lockId) => ({ lockId, userId: LOCAL_USER_ID })) },
      lambdaContext('release'),
    )) as ReleaseReport;
    expect(tooManyLocks.error?.message).toMatch(/^locks holds 4 locks; at most 3 per invocation/);
    expect(stack.koodrive.requests).toHaveLength(0);
    for (const id of ids) expect(stack.koodrive.isHeld(id)).toBe(true);
    const exactly = (await handler({ lockIds: ids.slice(0, 3) }, lambdaContext('release'))) as ReleaseReport;
    expect(exactly.error).toBeUndefined();
    expect(exactly.summary.released).toBe(3);
  });
});

describe('the sweep event: bad fields are named, never echoed whole', () => {
  // The sweep checks its configuration first; a refused event is answered before the table is ever read.
  let restoreTable: () => void;
  beforeEach(() => {
    restoreTable = applyEnv({ LOCK_LEDGER_TABLE: 'never-read' });
    resetApp();
  });
  afterEach(() => {
    restoreTable();
    resetApp();
  });

  it.each([
    ['a 1 MB string', MEGABYTE, /^dryRun must be true or false, got "L{40}"… \(1048576 characters\)$/],
    ['a 10,000-level nested array', DEEP_ARRAY, /^dryRun must be true or false, got an array$/],
    ['a 10,000-level nested object', DEEP_OBJECT, /^dryRun must be true or false, got an object$/],
    ['CR/LF', 'a\r\nb', /^dryRun must be true or false, got "a\\r\\nb"$/],
  ])('dryRun = %s', (_name, value, message) => {
    const fail = (event: unknown): string[] => {
      try {
        parseSweepEvent(event, { staleAfterSeconds: 900, limit: 1000 });
      } catch (error) {
        expect(error).toBeInstanceOf(SweepEventError);
        return (error as SweepEventError).problems;
      }
      throw new Error('expected a SweepEventError');
    };
    expect(fail({ dryRun: value })).toEqual([expect.stringMatching(message)]);
    const limit = fail({ limit: value })[0] ?? '';
    expect(limit.length).toBeLessThan(200);
  });

  it('the sweep handler answers a 1 MB field with a short refusal naming it', async () => {
    const report = await sweepHandler({ staleAfterSeconds: MEGABYTE }, lambdaContext('sweep'));
    expect(report.error).toEqual({
      kind: 'invalid-input',
      field: 'staleAfterSeconds',
      message: expect.stringMatching(
        /^staleAfterSeconds must be a whole number from 60 to 604800, got "L{40}"… \(1048576 characters\)$/,
      ) as string,
    });
    expect(JSON.stringify(report).length).toBeLessThan(1000);
  });

  it('the sweep handler answers a 1 MB unknown key with a short refusal naming its preview', async () => {
    const report = await sweepHandler({ [MEGABYTE]: true }, lambdaContext('sweep'));
    expect(report.error).toMatchObject({ kind: 'invalid-input', field: `${'L'.repeat(32)}…` });
    expect(JSON.stringify(report).length).toBeLessThan(1000);
  });
});

/** global.gc, without starting node with --expose-gc. */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
