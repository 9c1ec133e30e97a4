import type { SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_OPTIONS } from '../../src/core/engine';
import type { AttemptOutcome, LockResult, ReleaseReport } from '../../src/core/model';
import { buildReport, handleReleaseEvent, isSqsEvent, type ReleaseContext } from '../../src/core/release';
import { loadEvent, sqsRecord } from '../helpers/events';
import { FakeClock, FakeGateway, seededRandom } from '../helpers/fakes';
import { ledgerItem, memoryLedger, type MemoryLedger } from '../helpers/ledger-fakes';

const USER = '1505084218764547200';

function context(gateway: FakeGateway, overrides: Partial<ReleaseContext> = {}): ReleaseContext {
  return {
    engine: { gateway, clock: new FakeClock(), random: seededRandom(7), remainingMs: () => 60_000 },
    options: { ...DEFAULT_ENGINE_OPTIONS, recordReserveMs: 0 },
    defaultUserId: USER,
    maxLocksPerInvoke: 100,
    ...overrides,
  };
}

describe('release on an SQS batch', () => {
  it('lists exactly the records whose lock was not released (the sample has one bad body)', async () => {
    const event = loadEvent<SQSEvent>('sqs-release.json');
    const gateway = new FakeGateway();
    const answer = await handleReleaseEvent(event, context(gateway));
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: event.Records[2]?.messageId }] });
    // the record without userId used the secret's defaultUserId
    expect(gateway.calls).toContainEqual({
      lockId: '8f14e45f-ceea-467f-a8f2-1c8d1d3c0004@102',
      userId: USER,
    });
    expect(gateway.calls).toHaveLength(3);
  });

  it('treats alreadyReleased as done and failed locks as failures', async () => {
    const event = loadEvent<SQSEvent>('sqs-release.json');
    const answers: Record<string, AttemptOutcome> = {
      '8f14e45f-ceea-467f-a8f2-1c8d1d3c0001@102': { ok: true, outcome: 'alreadyReleased' },
      '8f14e45f-ceea-467f-a8f2-1c8d1d3c0002@101': {
        ok: false,
        error: { kind: 'permanent', httpStatus: 400, message: 'nope' },
      },
    };
    const gateway = new FakeGateway((lock) => answers[lock.lockId] ?? { ok: true, outcome: 'released' });
    const answer = await handleReleaseEvent(event, context(gateway));
    expect(answer).toEqual({
      batchItemFailures: [
        { itemIdentifier: event.Records[1]?.messageId },
        { itemIdentifier: event.Records[2]?.messageId },
      ],
    });
  });

  it('releases a lock named by two records once; both records share its outcome', async () => {
    const event = loadEvent<SQSEvent>('sqs-release.json');
    const first = event.Records[0]!;
    event.Records.push({ ...first, messageId: 'dup-1' });
    const gateway = new FakeGateway(() => ({ ok: false, error: { kind: 'permanent', message: 'x' } }));
    const answer = await handleReleaseEvent(event, context(gateway));
    expect(gateway.attemptsFor('8f14e45f-ceea-467f-a8f2-1c8d1d3c0001@102')).toBe(1);
    expect(answer).toMatchObject({
      batchItemFailures: expect.arrayContaining([
        { itemIdentifier: first.messageId },
        { itemIdentifier: 'dup-1' },
      ]) as unknown,
    });
  });

  it('fails a record with no userId when the secret names no defaultUserId', async () => {
    const event = loadEvent<SQSEvent>('sqs-release.json');
    const answer = await handleReleaseEvent(event, context(new FakeGateway(), { defaultUserId: undefined }));
    expect(answer).toEqual({
      batchItemFailures: [
        { itemIdentifier: event.Records[2]?.messageId },
        { itemIdentifier: event.Records[3]?.messageId },
      ],
    });
  });
});

