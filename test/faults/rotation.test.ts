/**
 * Credential rotation and wrong credentials in a warm container: the REAL release handler, the real Secrets
 * Manager SDK client against the local endpoint, the KooDrive emulator checking every signature. The module
 * state (the cached secret, the undici pool) is kept between invocations, as in a warm Lambda container.
 */
import type { SQSEvent } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { lambdaContext } from '../../dev/lambda-context';
import { LOCAL_APP_ID, LOCAL_APP_SECRET, LOCAL_SECRET_NAME, LOCAL_USER_ID } from '../../dev/stack';
import { DEFAULT_ENGINE_OPTIONS, releaseLocks } from '../../src/core/engine';
import type { AttemptOutcome, ReleaseReport } from '../../src/core/model';
import { handler } from '../../src/handlers/release';
import { logger } from '../../src/telemetry';
import { resetApp } from '../../src/wiring';
import { FakeClock, FakeGateway, locks, seededRandom } from '../helpers/fakes';
import { useLocalStack } from '../helpers/local-stack';
import { sqsRecord } from '../helpers/events';

const ROTATED_APP_ID = 'rotated-app';
const ROTATED_APP_SECRET = 'rotated-app-secret-7c1d';

// A new container for each test; within a test the container stays warm.
const stack = useLocalStack({}, { RELEASE_CONCURRENCY: '8', SECRET_CACHE_SECONDS: '300' });

function held(count: number): string[] {
  return Array.from({ length: count }, () => stack().koodrive.seedLock(LOCAL_USER_ID, '102'));
}

async function release(lockIds: string[]): Promise<ReleaseReport> {
  return (await handler({ lockIds }, lambdaContext('release'))) as ReleaseReport;
}

/** Runs `fn`, answering how many KooDrive requests (and how many of them 401) and secret reads it caused. */
async function counting<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; requests: number; rejected: number; reads: number }> {
  const requestsBefore = stack().koodrive.requests.length;
  const readsBefore = stack().secrets.getSecretValueCalls;
  const value = await fn();
  const sent = stack().koodrive.requests.slice(requestsBefore);
  return {
    value,
    requests: sent.length,
    rejected: sent.filter((r) => r.status === 401).length,
    reads: stack().secrets.getSecretValueCalls - readsBefore,
  };
}

describe('credential rotation in a warm container', () => {
  it('a rotated secret: the next release meets one 401, re-reads the secret once, and succeeds', async () => {
    const warmUp = await counting(() => release(held(1)));
    expect(warmUp.value.summary.released).toBe(1);
    expect(warmUp.reads).toBe(1);

    // The operator rotates: KooDrive now knows only the new app, and the secret names it.
    stack().koodrive.setApps({ [ROTATED_APP_ID]: ROTATED_APP_SECRET });
    stack().secrets.putSecret(LOCAL_SECRET_NAME, {
      ...stack().secret,
      appId: ROTATED_APP_ID,
      appSecret: ROTATED_APP_SECRET,
    });

    const lockIds = held(20);
    const rotated = await counting(() => release(lockIds));
    expect(rotated.value.summary).toMatchObject({ released: 20, failed: 0 });
    expect(rotated.reads, 'exactly one GetSecretValue re-read').toBe(1);
    expect(rotated.rejected, 'one request met the old credentials; the others waited for the new ones').toBe(
      1,
    );
    expect(rotated.requests).toBe(21);
    for (const id of lockIds) expect(stack().koodrive.isHeld(id)).toBe(false);
    // The lock that met the 401 took one more attempt with the new credentials.
    expect(rotated.value.results.map((r) => r.attempts).sort()).toEqual([...Array<number>(19).fill(1), 2]);

    // Warm and rotated: no more re-reads, no more rejections.
    const after = await counting(() => release(held(10)));
    expect(after.value.summary.released).toBe(10);
    expect(after).toMatchObject({ reads: 0, rejected: 0, requests: 10 });
  });

  it('an SQS batch after a rotation releases every record (no batchItemFailures) with one re-read', async () => {
    await release(held(1));
    stack().koodrive.setApps({ [ROTATED_APP_ID]: ROTATED_APP_SECRET });
    stack().secrets.putSecret(LOCAL_SECRET_NAME, {
      ...stack().secret,
      appId: ROTATED_APP_ID,
      appSecret: ROTATED_APP_SECRET,
    });
    const lockIds = held(10);
    const event: SQSEvent = {
      Records: lockIds.map((lockId, i) => sqsRecord(`rot-${i}`, JSON.stringify({ lockId }))),
    };
    const run = await counting(() => handler(event, lambdaContext('release')));
    expect(run.value).toEqual({ batchItemFailures: [] });
    expect(run.reads).toBe(1);
    expect(run.rejected).toBe(1);
  });
});

