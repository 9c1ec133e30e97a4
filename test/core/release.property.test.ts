import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE_OPTIONS } from '../../src/core/engine';
import type { ReleaseReport } from '../../src/core/model';
import { handleReleaseEvent, type ReleaseContext } from '../../src/core/release';
import { FakeClock, FakeGateway, seededRandom } from '../helpers/fakes';

const SAFE_ID = /^[\x21-\x7e]{1,256}$/;

function context(gateway: FakeGateway): ReleaseContext {
  return {
    engine: { gateway, clock: new FakeClock(), random: seededRandom(3), remainingMs: () => 60_000 },
    options: { ...DEFAULT_ENGINE_OPTIONS, recordReserveMs: 0 },
    defaultUserId: 'default-user',
    maxLocksPerInvoke: 500,
  };
}

/** IDs that are often hostile: control characters, CR/LF, NUL, non-ASCII, empty, overlong. */
const hostileId = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('a', '\r', '\n', '\0', ' ', 'é', '\u2028', ':'), maxLength: 20 }),
  fc.constant('x'.repeat(257)),
  fc.stringMatching(/^[\x21-\x7e]{1,20}$/),
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
const sqsEvent = fc.record({ Records: fc.array(sqsRecord, { minLength: 1, maxLength: 20 }) });
const directPayload = fc.oneof(
  fc.anything(),
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

describe('release never throws and never sends an unsafe ID, whatever it is given', () => {
  it('SQS events: every record is answered for; only safe IDs reach KooDrive', async () => {
    await fc.assert(
      fc.asyncProperty(sqsEvent, async (event) => {
        const gateway = new FakeGateway();
        const answer = await handleReleaseEvent(event, context(gateway));
        for (const call of gateway.calls) {
          expect(call.lockId).toMatch(SAFE_ID);
          expect(call.userId).toMatch(SAFE_ID);
        }
        // every failure names a record of the batch; every record not listed had its lock released
        const failed = new Set(
          ('batchItemFailures' in answer ? answer.batchItemFailures : []).map((f) => f.itemIdentifier),
        );
        expect([...failed].every((id) => event.Records.some((r) => r.messageId === id))).toBe(true);
        for (const record of event.Records) {
          if (!failed.has(record.messageId)) {
            const body = JSON.parse(record.body) as { lockId: string };
            expect(gateway.released.has(body.lockId)).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('direct payloads: a report that accounts for every entry; only safe IDs reach KooDrive', async () => {
    await fc.assert(
      fc.asyncProperty(directPayload, async (payload) => {
        const gateway = new FakeGateway();
        const report = (await handleReleaseEvent(payload, context(gateway))) as ReleaseReport;
        for (const call of gateway.calls) {
          expect(call.lockId).toMatch(SAFE_ID);
          expect(call.userId).toMatch(SAFE_ID);
        }
        const { summary, results } = report;
        if (report.error) {
          expect(results).toEqual([]);
          expect(gateway.calls).toEqual([]);
        } else {
          expect(summary.requested).toBe(results.length + summary.duplicates);
          expect(
            summary.released + summary.alreadyReleased + summary.failed + (summary.wouldRelease ?? 0),
          ).toBe(results.length);
        }
        for (const result of results) {
          expect(result.lockId).toMatch(/^[\x21-\x7e…]*$/);
          if (result.outcome === 'released') expect(gateway.released.has(result.lockId)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});