describe('release on a direct invocation', () => {
  it('answers the report: one result per distinct lock, duplicates counted', async () => {
    const gateway = new FakeGateway((lock) =>
      lock.lockId.includes('0099')
        ? { ok: true, outcome: 'alreadyReleased' }
        : { ok: true, outcome: 'released' },
    );
    const report = (await handleReleaseEvent(
      loadEvent('direct-release.json'),
      context(gateway),
    )) as ReleaseReport;
    expect(report.summary).toMatchObject({
      requested: 4,
      released: 2,
      alreadyReleased: 1,
      failed: 0,
      duplicates: 1,
    });
    expect(report.results.map((r) => [r.lockId.slice(-8), r.outcome])).toEqual([
      ['0005@102', 'released'],
      ['0006@100', 'released'],
      ['0099@101', 'alreadyReleased'],
    ]);
    expect(gateway.calls).toHaveLength(3);
  });

  it('in a dry run calls nothing and reports wouldRelease, and the invalid entry as its own failure', async () => {
    const gateway = new FakeGateway();
    const report = (await handleReleaseEvent(
      loadEvent('direct-release-dry-run.json'),
      context(gateway),
    )) as ReleaseReport;
    expect(gateway.calls).toHaveLength(0);
    expect(report.summary).toMatchObject({ requested: 2, wouldRelease: 1, failed: 1, released: 0 });
    expect(report.results[1]).toMatchObject({
      outcome: 'failed',
      attempts: 0,
      error: { kind: 'invalid-input', message: expect.stringContaining('locks[1]') as unknown },
    });
  });

  it('refuses a payload over the maximum as a whole, attempting nothing', async () => {
    const gateway = new FakeGateway();
    const lockIds = Array.from({ length: 101 }, (_, i) => `lock-${i}`);
    const report = (await handleReleaseEvent({ lockIds, userId: USER }, context(gateway))) as ReleaseReport;
    expect(gateway.calls).toHaveLength(0);
    expect(report.error).toEqual({
      kind: 'invalid-input',
      field: 'lockIds',
      message:
        'lockIds holds 101 locks; at most 100 per invocation: split it, or send them through the queue',
    });
    // Nothing was attempted: nothing is counted as failed.
    expect(report.summary).toMatchObject({ requested: 101, failed: 0, released: 0 });
  });

  it.each([
    ['a string', 'lock-1'],
    ['null', null],
    ['both lockIds and locks', { lockIds: [], locks: [] }],
    ['lockIds not an array', { lockIds: 'lock-1' }],
    ['dryRun not boolean', { lockIds: ['a'], dryRun: 'yes' }],
  ])('refuses %s with a clear message, without throwing', async (_, payload) => {
    const report = (await handleReleaseEvent(payload, context(new FakeGateway()))) as ReleaseReport;
    expect(report.error).toMatchObject({ kind: 'invalid-input' });
    expect(report.results).toEqual([]);
  });

  it('rejects IDs with control characters, spaces, non-ASCII or over 256 characters before any call', async () => {
    const gateway = new FakeGateway();
    const bad = ['a\r\nX-Evil: 1', 'with space', 'é', 'x'.repeat(257), '', 42];
    const report = (await handleReleaseEvent(
      { lockIds: bad, userId: USER },
      context(gateway),
    )) as ReleaseReport;
    expect(gateway.calls).toHaveLength(0);
    expect(report.summary).toMatchObject({ requested: 6, failed: 6 });
    expect(report.results.every((r) => r.error?.kind === 'invalid-input')).toBe(true);
    expect(report.results.every((r) => /^[\x21-\x7e…]*$/.test(r.lockId))).toBe(true);
  });
});

describe('isSqsEvent', () => {
  it('needs every record to come from aws:sqs with a messageId', () => {
    expect(isSqsEvent(loadEvent('sqs-release.json'))).toBe(true);
    expect(isSqsEvent({ Records: [{ eventSource: 'aws:sqs', messageId: 'x' }] })).toBe(true);
    expect(isSqsEvent({ Records: [] })).toBe(false);
    expect(isSqsEvent({ Records: [{ eventSource: 'aws:sns', messageId: 'x' }] })).toBe(false);
    expect(isSqsEvent({ Records: [{ eventSource: 'aws:sqs', messageId: 7 }] })).toBe(false);
    expect(isSqsEvent({ Records: [{ eventSource: 'aws:sqs', messageId: 'x' }, null] })).toBe(false);
    expect(isSqsEvent({ Records: [{ eventSource: 'aws:sqs', messageId: 'x' }, undefined] })).toBe(false);
    expect(isSqsEvent({ Records: [{ eventSource: 'aws:sqs', messageId: 'x' }, 'record'] })).toBe(false);
    expect(isSqsEvent({ Records: { eventSource: 'aws:sqs', messageId: 'x' } })).toBe(false);
    expect(isSqsEvent(null)).toBe(false);
    expect(isSqsEvent(undefined)).toBe(false);
    expect(isSqsEvent('Records')).toBe(false);
    expect(isSqsEvent(loadEvent('direct-release.json'))).toBe(false);
  });
});

