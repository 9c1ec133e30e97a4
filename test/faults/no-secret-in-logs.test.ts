/**
 * No secret in logs: every line written to process.stdout / process.stderr and every console.* call during
 * runs of the REAL handlers (LOG_LEVEL=DEBUG, metrics on) covering success and each failure class — auth,
 * retryable, permanent, deadline, invalid-input, a missing and an invalid secret, token mode, the sweep — is
 * searched for the app secrets, the access tokens, every signature and Authorization value the signer
 * computed, and anything shaped like an Authorization header. The answers and thrown errors are searched too.
 * `SHOW_LOGS=<file>` appends what each run wrote to that file, to look at the lines themselves.
 */
import { appendFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import {
  applyEnv,
  LOCAL_SECRET_NAME,
  LOCAL_USER_ID,
  startLocalStack,
  type LocalStack,
} from '../../dev/stack';
import type { SQSBatchResponse } from 'aws-lambda';
import type { RecordedRequest } from '../../src/testing/koodrive-emulator';
import type { ReleaseReport } from '../../src/core/model';
import { DynamoLedger } from '../../src/ledger/ledger';
import { handler as release } from '../../src/handlers/release';
import { handler as sweep } from '../../src/handlers/sweep';
import type * as Signer from '../../src/koodrive/signer';
import { resetApp } from '../../src/wiring';
import { sqsRecord } from '../helpers/events';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

// The logger reads POWERTOOLS_LOGGER_LOG_EVENT and its base LOG_LEVEL when it is created (on import): set before
// the imports, so every event is logged too, as an operator debugging in production might do.
const envBefore = vi.hoisted(() => {
  const before = { logEvent: process.env.POWERTOOLS_LOGGER_LOG_EVENT, logLevel: process.env.LOG_LEVEL };
  process.env.POWERTOOLS_LOGGER_LOG_EVENT = 'true';
  process.env.LOG_LEVEL = 'DEBUG';
  return before;
});

/** Every signature and Authorization value the production signer computed during the test file. */
const signed = vi.hoisted(() => ({ values: new Set<string>() }));
vi.mock('../../src/koodrive/signer', async (importOriginal) => {
  const original = await importOriginal<typeof Signer>();
  return {
    ...original,
    signRequest: (...args: Parameters<typeof original.signRequest>) => {
      const result = original.signRequest(...args);
      signed.values.add(result.signature);
      signed.values.add(result.authorization);
      return result;
    },
  };
});

const APP_ID = 'logtest-app';
const APP_SECRET = 'S3CR3T-app-secret-5a1f-do-not-log';
const WRONG_APP_SECRET = 'S3CR3T-wrong-app-secret-0b9e-do-not-log';
const TOKEN = 'T0KEN-access-token-77c2-do-not-log';
const WRONG_TOKEN = 'T0KEN-revoked-token-3d4a-do-not-log';
/** Any of these anywhere in the output is a leak (the markers catch a partial secret too). */
const FORBIDDEN = [APP_SECRET, WRONG_APP_SECRET, TOKEN, WRONG_TOKEN, 'S3CR3T', 'T0KEN'];
const AUTHORIZATION_SHAPES = [/HMAC-SHA256 AppId=/, /Signature=[0-9a-f]{16}/, /Bearer\s*[A-Za-z0-9]/];

let stack: LocalStack;
let restoreEnv: () => void;
/** What the runs wrote, and what they answered or threw. */
let output: string[] = [];
let restoreCapture: () => void = () => undefined;

function capture(): () => void {
  const write = (stream: NodeJS.WriteStream) => {
    const original = stream.write.bind(stream);
    const capturing = (chunk: unknown, ...rest: unknown[]): boolean => {
      output.push(
        typeof chunk === 'string'
          ? chunk
          : chunk instanceof Uint8Array
            ? Buffer.from(chunk).toString('utf8')
            : String(chunk),
      );
      // Swallowed: the captured lines are asserted on, not shown.
      const callback = rest.find((r): r is () => void => typeof r === 'function');
      callback?.();
      return true;
    };
    stream.write = capturing;
    return () => {
      stream.write = original;
    };
  };
  const restores = [write(process.stdout), write(process.stderr)];
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    const spy = vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      output.push(args.map((a) => (typeof a === 'string' ? a : inspectSafe(a))).join(' '));
    });
    restores.push(() => spy.mockRestore());
  }
  return () => restores.forEach((restore) => restore());
}

