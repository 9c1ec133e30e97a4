/**
 * LockHolder against the local stack: the KooDrive emulator reached by the real KooDriveClient, the ledger on
 * dynalite through DynamoLedger, the secret from the local Secrets Manager endpoint. What KooDrive did is read
 * from the emulator's own records, never from the client's answers.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  applyEnv,
  LOCAL_SECRET_NAME,
  LOCAL_USER_ID,
  startLocalStack,
  type LocalStack,
} from '../../dev/stack';
import { LockLostError, ReleaserError } from '../../src/core/errors';
import { systemClock, type LockRef } from '../../src/core/model';
import { KooDriveClient } from '../../src/koodrive/client';
import type { SettingsSource } from '../../src/koodrive/settings';
import { parseSecret } from '../../src/koodrive/secret';
import {
  AcquireAbortedError,
  KooDriveLockError,
  LockHolder,
  type HeldLock,
  type LockHolderOptions,
} from '../../src/holder';
import { DynamoLedger } from '../../src/ledger/ledger';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

let stack: LocalStack;
let ledger: DynamoLedger;
let koodrive: KooDriveClient;
let unhandled: unknown[];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  stack = await startLocalStack({ ledger: true });
});
afterAll(async () => {
  await stack.close();
});
beforeEach(() => {
  const dynamo = stack.dynamo!;
  ledger = new DynamoLedger({ tableName: dynamo.tableName, calls: httpDynamoCallsFor(dynamo.client) });
  const settings = { settings: parseSecret(JSON.stringify(stack.secret), 'test'), version: 1 };
  const source: SettingsSource = { current: () => Promise.resolve(settings) };
  koodrive = new KooDriveClient({ settings: source, timeoutMs: 2000 });
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  stack.koodrive.reset();
  expect(unhandled).toEqual([]);
});

function makeHolder(options: Partial<LockHolderOptions> = {}): LockHolder {
  return new LockHolder({ koodrive, ledger, name: 'worker-1', clockSkewSeconds: 1, ...options });
}

const USER = LOCAL_USER_ID;
const methods = () => stack.koodrive.requests.map((r) => `${r.method} ${r.status}`);

describe('acquire', () => {
  it('creates the KooDrive lock, then a HELD item naming the holder and its lease', async () => {
    const lock = await makeHolder({ leaseSeconds: 60 }).acquire(USER, '101');
    expect(lock).toEqual({
      lockId: expect.stringMatching(/@101$/) as string,
      userId: USER,
      moduleCode: '101',
    });
    expect(stack.koodrive.isHeld(lock.lockId)).toBe(true);
    expect(await ledger.get(lock.lockId)).toMatchObject({
      status: 'HELD',
      holder: 'worker-1',
      userId: USER,
      moduleCode: '101',
      leaseSeconds: 60,
    });
  });

  it('throws KooDriveLockError when KooDrive refuses, and writes nothing', async () => {
    stack.koodrive.fault({
      match: (r) => r.method === 'POST',
      times: 1,
      action: { type: 'status', status: 503 },
    });
    const error = await makeHolder()
      .acquire(USER, '101')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KooDriveLockError);
    expect(error).toMatchObject({ operation: 'create', error: { kind: 'retryable', httpStatus: 503 } });
    expect(stack.koodrive.locks()).toEqual([]);
  });

  it('a second holder of the same user and module is refused while the first holds the lock', async () => {
    await makeHolder().acquire(USER, '100');
    await expect(makeHolder({ name: 'worker-2' }).acquire(USER, '100')).rejects.toMatchObject({
      name: 'KooDriveLockError',
      operation: 'create',
    });
  });

  describe('a ledger write that fails is undone in KooDrive', () => {
    const broken = () =>
      new DynamoLedger({ tableName: 'no-such-table', calls: httpDynamoCallsFor(stack.dynamo!.client) });

    it('undone: true when KooDrive confirms the release', async () => {
      const error = await makeHolder({ ledger: broken() })
        .acquire(USER, '100')
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AcquireAbortedError);
      const aborted = error as AcquireAbortedError;
      expect(aborted.undone).toBe(true);
      expect(aborted.message).toMatch(/could not be recorded in the ledger .*; it was released again/);
      expect(String((aborted.cause as Error).name)).toBe('ResourceNotFoundException');
      expect(methods()).toEqual(['POST 200', 'DELETE 200']);
      const [lock] = stack.koodrive.locks();
      expect(lock?.lockId).toBe(aborted.lockId);
      expect(stack.koodrive.isHeld(aborted.lockId)).toBe(false);
    });

    it('undone: false when the release answers 503; the lock is left to expire', async () => {
      stack.koodrive.fault({
        match: (r) => r.method === 'DELETE',
        action: { type: 'status', status: 503 },
      });
      const error = (await makeHolder({ ledger: broken() })
        .acquire(USER, '100')
        .catch((e: unknown) => e)) as AcquireAbortedError;
      expect(error).toBeInstanceOf(AcquireAbortedError);
      expect(error.undone).toBe(false);
      expect(error.message).toMatch(/releasing it again failed too .*KooDrive lets it expire/);
      expect(methods()).toEqual(['POST 200', 'DELETE 503']);
      expect(stack.koodrive.isHeld(error.lockId)).toBe(true);
    });

    it('undone: false when the release connection drops', async () => {
      stack.koodrive.fault({ match: (r) => r.method === 'DELETE', action: { type: 'drop' } });
      const error = (await makeHolder({ ledger: broken() })
        .acquire(USER, '100')
        .catch((e: unknown) => e)) as AcquireAbortedError;
      expect(error.undone).toBe(false);
      expect(stack.koodrive.isHeld(error.lockId)).toBe(true);
    });

    it('undone: false when KooDrive refuses the release credentials', async () => {
      stack.koodrive.fault({
        match: (r) => r.method === 'DELETE',
        action: { type: 'status', status: 401, body: { error_code: 'APIGW.0301', error_msg: 'no' } },
      });
      const error = (await makeHolder({ ledger: broken() })
        .acquire(USER, '100')
        .catch((e: unknown) => e)) as AcquireAbortedError;
      expect(error.undone).toBe(false);
      expect(stack.koodrive.isHeld(error.lockId)).toBe(true);
    });
  });
});

describe('heartbeat (one attempt)', () => {
  it('writes the ledger, then renews in KooDrive', async () => {
    const holder = makeHolder({ leaseSeconds: 45 });
    const lock = await holder.acquire(USER, '100');
    const before = (await ledger.get(lock.lockId))!;
    const expiresBefore = stack.koodrive.lock(lock.lockId)!.expiresAt;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await holder.heartbeat(lock);
    const after = (await ledger.get(lock.lockId))!;
    expect(after.version).toBe(before.version + 1);
    expect(after.heartbeatAt).toBeGreaterThan(before.heartbeatAt);
    expect(after.leaseSeconds).toBe(45);
    expect(stack.koodrive.lock(lock.lockId)!.expiresAt).toBeGreaterThan(expiresBefore);
    expect(methods()).toEqual(['POST 200', 'PATCH 200']);
  });

  it('a lock the ledger no longer holds for this holder throws LockLostError and is not renewed', async () => {
    const holder = makeHolder();
    const lock = await holder.acquire(USER, '100');
    await ledger.record({ ...lock, outcome: 'released', attempts: 1 }); // the release path released it
    const error = await holder.heartbeat(lock).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockLostError);
    expect((error as LockLostError).status).toBe('RELEASED');
    expect(methods()).toEqual(['POST 200']);
  });

  it('another holder’s item is not this holder’s lease', async () => {
    const lock = await makeHolder({ name: 'worker-1' }).acquire(USER, '100');
    await expect(makeHolder({ name: 'worker-2' }).heartbeat(lock)).rejects.toBeInstanceOf(LockLostError);
    expect(methods()).toEqual(['POST 200']);
  });

  it('KooDrive refusing the renewal throws KooDriveLockError after the ledger write', async () => {
    const holder = makeHolder();
    const lock = await holder.acquire(USER, '100');
    stack.koodrive.fault({
      match: (r) => r.method === 'PATCH',
      times: 1,
      action: { type: 'status', status: 503 },
    });
    await expect(holder.heartbeat(lock)).rejects.toMatchObject({
      name: 'KooDriveLockError',
      operation: 'renew',
    });
    expect((await ledger.get(lock.lockId))!.version).toBe(2);
  });
});

describe('release (one attempt)', () => {
  it('releases in KooDrive, then marks RELEASED; again: alreadyReleased', async () => {
    const holder = makeHolder();
    const lock = await holder.acquire(USER, '100');
    expect(await holder.release(lock)).toBe('released');
    expect(stack.koodrive.isHeld(lock.lockId)).toBe(false);
    expect(await ledger.get(lock.lockId)).toMatchObject({ status: 'RELEASED' });
    expect(await holder.release(lock)).toBe('alreadyReleased');
  });

  it('a failed release is left RELEASE_FAILED for the sweep and thrown', async () => {
    const holder = makeHolder();
    const lock = await holder.acquire(USER, '100');
    stack.koodrive.fault({
      match: (r) => r.method === 'DELETE',
      times: 1,
      action: { type: 'status', status: 503 },
    });
    await expect(holder.release(lock)).rejects.toMatchObject({
      name: 'KooDriveLockError',
      operation: 'release',
    });
    expect(await ledger.get(lock.lockId)).toMatchObject({ status: 'RELEASE_FAILED', releaseAttempts: 1 });
    expect(stack.koodrive.isHeld(lock.lockId)).toBe(true);
  });
});

describe('hold, on the real clock with a 5 s lease', () => {
  // lease 5 s − skew 0 s − margin 0.25 s = 4.75 s safe; heartbeat every 0.5 s.
  const short = { leaseSeconds: 5, heartbeatSeconds: 0.5, clockSkewSeconds: 0 };

  it('heart-beats while work runs and releases when it returns', async () => {
    const holder = makeHolder(short);
    let seen: HeldLock | undefined;
    const value = await holder.hold(USER, '102', async (lease) => {
      seen = { lockId: lease.lockId, userId: lease.userId, moduleCode: lease.moduleCode };
      await new Promise((resolve) => setTimeout(resolve, 1300));
      lease.assertHeld();
      return 'backed up';
    });
    expect(value).toBe('backed up');
    const requests = methods();
    expect(requests[0]).toBe('POST 200');
    expect(requests.at(-1)).toBe('DELETE 200');
    expect(requests.filter((r) => r === 'PATCH 200').length).toBeGreaterThanOrEqual(2);
    expect(stack.koodrive.isHeld(seen!.lockId)).toBe(false);
    expect(await ledger.get(seen!.lockId)).toMatchObject({ status: 'RELEASED', leaseSeconds: 5 });
  });

  it('a lock released by someone else aborts the signal; no renew or release follows', async () => {
    const holder = makeHolder(short);
    let lockId = '';
    const reason = await holder.hold(USER, '100', async (lease) => {
      lockId = lease.lockId;
      await ledger.record({ lockId, userId: USER, outcome: 'released', attempts: 1 });
      const count = stack.koodrive.requests.length;
      const aborted = await new Promise<unknown>((resolve) =>
        lease.signal.addEventListener('abort', () => resolve(lease.signal.reason)),
      );
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(stack.koodrive.requests.length).toBe(count);
      expect(() => lease.assertHeld()).toThrow(LockLostError);
      return aborted;
    });
    expect(reason).toBeInstanceOf(LockLostError);
    expect((reason as LockLostError).status).toBe('RELEASED');
    expect(methods().filter((m) => m.startsWith('DELETE'))).toEqual([]);
  });

  it('a release that fails is left RELEASE_FAILED; hold still answers work’s value', async () => {
    stack.koodrive.fault({ match: (r) => r.method === 'DELETE', action: { type: 'status', status: 503 } });
    const reported: Error[] = [];
    let lockId = '';
    const value = await makeHolder({ ...short, onReleaseError: (error) => reported.push(error) }).hold(
      USER,
      '100',
      (lease) => {
        lockId = lease.lockId;
        return 42;
      },
    );
    expect(value).toBe(42);
    expect(methods().filter((m) => m.startsWith('DELETE'))).toEqual([
      'DELETE 503',
      'DELETE 503',
      'DELETE 503',
    ]);
    expect(await ledger.get(lockId)).toMatchObject({ status: 'RELEASE_FAILED', releaseAttempts: 3 });
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeInstanceOf(ReleaserError);
  });
});

describe('built from tableName and secretId, the SDK clients from the environment', () => {
  it('holds and releases through the secret and the table', async () => {
    const restore = applyEnv(stack.env);
    try {
      const holder = new LockHolder({
        tableName: stack.dynamo!.tableName,
        secretId: LOCAL_SECRET_NAME,
        name: 'worker-17',
        clock: systemClock,
      });
      const lock = await holder.hold(USER, '101', (lease): LockRef => ({
        lockId: lease.lockId,
        userId: USER,
      }));
      expect(stack.koodrive.isHeld(lock.lockId)).toBe(false);
      expect(stack.koodrive.requests.every((r) => r.authOk)).toBe(true);
      expect(await ledger.get(lock.lockId)).toMatchObject({ status: 'RELEASED', holder: 'worker-17' });
    } finally {
      restore();
    }
  });

  it('settings inline instead of secretId', async () => {
    const holder = new LockHolder({
      tableName: stack.dynamo!.tableName,
      settings: stack.secret,
      dynamodb: stack.dynamo!.client,
    });
    const lockId = await holder.hold(USER, '102', (lease) => lease.lockId);
    expect(stack.koodrive.lock(lockId)?.releasedAt).toBeDefined();
    expect(await ledger.get(lockId)).toMatchObject({ status: 'RELEASED' });
  });

  it('sends only the requests the workers’ managed policy allows (serverless.yml HolderPolicy)', async () => {
    // Every AWS operation name, recorded by the SDK clients themselves.
    const sent = new Set<string>();
    const clientOptions = {
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    };
    const dynamodb = new DynamoDBClient({ ...clientOptions, endpoint: stack.dynamo!.endpoint });
    const secretsManager = new SecretsManagerClient({
      ...clientOptions,
      endpoint: stack.env.AWS_ENDPOINT_URL_SECRETS_MANAGER,
    });
    dynamodb.middlewareStack.add(
      (next, context) => (args) => {
        sent.add(String(context.commandName));
        return next(args);
      },
      { step: 'initialize' },
    );
    secretsManager.middlewareStack.add(
      (next, context) => (args) => {
        sent.add(String(context.commandName));
        return next(args);
      },
      { step: 'initialize' },
    );
    const holder = new LockHolder({
      tableName: stack.dynamo!.tableName,
      secretId: LOCAL_SECRET_NAME,
      dynamodb,
      secretsManager,
      name: 'worker-17',
      leaseSeconds: 5,
      heartbeatSeconds: 0.3,
      clockSkewSeconds: 0,
    });
    // Acquire, heartbeats, release; a lost lease (the refused heartbeat reads the item); a failed release.
    await holder.hold(USER, '100', () => new Promise((resolve) => setTimeout(resolve, 700)));
    await holder.hold(USER, '101', async (lease) => {
      await ledger.record({ lockId: lease.lockId, userId: USER, outcome: 'released', attempts: 1 });
      await new Promise((resolve) => lease.signal.addEventListener('abort', resolve));
    });
    stack.koodrive.fault({ match: (r) => r.method === 'DELETE', action: { type: 'status', status: 400 } });
    await holder.hold(USER, '102', () => 1);
    await holder.release({ lockId: 'never-held', userId: USER }).catch(() => undefined);
    dynamodb.destroy();
    secretsManager.destroy();
    expect([...sent].sort()).toEqual([
      'GetItemCommand',
      'GetSecretValueCommand',
      'PutItemCommand',
      'UpdateItemCommand',
    ]);
  });
});
