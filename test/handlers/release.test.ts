import type { SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import { LOCAL_USER_ID } from '../../dev/stack';
import { handler } from '../../src/handlers/release';
import type { ReleaseReport } from '../../src/core/model';
import { resetApp } from '../../src/wiring';
import { loadEvent } from '../helpers/events';
import { useLocalStack } from '../helpers/local-stack';

const stack = useLocalStack();

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
});
