/**
 * The log lines and EMF documents of real invocations against the local stack: the fields an on-call engineer
 * needs are there, and nothing secret is.
 */
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import { applyEnv, LOCAL_APP_SECRET, LOCAL_USER_ID, startLocalStack, type LocalStack } from '../../dev/stack';
import { DynamoLedger } from '../../src/ledger/ledger';
import { loadEvent } from '../helpers/events';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

type Line = Record<string, unknown>;

const EXPIRED_LOCK = 'a4b3c2d1-0000-4000-8000-00000000e001@100';
const LIVE_LOCK = 'a4b3c2d1-0000-4000-8000-00000000e002@101';

let stack: LocalStack;
let restoreEnv: () => void;
const lines: Line[] = [];
let raw = '';

async function freshHandlers() {
  // The logger and metrics read their settings when first imported: import them anew with telemetry on.
  vi.resetModules();
  return {
    release: (await import('../../src/handlers/release')).handler,
    sweep: (await import('../../src/handlers/sweep')).handler,
    resetApp: (await import('../../src/wiring')).resetApp,
  };
}

beforeAll(async () => {
  stack = await startLocalStack({ ledger: true });
  restoreEnv = applyEnv({
    ...stack.env,
    LOG_LEVEL: 'DEBUG',
    POWERTOOLS_METRICS_DISABLED: undefined,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand', // as Lambda sets it: the first invocation is a cold start
  });
  // Powertools writes INFO lines and EMF to stdout, WARN and ERROR to stderr: read both.
  const spies = [process.stdout, process.stderr].map((stream) => {
    const write = stream.write.bind(stream);
    return vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      raw += text;
      for (const line of text.split('\n').filter(Boolean)) {
        try {
          lines.push(JSON.parse(line) as Line);
        } catch {
          // not a JSON line (test runner output)
        }
      }
      return write(chunk, ...(rest as []));
    });
  });

  const { release, sweep, resetApp } = await freshHandlers();
  const event = loadEvent<SQSEvent>('sqs-release.json');
  const ok = stack.koodrive.seedLock(LOCAL_USER_ID, '102', {
    lockId: '8f14e45f-ceea-467f-a8f2-1c8d1d3c0001@102',
  });
  stack.koodrive.fault({
    match: (req) => req.lockId === '8f14e45f-ceea-467f-a8f2-1c8d1d3c0002@101',
    action: {
      type: 'status',
      status: 401,
      body: { error_code: 'APIGW.0301', error_msg: 'Incorrect app auth' },
    },
  });
  await release(event, lambdaContext('release'));
  // A lock a worker holds on a live lease: a direct release leaves it held.
  stack.koodrive.seedLock(LOCAL_USER_ID, '101', { lockId: LIVE_LOCK });
  await new DynamoLedger({
    tableName: stack.dynamo!.tableName,
    calls: httpDynamoCallsFor(stack.dynamo!.client),
  }).recordAcquired({
    lockId: LIVE_LOCK,
    userId: LOCAL_USER_ID,
    moduleCode: '101',
    holder: 'worker-7',
    leaseSeconds: 120,
  });
  await release({ lockIds: [LIVE_LOCK] }, lambdaContext('release'));
  await sweep({ dryRun: true }, lambdaContext('sweep'));
  // A release that failed 15 minutes after the last heartbeat: KooDrive has certainly expired the lock.
  const past = new DynamoLedger({
    tableName: stack.dynamo!.tableName,
    calls: httpDynamoCallsFor(stack.dynamo!.client),
    now: () => Date.now() - 15 * 60_000,
  });
  await past.recordAcquired({
    lockId: EXPIRED_LOCK,
    userId: LOCAL_USER_ID,
    moduleCode: '100',
    leaseSeconds: 120,
  });
  await past.record({
    lockId: EXPIRED_LOCK,
    userId: LOCAL_USER_ID,
    outcome: 'failed',
    attempts: 4,
    error: { kind: 'retryable', message: 'unavailable' },
  });
  await sweep({}, lambdaContext('sweep'));
  // Two invocations that fail as a whole (a secret that does not exist, a sweep without its table), and a sweep
  // event with a wrong field, which is answered (refused), not failed.
  const secretId = process.env.KOODRIVE_SECRET_ID;
  process.env.KOODRIVE_SECRET_ID = 'no-such-secret';
  resetApp();
  await expect(release(event, lambdaContext('release'))).rejects.toThrow(/no-such-secret/);
  process.env.KOODRIVE_SECRET_ID = secretId;
  resetApp();
  const refused = await sweep({ limit: 'all' }, lambdaContext('sweep'));
  expect(refused.error).toMatchObject({ kind: 'invalid-input', field: 'limit' });
  const table = process.env.LOCK_LEDGER_TABLE;
  delete process.env.LOCK_LEDGER_TABLE;
  resetApp();
  await expect(sweep({}, lambdaContext('sweep'))).rejects.toThrow(/LOCK_LEDGER_TABLE is required/);
  process.env.LOCK_LEDGER_TABLE = table;
  resetApp();
  expect(stack.koodrive.isHeld(ok)).toBe(false);
  expect(stack.koodrive.isHeld(LIVE_LOCK)).toBe(true);
  for (const spy of spies) spy.mockRestore();
}, 30_000);

afterAll(async () => {
  restoreEnv();
  vi.resetModules();
  await stack.close();
});

const logs = () => lines.filter((l) => typeof l.level === 'string');
const emf = () => lines.filter((l) => typeof l._aws === 'object');

