/**
 * The promise, observed: the sweep's EMF documents carry TimeToFreeSeconds (one value per lock it confirmed
 * released, the seconds since the holder's last heartbeat) and OpenLocks (the open items it read). Run through
 * the sweep handler against the local stack; the expected values come from the heartbeats this test wrote and
 * the clock readings around the invocation, not from the code under test.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import { applyEnv, LOCAL_USER_ID, startLocalStack, type LocalStack } from '../../dev/stack';
import { DynamoLedger } from '../../src/ledger/ledger';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

type Line = Record<string, unknown>;
interface Emf {
  _aws: {
    CloudWatchMetrics: {
      Namespace: string;
      Dimensions: string[][];
      Metrics: { Name: string; Unit: string }[];
    }[];
  };
  [key: string]: unknown;
}

let stack: LocalStack;
let restoreEnv: () => void;
let lines: Line[] = [];

beforeAll(async () => {
  stack = await startLocalStack({ ledger: true });
  restoreEnv = applyEnv({ ...stack.env, LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: undefined });
});

afterAll(async () => {
  restoreEnv();
  vi.resetModules();
  await stack.close();
});

/** A HELD ledger item on a 120 s lease whose last heartbeat was `ageSeconds` ago; held in KooDrive when `inKooDrive`. */
async function held(ageSeconds: number, inKooDrive = true): Promise<{ lockId: string; heartbeatAt: number }> {
  const heartbeatAt = Date.now() - ageSeconds * 1000;
  const lockId = inKooDrive
    ? stack.koodrive.seedLock(LOCAL_USER_ID, '101', { expiresAt: heartbeatAt + 600_000 })
    : `gone-${ageSeconds}-${heartbeatAt}@101`;
  const past = new DynamoLedger({
    tableName: stack.dynamo!.tableName,
    calls: httpDynamoCallsFor(stack.dynamo!.client),
    now: () => heartbeatAt,
  });
  await past.recordAcquired({
    lockId,
    userId: LOCAL_USER_ID,
    moduleCode: '101',
    holder: 'worker-1',
    leaseSeconds: 120,
  });
  return { lockId, heartbeatAt };
}

/** Runs the sweep handler (fresh modules, so Powertools reads the environment) and keeps its stdout JSON lines. */
async function runSweep(event: unknown): Promise<Emf[]> {
  vi.resetModules();
  const { handler } = await import('../../src/handlers/sweep');
  lines = [];
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      for (const line of text.split('\n').filter(Boolean)) {
        try {
          lines.push(JSON.parse(line) as Line);
        } catch {
          // not a JSON line
        }
      }
      return write(chunk, ...(rest as []));
    });
  try {
    await handler(event, lambdaContext('sweep'));
  } finally {
    spy.mockRestore();
  }
  return lines.filter((l): l is Emf => typeof l._aws === 'object');
}

/** Every value of `name` across the EMF documents, with the document's unit and dimensions. */
function values(docs: Emf[], name: string): { values: number[]; units: string[]; dimensions: string[][][] } {
  const found = { values: [] as number[], units: [] as string[], dimensions: [] as string[][][] };
  for (const doc of docs) {
    for (const directive of doc._aws.CloudWatchMetrics) {
      const metric = directive.Metrics.find((m) => m.Name === name);
      if (!metric) continue;
      expect(directive.Namespace).toBe('KooDriveLockReleaser');
      found.units.push(metric.Unit);
      found.dimensions.push(directive.Dimensions);
      const value = doc[name];
      found.values.push(...(Array.isArray(value) ? (value as number[]) : [value as number]));
    }
  }
  return found;
}

describe('the sweep emits TimeToFreeSeconds and OpenLocks', () => {
  it('a dry run: the open items read, no time to free (nothing was released)', async () => {
    await held(10);
    await held(200);
    const docs = await runSweep({ dryRun: true });
    expect(values(docs, 'OpenLocks').values).toEqual([2]);
    expect(values(docs, 'TimeToFreeSeconds').values).toEqual([]);
  });

  it('one value per lock confirmed released or already released, from its last heartbeat; none for a failure or a live lock', async () => {
    // The dry run's two items are still open: one fresh (10 s), one stale (200 s, released by this sweep).
    const released = await held(300);
    const alreadyGone = await held(250, false); // KooDrive no longer has it: alreadyReleased
    const failing = await held(400);
    stack.koodrive.fault({
      match: (req) => req.lockId === failing.lockId,
      action: { type: 'status', status: 400, body: { code: '13000400', msg: 'bad request' } },
    });
    const before = Date.now();
    const docs = await runSweep({});
    const after = Date.now();

    expect(values(docs, 'OpenLocks').values).toEqual([5]);
    const time = values(docs, 'TimeToFreeSeconds');
    expect(time.units).toEqual(['Seconds']);
    expect(time.dimensions).toEqual([[['service']]]);
    // Three confirmed: the dry run's stale item (200 s) and this test's 300 s and 250 s ones; not the failed one.
    expect(time.values).toHaveLength(3);
    const sorted = [...time.values].sort((a, b) => a - b);
    for (const [value, { heartbeatAt }] of [
      [sorted[2], released],
      [sorted[1], alreadyGone],
    ] as const) {
      expect(value).toBeGreaterThanOrEqual((before - heartbeatAt) / 1000);
      expect(value).toBeLessThanOrEqual((after - heartbeatAt) / 1000);
    }
    expect(sorted[0]).toBeGreaterThanOrEqual(200);
    expect(sorted[0]).toBeLessThan(250);
    expect(stack.koodrive.isHeld(released.lockId)).toBe(false);
    expect(stack.koodrive.isHeld(failing.lockId)).toBe(true);
  });
});