describe('wrong credentials in a warm container', () => {
  it('fail every lock with auth, re-read at most once per cache period, and send no storm of requests', async () => {
    await release(held(1));
    // KooDrive knows neither the old credentials nor the new ones the secret now holds.
    stack().koodrive.setApps({});
    stack().secrets.putSecret(LOCAL_SECRET_NAME, {
      ...stack().secret,
      appId: 'wrong-app',
      appSecret: 'wrong-secret-1f2e',
    });

    const lockIds = held(50);
    const first = await counting(() => release(lockIds));
    expect(first.value.results).toHaveLength(50);
    expect(first.value.results.every((r) => r.outcome === 'failed' && r.error?.kind === 'auth')).toBe(true);
    expect(first.reads, 'one re-read').toBe(1);
    // The probe met a 401, the re-read found new credentials, the retry met a 401 too, and so did the next
    // lock (a refusal of one lock alone fails only that lock): that is all.
    expect(first.requests, 'no storm').toBeLessThanOrEqual(3);
    for (const id of lockIds) expect(stack().koodrive.isHeld(id)).toBe(true);

    // The next invocation, same cache period: no re-read at all, and again no storm.
    const second = await counting(() => release(lockIds));
    expect(second.value.results.every((r) => r.outcome === 'failed' && r.error?.kind === 'auth')).toBe(true);
    expect(second.reads, 'no second re-read within the cache period').toBe(0);
    expect(second.requests, 'no storm').toBeLessThanOrEqual(3);
  });

  it('a secret KooDrive never accepted (cold start): auth failures, one re-read, at most 3 requests', async () => {
    stack().secrets.putSecret(LOCAL_SECRET_NAME, { ...stack().secret, appSecret: 'not-the-app-secret-9a8b' });
    const lockIds = held(50);
    const run = await counting(() => release(lockIds));
    expect(run.value.summary).toMatchObject({ requested: 50, failed: 50, released: 0 });
    expect(run.value.results.every((r) => r.error?.kind === 'auth')).toBe(true);
    expect(run.reads).toBe(2); // the first read, and one re-read after the 401
    expect(run.requests).toBeLessThanOrEqual(3); // the first lock, its retry, a second lock
    expect(run.rejected).toBe(run.requests);
  });

  it('then, once the secret is fixed, the next cache period recovers without a redeploy', async () => {
    process.env.SECRET_CACHE_SECONDS = '1';
    resetApp();
    stack().secrets.putSecret(LOCAL_SECRET_NAME, { ...stack().secret, appSecret: 'not-the-app-secret-9a8b' });
    const bad = await release(held(5));
    expect(bad.summary.failed).toBe(5);
    stack().secrets.putSecret(LOCAL_SECRET_NAME, {
      ...stack().secret,
      appId: LOCAL_APP_ID,
      appSecret: LOCAL_APP_SECRET,
    });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const good = await release(held(5));
    expect(good.summary.released).toBe(5);
  });
});

describe('Secrets Manager unreachable when the cache period ends (issue 11, defect 4)', () => {
  it('a warm container keeps releasing with the cached secret, logs the failed read once, and recovers', async () => {
    process.env.SECRET_CACHE_SECONDS = '1';
    resetApp();
    expect((await release(held(1))).summary.released).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    // The secret is gone (deleted by mistake, or the endpoint refuses): the read fails.
    stack().secrets.deleteSecret(LOCAL_SECRET_NAME);
    const errors = vi.spyOn(logger, 'error');
    const lockIds = held(20);
    const run = await counting(() => release(lockIds));
    expect(run.value.summary).toMatchObject({ requested: 20, released: 20, failed: 0 });
    for (const id of lockIds) expect(stack().koodrive.isHeld(id)).toBe(false);
    expect(run.reads, 'one read tried; the next try waits').toBe(1);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(errors.mock.calls[0]?.[0]).toBe('secret not re-read: the settings in use stay until the next try');
    expect((errors.mock.calls[0]?.[1] as Error).message).toMatch(
      /could not be read: ResourceNotFoundException/,
    );
  });
});

describe('the engine probes credentials before fanning out', () => {
  const options = { ...DEFAULT_ENGINE_OPTIONS, recordReserveMs: 0, concurrency: 8 };
  const rejected: AttemptOutcome = {
    ok: false,
    error: { kind: 'auth', httpStatus: 401, code: 'APIGW.0301', message: 'rejected' },
    credentialsVersion: 1,
  };
  const deps = (gateway: FakeGateway) => ({
    gateway,
    clock: new FakeClock(),
    random: seededRandom(5),
    remainingMs: () => 60_000,
  });

  it('wrong credentials at concurrency 8: three requests for 100 locks when the re-read finds new ones', async () => {
    const gateway = new FakeGateway(() => rejected);
    const results = await releaseLocks(locks(100), deps(gateway), options);
    expect(results.every((r) => r.outcome === 'failed' && r.error?.kind === 'auth')).toBe(true);
    expect(gateway.calls).toHaveLength(3); // the first lock, its retry after the re-read, a second lock
    expect(gateway.refreshes).toEqual([1]);
  });

  it('wrong credentials at concurrency 8: three requests when the re-read finds nothing new', async () => {
    const gateway = new FakeGateway(() => rejected);
    gateway.refreshAnswer = false;
    const results = await releaseLocks(locks(100), deps(gateway), options);
    expect(results.every((r) => r.error?.kind === 'auth')).toBe(true);
    expect(gateway.calls).toHaveLength(3); // the refused lock is retried once whether or not the secret changed
  });

  it('good credentials: after the first answer, the full concurrency is used', async () => {
    const gateway = new FakeGateway();
    const results = await releaseLocks(locks(100), deps(gateway), options);
    expect(results.every((r) => r.outcome === 'released')).toBe(true);
    expect(gateway.maxInFlight).toBe(8);
  });

  it('a retryable first answer opens the gate too: transient faults do not serialise the batch', async () => {
    const gateway = new FakeGateway((_lock, attempt) =>
      attempt === 1
        ? { ok: false, error: { kind: 'retryable', httpStatus: 503, message: 'busy' } }
        : { ok: true, outcome: 'released' },
    );
    const results = await releaseLocks(locks(40), deps(gateway), options);
    expect(results.every((r) => r.outcome === 'released' && r.attempts === 2)).toBe(true);
    expect(gateway.maxInFlight).toBe(8);
  });
});