describe('one decision per lock, for logs and metrics (onResult)', () => {
  function telling(gateway = new FakeGateway()) {
    const told: { result: LockResult; messageIds?: string[] }[] = [];
    const ctx = context(gateway);
    ctx.engine.onResult = (result, correlation) =>
      told.push({ result, ...(correlation?.messageIds ? { messageIds: correlation.messageIds } : {}) });
    return { told, ctx };
  }

  it('direct invoke: every invalid entry is a decision of its own, with the reason', async () => {
    const { told, ctx } = telling();
    await handleReleaseEvent({ lockIds: ['good-1', 'bad id', '', 'good-2'], userId: USER }, ctx);
    const invalid = told.filter((t) => t.result.error?.kind === 'invalid-input');
    expect(invalid.map((t) => t.result)).toEqual([
      {
        lockId: 'bad?id',
        userId: USER,
        outcome: 'failed',
        attempts: 0,
        error: {
          kind: 'invalid-input',
          message: 'lockIds[1]: lockId may hold only printable ASCII characters (0x21-0x7E)',
        },
      },
      {
        lockId: '',
        userId: USER,
        outcome: 'failed',
        attempts: 0,
        error: { kind: 'invalid-input', message: 'lockIds[2]: lockId must not be empty' },
      },
    ]);
    expect(told.map((t) => t.result.lockId).sort()).toEqual(['', 'bad?id', 'good-1', 'good-2']);
  });

  it('a dry run decides nothing: onResult is not told', async () => {
    const { told, ctx } = telling();
    await handleReleaseEvent(loadEvent('direct-release-dry-run.json'), ctx);
    expect(told).toEqual([]);
  });

  it('SQS: an invalid record is told with its message; a lock two records name, with both', async () => {
    const { told, ctx } = telling();
    const lock = JSON.stringify({ lockId: 'lock-a', userId: USER });
    await handleReleaseEvent(
      { Records: [sqsRecord('m-1', lock), sqsRecord('m-2', 'not json'), sqsRecord('m-3', lock)] },
      ctx,
    );
    expect(told).toEqual([
      {
        result: {
          lockId: '',
          userId: '',
          outcome: 'failed',
          attempts: 0,
          error: { kind: 'invalid-input', message: 'message body is not JSON' },
        },
        messageIds: ['m-2'],
      },
      {
        result: { lockId: 'lock-a', userId: USER, outcome: 'released', attempts: 1 },
        messageIds: ['m-1', 'm-3'],
      },
    ]);
  });
});

describe('two users’ locks with the same ID are different locks', () => {
  const body = (userId: string) => JSON.stringify({ lockId: 'shared-id', userId });

  it('SQS: released separately; each record gets its own lock’s outcome', async () => {
    const gateway = new FakeGateway((lock) =>
      lock.userId === 'user-b'
        ? { ok: false, error: { kind: 'permanent', httpStatus: 400, message: 'refused' } }
        : { ok: true, outcome: 'released' },
    );
    const answer = await handleReleaseEvent(
      {
        Records: [
          sqsRecord('a-1', body('user-a')),
          sqsRecord('b-1', body('user-b')),
          sqsRecord('a-2', body('user-a')),
        ],
      },
      context(gateway),
    );
    expect(gateway.calls).toEqual([
      { lockId: 'shared-id', userId: 'user-a' },
      { lockId: 'shared-id', userId: 'user-b' },
    ]);
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: 'b-1' }] });
  });

  it('direct invoke: reported separately, and neither counts as a duplicate of the other', async () => {
    const gateway = new FakeGateway((lock) =>
      lock.userId === 'user-b' ? { ok: true, outcome: 'alreadyReleased' } : { ok: true, outcome: 'released' },
    );
    const report = (await handleReleaseEvent(
      {
        locks: [
          { lockId: 'shared-id', userId: 'user-a' },
          { lockId: 'shared-id', userId: 'user-b' },
          { lockId: 'shared-id', userId: 'user-a' },
        ],
      },
      context(gateway),
    )) as ReleaseReport;
    expect(report.results).toEqual([
      { lockId: 'shared-id', userId: 'user-a', outcome: 'released', attempts: 1 },
      { lockId: 'shared-id', userId: 'user-b', outcome: 'alreadyReleased', attempts: 1 },
    ]);
    expect(report.summary).toEqual({
      requested: 3,
      released: 1,
      alreadyReleased: 1,
      failed: 0,
      held: 0,
      duplicates: 1,
      durationMs: 0,
    });
  });
});