describe('logs of a release invocation', () => {
  it('has one line per lock decision with masked user, outcome, attempts, error and correlation ids', () => {
    const decisions = logs().filter(
      (l) => l.operation === 'release' && typeof l.outcome === 'string' && l.lockId !== LIVE_LOCK,
    );
    expect(decisions).toHaveLength(4); // the SQS batch: 3 distinct locks + 1 malformed record
    for (const line of decisions) {
      expect(['****', '****7200']).toContain(line.userId);
      expect(line.function_request_id).toEqual(expect.any(String));
      expect(line.messageIds).toEqual([expect.stringMatching(/^0b7c3f4e-/)]);
    }
    const auth = decisions.find((l) => l.errorKind === 'auth');
    expect(auth).toMatchObject({
      level: 'WARN',
      outcome: 'failed',
      httpStatus: 401,
      koodriveCode: 'APIGW.0301',
    });
    expect(decisions.find((l) => l.errorKind === 'invalid-input')).toMatchObject({ attempts: 0 });
    expect(decisions.filter((l) => l.outcome === 'released' || l.outcome === 'alreadyReleased')).toHaveLength(
      2,
    );
  });

  it('has one error line, with the reason, for an invocation that fails as a whole', () => {
    const failures = logs().filter((l) => l.message === 'invocation failed as a whole');
    expect(failures.map((l) => [l.level, l.function_name])).toEqual([
      ['ERROR', 'release'],
      ['ERROR', 'sweep'],
    ]);
    expect(JSON.stringify(failures[0]?.error)).toMatch(/secret no-such-secret could not be read/);
    expect(JSON.stringify(failures[1]?.error)).toMatch(/LOCK_LEDGER_TABLE is required for the sweep/);
  });

  it('a refused sweep event is no failure: its summary line carries the error naming the field', () => {
    const refused = logs().filter((l) => l.message === 'sweep summary' && l.error !== undefined);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.error).toMatchObject({ kind: 'invalid-input', field: 'limit' });
    expect(JSON.stringify(refused[0])).not.toMatch(/\bat \S+ \(/); // no stack trace
  });

  it('ends with a summary line per invocation', () => {
    expect(logs().find((l) => l.message === 'release summary')).toMatchObject({
      trigger: 'sqs',
      records: 4,
      failedRecords: 2,
    });
    expect(logs().find((l) => l.message === 'sweep summary')).toMatchObject({ dryRun: true });
  });

  it('has a decision line for a lock left held by its live lease, with the holder and the lease left', () => {
    expect(logs().filter((l) => l.message === 'lock held: its lease is live, not released')).toEqual([
      expect.objectContaining({
        operation: 'release',
        lockId: LIVE_LOCK,
        userId: `****${LOCAL_USER_ID.slice(-4)}`,
        outcome: 'held',
        status: 'HELD',
        holder: 'worker-7',
        leaseLeftSeconds: expect.any(Number) as unknown,
      }),
    ]);
  });

  it('has a decision line for a failed release the sweep closed as EXPIRED without a KooDrive call', () => {
    expect(logs().filter((l) => l.message === 'lock closed as EXPIRED')).toEqual([
      expect.objectContaining({
        lockId: EXPIRED_LOCK,
        userId: `****${LOCAL_USER_ID.slice(-4)}`,
        outcome: 'closedExpired',
        reason: expect.stringMatching(/certainly expired/) as unknown,
      }),
    ]);
    expect(stack.koodrive.requests.filter((r) => r.lockId === EXPIRED_LOCK)).toEqual([]);
  });

  it('never shows the app secret, a signature or an Authorization value', () => {
    expect(raw).not.toContain(LOCAL_APP_SECRET);
    expect(raw).not.toMatch(/HMAC-SHA256 AppId=|Signature=|Bearer /);
    expect(raw).not.toContain(LOCAL_USER_ID);
  });
});

describe('EMF documents', () => {
  const metric = (name: string) =>
    emf().filter((doc) =>
      (doc._aws as { CloudWatchMetrics: { Metrics: { Name: string }[] }[] }).CloudWatchMetrics.some((m) =>
        m.Metrics.some((x) => x.Name === name),
      ),
    );

  it('publish the counters in the KooDriveLockReleaser namespace', () => {
    const [doc] = metric('LocksReleased');
    expect(doc).toMatchObject({ service: 'koodrive-lock-releaser' });
    expect(
      (doc?._aws as { CloudWatchMetrics: { Namespace: string }[] }).CloudWatchMetrics[0]?.Namespace,
    ).toBe('KooDriveLockReleaser');
    expect(metric('ReleaseLatency')).not.toHaveLength(0);
    expect(metric('ColdStart')).not.toHaveLength(0);
    expect(metric('StaleLocksFound')).not.toHaveLength(0);
    expect(metric('SweepDurationMs')).not.toHaveLength(0);
  });

  it('count the locks a release left held by a live lease', () => {
    expect(metric('LocksRefusedHeld').map((d) => d.LocksRefusedHeld)).toEqual(expect.arrayContaining([1]));
  });

  it('count the failed releases the sweep closed as EXPIRED', () => {
    expect(metric('LocksClosedExpired').map((d) => d.LocksClosedExpired)).toEqual(
      expect.arrayContaining([1]),
    );
  });

  it('count failures by error kind, as a dimension the alarms can select', () => {
    const failed = metric('LocksFailed');
    expect(failed.map((d) => [d.errorKind, d.LocksFailed])).toEqual(
      expect.arrayContaining([
        ['auth', 1],
        ['invalid-input', 1],
      ]),
    );
    for (const doc of failed) {
      const dims = (doc._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0]
        ?.Dimensions;
      expect(dims).toEqual([['service', 'errorKind']]);
    }
  });
});
