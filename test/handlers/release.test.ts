import type { SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import { LOCAL_USER_ID } from '../../dev/stack';
import { handler } from '../../src/handlers/release';
import type { ReleaseReport } from '../../src/core/model';
import { resetApp } from '../../src/wiring';
import { loadEvent } from '../helpers/events';
import { useLocalStack } from '../helpers/local-stack';

// Settings some tests change are put back after each test.
const stack = useLocalStack({}, { RELEASE_CONCURRENCY: undefined, RELEASE_MAX_ATTEMPTS: undefined });

/** Seeds in the emulator every lock a sample event names, so they are held before the call. */
function seed(lockIds: string[]): void {
  for (const lockId of lockIds) stack().koodrive.seedLock(LOCAL_USER_ID, lockId.split('@')[1], { lockId });
}

describe('release handler against the local stack', () => {
  it('answers the SQS sample with exactly the bad record, and releases the others in KooDrive', async () => {
    const event = loadEvent<SQSEvent>('sqs-release.json');
    const ids = [
      '8f14e45f-ceea-467f-a8f2-1c8d1d3c0001@102',
      '8f14e45f-ceea-467f-a8f2-1c8d1d3c0002@101',
      '8f14e45f-ceea-467f-a8f2-1c8d1d3c0004@102',
    ];
    seed(ids);
    const answer = await handler(event, lambdaContext('release'));
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: event.Records[2]?.messageId }] });
    for (const id of ids) expect(stack().koodrive.isHeld(id)).toBe(false);
  });

  it('answers the direct sample with the report: released, duplicate, already released', async () => {
    seed(['8f14e45f-ceea-467f-a8f2-1c8d1d3c0005@102', '8f14e45f-ceea-467f-a8f2-1c8d1d3c0006@100']);
    const report = (await handler(
      loadEvent('direct-release.json'),
      lambdaContext('release'),
    )) as ReleaseReport;
    expect(report.summary).toMatchObject({
      requested: 4,
      released: 2,
      alreadyReleased: 1,
      failed: 0,
      duplicates: 1,
    });
    expect(report.results.map((r) => r.outcome)).toEqual(['released', 'released', 'alreadyReleased']);
  });

  it('reports a lock KooDrive keeps failing as failed with its status, and releases nothing falsely', async () => {
    const lockId = '8f14e45f-ceea-467f-a8f2-1c8d1d3c0005@102';
    seed([lockId]);
    stack().koodrive.fault({ action: { type: 'status', status: 503 } });
    process.env.RELEASE_MAX_ATTEMPTS = '2';
    resetApp();
    const report = (await handler({ lockIds: [lockId] }, lambdaContext('release'))) as ReleaseReport;
    expect(report.results[0]).toMatchObject({
      outcome: 'failed',
      attempts: 2,
      error: { kind: 'retryable', httpStatus: 503 },
    });
    expect(stack().koodrive.isHeld(lockId)).toBe(true);
  });

  it('fails the whole invocation, before any KooDrive call, when the secret is missing', async () => {
    process.env.KOODRIVE_SECRET_ID = 'no-such-secret';
    const before = stack().koodrive.requests.length;
    await expect(handler(loadEvent('sqs-release.json'), lambdaContext('release'))).rejects.toThrow(
      /secret no-such-secret could not be read: ResourceNotFoundException/,
    );
    expect(stack().koodrive.requests.length).toBe(before);
  });

  it('fails the whole invocation naming the setting when the environment is wrong', async () => {
    process.env.RELEASE_CONCURRENCY = 'many';
    await expect(handler(loadEvent('direct-release.json'), lambdaContext('release'))).rejects.toThrow(
      /RELEASE_CONCURRENCY must be a whole number/,
    );
  });

  it('refuses a payload with a typo’d key as a whole, naming it and the right one: nothing is released', async () => {
    const lockId = '8f14e45f-ceea-467f-a8f2-1c8d1d3c0005@102';
    seed([lockId]);
    const report = (await handler(
      { lockIds: [lockId], dryrun: true },
      lambdaContext('release'),
    )) as ReleaseReport;
    expect(report).toEqual({
      summary: {
        requested: 1,
        released: 0,
        alreadyReleased: 0,
        failed: 0,
        held: 0,
        duplicates: 0,
        durationMs: expect.any(Number) as number,
      },
      results: [],
      error: {
        kind: 'invalid-input',
        field: 'dryrun',
        message: '`dryrun`: unknown key, did you mean `dryRun`?',
      },
    });
    expect(stack().koodrive.isHeld(lockId)).toBe(true);
    expect(stack().koodrive.requests).toHaveLength(0);
  });

  it.each([
    [
      'a bad value',
      { lockIds: ['a'], dryRun: 'yes' },
      'dryRun',
      1,
      /^dryRun must be true or false, got string$/,
    ],
    ['an empty list', { lockIds: [] }, 'lockIds', 0, /^lockIds is empty: name at least one lock/],
    [
      'too many locks',
      { lockIds: Array.from({ length: 10_001 }, (_, i) => `l-${i}`) },
      'lockIds',
      10_001,
      /^lockIds holds 10001 locks; at most 10000/,
    ],
    [
      'an unknown key in an entry',
      { locks: [{ lockId: 'a', userid: 'u' }] },
      'locks[0].userid',
      1,
      /did you mean `userId`\?$/,
    ],
    ['not an object', 'lock-1', 'payload', 0, /^payload must be a JSON object, got string/],
    [
      'an SQS-like event that is not one',
      { Records: [{ body: '{}' }] },
      'Records',
      0,
      /^`Records`: not an SQS event/,
    ],
  ])(
    'refuses %s with the same structured answer: the field named, no results, nothing counted as failed',
    async (_name, event, field, requested, message) => {
      const report = (await handler(event, lambdaContext('release'))) as ReleaseReport;
      expect(Object.keys(report).sort()).toEqual(['error', 'results', 'summary']);
      expect(report.error).toEqual({
        kind: 'invalid-input',
        field,
        message: expect.stringMatching(message) as string,
      });
      expect(report.results).toEqual([]);
      expect(report.summary).toEqual({
        requested,
        released: 0,
        alreadyReleased: 0,
        failed: 0,
        held: 0,
        duplicates: 0,
        durationMs: expect.any(Number) as number,
      });
      expect(JSON.stringify(report)).not.toMatch(/\bat \S+ \(|\.ts:\d+/); // no stack trace
      expect(stack().koodrive.requests).toHaveLength(0);
    },
  );

  it('an SQS record whose body has an unknown key comes back, and its lock is not released for another user', async () => {
    const lockId = '8f14e45f-ceea-467f-a8f2-1c8d1d3c0002@101';
    seed([lockId]);
    const event = loadEvent<SQSEvent>('sqs-release.json');
    event.Records = [{ ...event.Records[0]!, body: JSON.stringify({ lockId, userid: 'someone-else' }) }];
    const answer = await handler(event, lambdaContext('release'));
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: event.Records[0]?.messageId }] });
    expect(stack().koodrive.isHeld(lockId)).toBe(true);
    expect(stack().koodrive.requests).toHaveLength(0);
  });
});