describe('the report', () => {
  it('measures its duration on the clock', async () => {
    const clock = new FakeClock(1_000_000);
    const gateway = new FakeGateway(() => {
      clock.time += 250;
      return { ok: true, outcome: 'released' };
    });
    const ctx = context(gateway);
    ctx.engine.clock = clock;
    const report = (await handleReleaseEvent({ lockIds: ['a', 'b'], userId: USER }, ctx)) as ReleaseReport;
    expect(report.summary.durationMs).toBe(500);
    const refusedCtx = context(new FakeGateway());
    refusedCtx.engine.clock = clock;
    const refused = (await handleReleaseEvent({ lockIds: 'a' }, refusedCtx)) as ReleaseReport;
    expect(refused.summary.durationMs).toBe(0);
    const dryCtx = context(new FakeGateway());
    dryCtx.engine.clock = clock;
    const dry = (await handleReleaseEvent(
      { dryRun: true, lockIds: ['a'], userId: USER },
      dryCtx,
    )) as ReleaseReport;
    expect(dry.summary.durationMs).toBe(0);
  });

  it('a refused payload: every entry counted as requested, none as failed (none was attempted)', async () => {
    const lockIds = Array.from({ length: 101 }, (_, i) => `lock-${i}`);
    const report = (await handleReleaseEvent(
      { lockIds, userId: USER },
      context(new FakeGateway()),
    )) as ReleaseReport;
    expect(report.summary).toEqual({
      requested: 101,
      released: 0,
      alreadyReleased: 0,
      failed: 0,
      held: 0,
      duplicates: 0,
      durationMs: 0,
    });
  });

  it('a dry run counts wouldRelease and only then', async () => {
    const dry = (await handleReleaseEvent(
      { dryRun: true, lockIds: ['a', 'a', 'b'], userId: USER },
      context(new FakeGateway()),
    )) as ReleaseReport;
    expect(dry.summary).toEqual({
      requested: 3,
      released: 0,
      alreadyReleased: 0,
      failed: 0,
      held: 0,
      duplicates: 1,
      wouldRelease: 2,
      durationMs: 0,
    });
    expect(dry.results).toEqual([
      { lockId: 'a', userId: USER, outcome: 'wouldRelease', attempts: 0 },
      { lockId: 'b', userId: USER, outcome: 'wouldRelease', attempts: 0 },
    ]);
    const real = (await handleReleaseEvent(
      { lockIds: ['a'], userId: USER },
      context(new FakeGateway()),
    )) as ReleaseReport;
    expect(real.summary).not.toHaveProperty('wouldRelease');
  });

  it('a lock the engine gave no outcome for is reported failed, never released', () => {
    const report = buildReport([{ ok: true, lock: { lockId: 'a', userId: USER } }], new Map(), 5);
    expect(report.results).toEqual([
      {
        lockId: 'a',
        userId: USER,
        outcome: 'failed',
        attempts: 0,
        error: { kind: 'permanent', message: 'internal error: no outcome recorded for this lock' },
      },
    ]);
    expect(report.summary).toMatchObject({ requested: 1, failed: 1, durationMs: 5 });
  });
});