function inspectSafe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}\n${value.stack ?? ''}`;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/** An error with its whole cause chain, as a logger or the Lambda runtime could print it. */
function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 10; depth++) {
    parts.push(inspectSafe(current), JSON.stringify(current, Object.getOwnPropertyNames(current ?? {})));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join('\n');
}

beforeAll(async () => {
  stack = await startLocalStack({
    emulator: { apps: { [APP_ID]: APP_SECRET }, tokens: [TOKEN] },
    ledger: true,
  });
});
afterAll(async () => {
  await stack.close();
  applyEnv({ POWERTOOLS_LOGGER_LOG_EVENT: envBefore.logEvent, LOG_LEVEL: envBefore.logLevel });
});
beforeEach(() => {
  restoreEnv = applyEnv({
    ...stack.env,
    LOG_LEVEL: 'DEBUG',
    POWERTOOLS_METRICS_DISABLED: 'false',
    KOODRIVE_TIMEOUT_MS: '300',
    RELEASE_MAX_ATTEMPTS: '2',
  });
  resetApp();
  stack.koodrive.reset();
  useSecret({ appId: APP_ID, appSecret: APP_SECRET });
  output = [];
  restoreCapture = capture();
});
afterEach(() => {
  restoreCapture();
  restoreEnv();
  resetApp();
  stack.koodrive.reset();
});

function useSecret(fields: Record<string, unknown>): void {
  const { appId: _a, appSecret: _s, ...rest } = stack.secret;
  stack.secrets.putSecret(LOCAL_SECRET_NAME, { ...rest, ...fields });
}

function held(count = 1): string[] {
  return Array.from({ length: count }, () => stack.koodrive.seedLock(LOCAL_USER_ID, '102'));
}

function sqs(lockIds: string[]): unknown {
  return {
    Records: lockIds.map((lockId, i) => sqsRecord(`log-${i}`, JSON.stringify({ lockId }))),
  };
}

interface Run {
  /** What the run wrote. */
  logged: string;
  /** What the handler answered (undefined when it threw). */
  answer: unknown;
  /** What the handler threw (undefined when it answered). */
  error: unknown;
  /** The KooDrive requests the emulator recorded during the run. */
  requests: RecordedRequest[];
}

/** Runs `fn`, keeps its answer or error with the output, and checks the lot. */
async function runAndCheck(fn: () => Promise<unknown>, expectLines = true): Promise<Run> {
  const requestsBefore = stack.koodrive.requests.length;
  const startedAt = Date.now();
  let answer: unknown;
  let error: unknown;
  let text: string;
  try {
    answer = await fn();
    text = JSON.stringify(answer);
  } catch (e) {
    error = e;
    text = describeError(e);
  }
  const logged = output.join('\n');
  const all = `${logged}\n${text}`;
  if (expectLines) expect(output.length, 'the run wrote log lines (the capture works)').toBeGreaterThan(0);
  for (const secret of FORBIDDEN) expect(all.includes(secret), `"${secret}" leaked`).toBe(false);
  for (const value of signed.values)
    expect(all.includes(value), `a computed signature leaked: ${value}`).toBe(false);
  for (const shape of AUTHORIZATION_SHAPES) expect(all, 'an Authorization value leaked').not.toMatch(shape);
  if (process.env.SHOW_LOGS) appendFileSync(process.env.SHOW_LOGS, `${logged}\n`);
  // A request an earlier scenario's client gave up on may still be answered (the emulator's latency) during this
  // one: the emulator stamps each request with its arrival, and what arrived before this run is not this run's.
  const requests = stack.koodrive.requests.slice(requestsBefore).filter((r) => r.at >= startedAt);
  return { logged, answer, error, requests };
}

/** The failed results' error kinds of a direct-invoke report. */
function failedKinds(answer: unknown): string[] {
  return (answer as ReleaseReport).results.flatMap((r) =>
    r.outcome === 'failed' ? [r.error?.kind ?? '?'] : [],
  );
}

/** The message IDs an SQS answer lists as failed. */
function failedRecords(answer: unknown): string[] {
  return (answer as SQSBatchResponse).batchItemFailures.map((f) => f.itemIdentifier);
}

/** [status, fault type] of each request the emulator recorded. */
function seen(run: Run): [number, string | undefined][] {
  return run.requests.map((r) => [r.status, r.fault]);
}

describe('no secret, token, signature or Authorization value in any log line or answer', () => {
  it('success: direct and SQS, app authentication', async () => {
    const [a, b] = held(2) as [string, string];
    const direct = await runAndCheck(() => release({ lockIds: [a] }, lambdaContext('release')));
    const batch = await runAndCheck(() => release(sqs([b]), lambdaContext('release')));
    expect(direct.logged, 'the log names the lock it released').toContain(a);
    expect((direct.answer as ReleaseReport).summary.released).toBe(1);
    expect(batch.answer).toEqual({ batchItemFailures: [] });
    expect([...direct.requests, ...batch.requests].map((r) => [r.status, r.authOk])).toEqual([
      [200, true],
      [200, true],
    ]);
    expect(stack.koodrive.isHeld(a) || stack.koodrive.isHeld(b)).toBe(false);
    expect(signed.values.size).toBeGreaterThan(0);
  });

  it('auth: KooDrive rejects the credentials (wrong secret, one re-read)', async () => {
    useSecret({ appId: APP_ID, appSecret: WRONG_APP_SECRET });
    const lockIds = held(3);
    const run = await runAndCheck(() => release({ lockIds }, lambdaContext('release')));
    expect(failedKinds(run.answer)).toEqual(['auth', 'auth', 'auth']);
    expect(run.requests.length).toBeGreaterThan(0);
    expect(
      run.requests.every((r) => r.status === 401 && !r.authOk),
      'the emulator refused the signature',
    ).toBe(true);
    for (const id of lockIds) expect(stack.koodrive.isHeld(id)).toBe(true);
    expect(run.logged).toMatch(/auth/);
  });

  it('auth: a gateway 401 on a good secret', async () => {
    stack.koodrive.fault({
      action: {
        type: 'status',
        status: 401,
        body: { error_code: 'APIGW.0301', error_msg: `echo ${APP_SECRET}` },
      },
    });
    const run = await runAndCheck(() => release(sqs(held(2)), lambdaContext('release')));
    expect(failedRecords(run.answer)).toEqual(['log-0', 'log-1']);
    expect(seen(run).length).toBeGreaterThan(0);
    expect(seen(run).every(([status, fault]) => status === 401 && fault === 'status')).toBe(true);
  });

  it('retryable: 503 and 429 until the attempts run out, and a dropped connection', async () => {
    stack.koodrive.fault({ times: 2, action: { type: 'status', status: 503 } });
    stack.koodrive.fault({ times: 2, action: { type: 'throttle', retryAfterSeconds: 0 } });
    stack.koodrive.fault({ times: 1, action: { type: 'drop' } });
    const run = await runAndCheck(() => release({ lockIds: held(3) }, lambdaContext('release')));
    const faults = seen(run).filter(([, fault]) => fault !== undefined);
    expect(faults.sort()).toEqual([
      [0, 'drop'],
      [429, 'throttle'],
      [429, 'throttle'],
      [503, 'status'],
      [503, 'status'],
    ]);
    expect(failedKinds(run.answer).length, 'some lock ran out of attempts').toBeGreaterThan(0);
    expect(failedKinds(run.answer).every((kind) => kind === 'retryable')).toBe(true);
  });

  it('permanent: a 4xx KooDrive answer', async () => {
    stack.koodrive.fault({ action: { type: 'status', status: 400, body: { code: 13000102, msg: 'bad' } } });
    const run = await runAndCheck(() => release({ lockIds: held(2) }, lambdaContext('release')));
    expect(failedKinds(run.answer)).toEqual(['permanent', 'permanent']);
    expect(seen(run)).toEqual([
      [400, 'status'],
      [400, 'status'],
    ]);
  });

  it('deadline: answers slower than the timeout, and too little time left', async () => {
    stack.koodrive.setLatency(400);
    const slow = await runAndCheck(() => release({ lockIds: held(2) }, lambdaContext('release')));
    const report = slow.answer as ReleaseReport;
    expect(report.summary.released, 'no answer came within the 300 ms timeout').toBe(0);
    expect(report.results.map((r) => [r.error?.kind, r.error?.message])).toEqual([
      ['retryable', 'timed out after 300 ms'],
      ['retryable', 'timed out after 300 ms'],
    ]);
    const late = await runAndCheck(() => release({ lockIds: held(2) }, lambdaContext('release', 1800)));
    expect(failedKinds(late.answer)).toEqual(['deadline', 'deadline']);
  });

  it('invalid input: CR/LF, NUL and non-ASCII IDs, not-JSON SQS bodies, a refused payload', async () => {
    const ids = await runAndCheck(() =>
      release(
        { locks: [{ lockId: 'a\r\nAuthorization: x' }, { lockId: 'b\0' }, { lockId: 'ü' }] },
        lambdaContext('release'),
      ),
    );
    expect(failedKinds(ids.answer)).toEqual(['invalid-input', 'invalid-input', 'invalid-input']);
    const notJson = await runAndCheck(() =>
      release(
        { Records: [{ ...(sqs(['x']) as { Records: object[] }).Records[0], body: 'not json' }] },
        lambdaContext('release'),
      ),
    );
    expect(failedRecords(notJson.answer)).toEqual(['log-0']);
    const refused = await runAndCheck(() => release({ lockIds: 'nope' }, lambdaContext('release')));
    expect((refused.answer as ReleaseReport).error?.kind).toBe('invalid-input');
    expect([...ids.requests, ...notJson.requests, ...refused.requests]).toEqual([]);
  });

  it('with event logging on, a 10,000-level nested event still gets its answer', async () => {
    let deep: unknown = [];
    for (let i = 0; i < 10_000; i++) deep = [deep];
    // Not through runAndCheck, which turns a throw into text: here the handler must answer.
    const report = (await release({ lockIds: [deep] }, lambdaContext('release'))) as ReleaseReport;
    expect(report.results[0]?.error?.kind).toBe('invalid-input');
    const run = await runAndCheck(() => Promise.resolve(report));
    expect(run.logged).toMatch(/release summary/);
  });

  it('configuration: a missing secret', async () => {
    process.env.KOODRIVE_SECRET_ID = 'no-such-secret';
    const run = await runAndCheck(() => release({ lockIds: held(1) }, lambdaContext('release')), false);
    expect((run.error as Error).message).toMatch(
      /^secret no-such-secret could not be read: ResourceNotFoundException/,
    );
    expect(run.requests).toEqual([]);
  });

  it.each([
    [
      'an http:// endpoint',
      { endpoint: 'http://koodrive.example.com', appId: APP_ID, appSecret: APP_SECRET },
      'endpoint must be https://',
    ],
    [
      'appId without appSecret… and a token',
      { appSecret: APP_SECRET, accessToken: TOKEN },
      'appId and appSecret go together',
    ],
    [
      'a secret with a line break',
      { appId: APP_ID, appSecret: `${APP_SECRET}\r\n` },
      'appSecret has characters',
    ],
    ['a token of the wrong type', { accessToken: [TOKEN] }, 'accessToken must be of type string'],
  ])('configuration: an invalid secret (%s)', async (_name, fields, problem) => {
    const { appId: _a, appSecret: _s, ...rest } = stack.secret;
    stack.secrets.putSecret(LOCAL_SECRET_NAME, { ...rest, ...fields });
    const run = await runAndCheck(() => release({ lockIds: held(1) }, lambdaContext('release')), false);
    expect((run.error as Error).message).toMatch(/is not usable/);
    expect((run.error as Error).message).toContain(problem);
    expect(run.requests).toEqual([]);
  });

  it('configuration: a SecretString that is not JSON', async () => {
    stack.secrets.putSecret(LOCAL_SECRET_NAME, `{"appSecret": "${APP_SECRET}", oops`);
    const run = await runAndCheck(() => release({ lockIds: held(1) }, lambdaContext('release')), false);
    expect((run.error as Error).message).toMatch(/SecretString is not JSON/);
    expect(run.requests).toEqual([]);
  });

  it('token mode: success, then a revoked token', async () => {
    useSecret({ accessToken: TOKEN });
    const ok = held(1);
    const good = await runAndCheck(() => release({ lockIds: ok }, lambdaContext('release')));
    expect(good.logged).toContain(ok[0]);
    expect(stack.koodrive.isHeld(ok[0] as string)).toBe(false);
    expect(good.requests.map((r) => [r.status, r.authOk])).toEqual([[200, true]]);
    resetApp();
    useSecret({ accessToken: WRONG_TOKEN });
    const revoked = await runAndCheck(() => release(sqs(held(2)), lambdaContext('release')));
    expect(failedRecords(revoked.answer)).toEqual(['log-0', 'log-1']);
    expect(revoked.requests.length).toBeGreaterThan(0);
    expect(revoked.requests.every((r) => r.status === 401 && !r.authOk)).toBe(true);
  });

  it('the sweep: a stale lock released, with the ledger', async () => {
    const [lockId] = held(1) as [string];
    const past = new DynamoLedger({
      tableName: stack.dynamo!.tableName,
      calls: httpDynamoCallsFor(stack.dynamo!.client),
      now: () => Date.now() - 30 * 60_000,
    });
    await past.recordAcquired({
      lockId,
      userId: LOCAL_USER_ID,
      moduleCode: '102',
      holder: 'w',
      leaseSeconds: 120,
    });
    const run = await runAndCheck(() => sweep({}, lambdaContext('sweep')));
    expect(stack.koodrive.isHeld(lockId)).toBe(false);
    expect(run.logged).toContain(lockId);
  });
});
