/**
 * Errors a worker team can act on: a missing region, table or secret is a ConfigError naming the setting, thrown
 * when the holder is built or on its first call, before any lock is left behind; never a "retryable" KooDrive
 * error. A create refused while a lock is held says what that means. Checked against the local stack: what
 * KooDrive saw is read from the emulator's own records.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  applyEnv,
  LOCAL_SECRET_NAME,
  LOCAL_USER_ID,
  startLocalStack,
  type LocalStack,
} from '../../dev/stack';
import { ConfigError } from '../../src/core/errors';
import { KooDriveLockError, LockHolder, type LockHolderOptions } from '../../src/holder';

let stack: LocalStack;
let restore: (() => void) | undefined;
let noAwsConfig: string;

beforeAll(async () => {
  stack = await startLocalStack({ ledger: true });
  noAwsConfig = mkdtempSync(join(tmpdir(), 'no-aws-config-'));
});
afterAll(async () => {
  await stack.close();
  rmSync(noAwsConfig, { recursive: true, force: true });
});
afterEach(() => {
  restore?.();
  restore = undefined;
  stack.koodrive.reset();
});

/** The local stack's environment, with no region anywhere the SDK looks (variables, profile files). */
function environment(withRegion: boolean): void {
  restore = applyEnv({
    ...stack.env,
    AWS_REGION: withRegion ? stack.env.AWS_REGION : undefined,
    AWS_DEFAULT_REGION: undefined,
    AWS_PROFILE: undefined,
    AWS_CONFIG_FILE: join(noAwsConfig, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(noAwsConfig, 'credentials'),
  });
}

const USER = LOCAL_USER_ID;
const options = (more: Partial<LockHolderOptions> = {}): LockHolderOptions => ({
  tableName: stack.dynamo!.tableName,
  secretId: LOCAL_SECRET_NAME,
  name: 'worker-1',
  clockSkewSeconds: 1,
  ...more,
});

async function failure(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => 'no error',
    (error: unknown) => error,
  );
}

describe('built without a table or a secret', () => {
  it('throws one ConfigError naming both settings', () => {
    let error: unknown;
    try {
      new LockHolder({ name: 'worker-1' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^secretId is missing/);
    expect(problems[1]).toMatch(/^tableName is missing/);
    expect((error as Error).message).not.toMatch(/retryable/);
  });
});

describe('on the first call', () => {
  it('no region: a ConfigError naming the region for both clients; KooDrive never called', async () => {
    environment(false);
    const holder = new LockHolder(options());
    const error = await failure(holder.hold(USER, '101', () => 1));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'region is missing: set AWS_REGION (or the region option) for Secrets Manager',
      'region is missing: set AWS_REGION (or the region option) for DynamoDB',
    ]);
    expect((error as Error).message).not.toMatch(/retryable/);
    expect(stack.koodrive.requests).toEqual([]);
  });

  it('the region option instead of AWS_REGION works', async () => {
    environment(false);
    const holder = new LockHolder(options({ region: 'us-east-1' }));
    await expect(holder.hold(USER, '101', (lease) => lease.lockId)).resolves.toMatch(/@101$/);
  });

  it('a secret that does not exist: a ConfigError naming secretId and the secret; KooDrive never called', async () => {
    environment(true);
    const holder = new LockHolder(options({ secretId: 'no-such-secret' }));
    const error = await failure(holder.acquire(USER, '101'));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(/^secretId: secret no-such-secret could not be read: ResourceNotFoundException/),
    ]);
    expect(stack.koodrive.requests).toEqual([]);
    // Tried again on the next call, not cached: the secret created meanwhile is read.
    stack.secrets.putSecret('no-such-secret', stack.secret);
    await expect(holder.acquire(USER, '101')).resolves.toMatchObject({ moduleCode: '101' });
  });

  it('a table that does not exist: a ConfigError naming tableName, and the KooDrive lock released again', async () => {
    environment(true);
    const holder = new LockHolder(options({ tableName: 'no-such-table' }));
    const error = await failure(holder.acquire(USER, '102'));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'tableName: the ledger table no-such-table does not exist in this region',
      expect.stringMatching(/^lock .*@102 was released again$/),
    ]);
    const locks = stack.koodrive.locks();
    expect(locks).toHaveLength(1);
    expect(locks[0]?.releasedAt).toBeDefined();
  });
});

describe('a create refused because a lock is held', () => {
  it('says the lock was not taken through the holder or another worker holds it, with the user and module', async () => {
    environment(true);
    stack.koodrive.seedLock(USER, '100');
    const error = await failure(new LockHolder(options()).acquire(USER, '100'));
    expect(error).toBeInstanceOf(KooDriveLockError);
    expect(error).toMatchObject({ operation: 'create', error: { kind: 'permanent' } });
    expect((error as Error).message).toMatch(
      new RegExp(
        `^KooDrive create of a lock for user ${USER}, module 100 failed \\(permanent\\): .*\\. If a lock is held for user ${USER} and module 100, it was not taken through the holder or another worker holds it: KooDrive frees it at most 10 minutes after its last renewal$`,
      ),
    );
    // The lock held before is the only one: no second lock was taken.
    expect(stack.koodrive.locks()).toHaveLength(1);
  });

  it('a retryable failure (503) gets no such hint', async () => {
    environment(true);
    stack.koodrive.fault({ match: (r) => r.method === 'POST', action: { type: 'status', status: 503 } });
    const error = await failure(new LockHolder(options()).acquire(USER, '100'));
    expect(error).toMatchObject({ operation: 'create', error: { kind: 'retryable' } });
    expect((error as Error).message).not.toMatch(/If a lock is held/);
  });
});