describe('live leases on the release path (the ledger decides)', () => {
  const NOW = 1_700_000_000_000;
  const policy = { staleAfterSeconds: 900, clockSkewSeconds: 10 };
  const live = (lockId: string) =>
    ledgerItem({ lockId, userId: USER, holder: 'w-1', heartbeatAt: NOW - 10_000, leaseSeconds: 60 });
  const withLedger = (gateway: FakeGateway, memory: MemoryLedger): ReleaseContext => {
    const ctx = context(gateway, { leases: { ledger: memory, policy } });
    ctx.engine.clock = new FakeClock(NOW);
    ctx.engine.recorder = memory;
    return ctx;
  };

  it('SQS: a held lock is no batch failure, and its messages share the held outcome', async () => {
    const memory = memoryLedger([live('live')], () => NOW);
    const gateway = new FakeGateway();
    const decisions: Array<[string, string[] | undefined]> = [];
    const ctx = withLedger(gateway, memory);
    ctx.engine.onResult = (r, c) => decisions.push([r.outcome, c?.messageIds]);
    const body = JSON.stringify({ lockId: 'live', userId: USER });
    const answer = await handleReleaseEvent(
      { Records: [sqsRecord('m1', body), sqsRecord('m2', body), sqsRecord('m3', '{"lockId":"dead"}')] },
      ctx,
    );
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(gateway.calls.map((c) => c.lockId)).toEqual(['dead']);
    expect(decisions).toEqual([
      ['held', ['m1', 'm2']],
      ['released', ['m3']],
    ]);
    expect(memory.items.get('live')).toMatchObject({ status: 'HELD', version: 1 });
  });

  it('direct: the report counts held locks, each with holder and lease left; "force": true releases them', async () => {
    const memory = memoryLedger([live('live')], () => NOW);
    const gateway = new FakeGateway();
    const report = (await handleReleaseEvent(
      { lockIds: ['live', 'other'] },
      withLedger(gateway, memory),
    )) as ReleaseReport;
    expect(report.results).toEqual([
      {
        lockId: 'live',
        userId: USER,
        outcome: 'held',
        attempts: 0,
        status: 'HELD',
        holder: 'w-1',
        leaseLeftSeconds: 60,
      },
      { lockId: 'other', userId: USER, outcome: 'released', attempts: 1 },
    ]);
    expect(report.summary).toEqual({
      requested: 2,
      released: 1,
      alreadyReleased: 0,
      failed: 0,
      held: 1,
      duplicates: 0,
      durationMs: 0,
    });
    const forced = (await handleReleaseEvent(
      { lockIds: ['live'], force: true },
      withLedger(gateway, memory),
    )) as ReleaseReport;
    expect(forced.results).toEqual([{ lockId: 'live', userId: USER, outcome: 'released', attempts: 1 }]);
    expect(memory.items.get('live')).toMatchObject({ status: 'RELEASED', forcedAt: NOW });
  });

  it('a dry run previews by the same read and rule: held stays held unless forced; nothing is called or written', async () => {
    const memory = memoryLedger([live('live')], () => NOW);
    const before = structuredClone(memory.items.get('live'));
    const gateway = new FakeGateway();
    const heard: LockResult[] = [];
    const ctx = withLedger(gateway, memory);
    ctx.engine.onResult = (r) => heard.push(r);
    const report = (await handleReleaseEvent(
      { lockIds: ['live', 'other'], dryRun: true },
      ctx,
    )) as ReleaseReport;
    expect(report.results.map((r) => [r.lockId, r.outcome])).toEqual([
      ['live', 'held'],
      ['other', 'wouldRelease'],
    ]);
    expect(report.summary).toMatchObject({ requested: 2, held: 1, wouldRelease: 1, released: 0 });
    const forced = (await handleReleaseEvent(
      { lockIds: ['live'], dryRun: true, force: true },
      withLedger(gateway, memory),
    )) as ReleaseReport;
    expect(forced.results[0]?.outcome).toBe('wouldRelease');
    expect(gateway.calls).toEqual([]);
    expect(heard).toEqual([]);
    expect(memory.items.get('live')).toEqual(before);
  });

  it('the locks of one invocation are read together, 100 a request: an SQS batch in one, a direct list of 150 in two (a dry run too)', async () => {
    const memory = memoryLedger([live('live')], () => NOW);
    const reads: string[][] = [];
    const ctx = withLedger(new FakeGateway(), memory);
    ctx.leases = {
      policy,
      ledger: {
        readItems: (lockIds) => {
          reads.push([...lockIds]);
          return memory.readItems(lockIds);
        },
      },
    };
    const body = (lockId: string) => JSON.stringify({ lockId, userId: USER });
    const ids = ['live', ...Array.from({ length: 9 }, (_, i) => `dead-${i}`)];
    const answer = await handleReleaseEvent(
      { Records: ids.map((lockId, i) => sqsRecord(`m${i}`, body(lockId))) },
      ctx,
    );
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(reads).toEqual([ids]);

    reads.length = 0;
    ctx.maxLocksPerInvoke = 1000;
    const many = Array.from({ length: 150 }, (_, i) => `lock-${i}`);
    const report = (await handleReleaseEvent(
      { lockIds: many, userId: USER, dryRun: true },
      ctx,
    )) as ReleaseReport;
    expect(report.summary).toMatchObject({ wouldRelease: 150 });
    expect(reads).toEqual([many.slice(0, 100), many.slice(100)]);
  });
});
