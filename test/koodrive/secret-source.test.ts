import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSecretsManager, type LocalSecretsManager } from '../../dev/secrets-manager';
import { ConfigError } from '../../src/core/errors';
import { FAILED_READ_RETRY_MS, SecretSettingsSource } from '../../src/koodrive/secret-source';

const NAME = 'koodrive/test';
const secret = (appSecret: string) => ({ endpoint: 'https://kd.example', appId: 'app', appSecret });

let sm: LocalSecretsManager;
let client: SecretsManagerClient;
let time: number;

beforeAll(async () => {
  sm = await startSecretsManager();
  client = new SecretsManagerClient({
    region: 'us-east-1',
    endpoint: sm.url,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});
afterAll(async () => {
  client.destroy();
  await sm.close();
});
beforeEach(() => {
  time = 1_000_000;
  reported = [];
  sm.putSecret(NAME, secret('first'));
});

/** Errors the source reported through onError. */
let reported: ConfigError[];
const source = (ttlMs = 300_000) =>
  new SecretSettingsSource({
    client,
    secretId: NAME,
    ttlMs,
    now: () => time,
    onError: (e) => reported.push(e),
  });
/** GetSecretValue requests the source sent during `fn`. */
const reads = async (fn: () => Promise<unknown>): Promise<number> => {
  const before = sm.getSecretValueCalls;
  await fn();
  return sm.getSecretValueCalls - before;
};
const appSecretOf = async (s: SecretSettingsSource) => {
  const { settings } = await s.current();
  return settings.auth.mode === 'app' ? settings.auth.appSecret : undefined;
};

describe('SecretSettingsSource', () => {
  it('reads once within the cache period, even for concurrent callers', async () => {
    const s = source();
    const calls = sm.getSecretValueCalls;
    await Promise.all([s.current(), s.current(), s.current()]);
    time += 299_000;
    await s.current();
    expect(sm.getSecretValueCalls - calls).toBe(1);
  });

  it('reads again after the cache period and picks up a rotated secret', async () => {
    const s = source();
    expect(await appSecretOf(s)).toBe('first');
    sm.putSecret(NAME, secret('second'));
    time += 300_000;
    expect(await appSecretOf(s)).toBe('second');
  });

  it('after an auth failure re-reads once per cache period, and says whether the credentials are new', async () => {
    const s = source();
    const { version } = await s.current();
    sm.putSecret(NAME, secret('rotated'));
    const calls = sm.getSecretValueCalls;
    const [a, b] = await Promise.all([s.refresh(version), s.refresh(version)]);
    expect([a, b]).toEqual([true, true]);
    expect(await appSecretOf(s)).toBe('rotated');
    // a caller that saw the old version learns newer credentials exist, without another read
    expect(await s.refresh(version)).toBe(true);
    // the new credentials rejected too: no second read within the period
    expect(await s.refresh(version + 1)).toBe(false);
    expect(sm.getSecretValueCalls - calls).toBe(1);
    time += 300_000;
    expect(await s.refresh(version + 1)).toBe(false); // re-read allowed again, but the secret is unchanged
    expect(sm.getSecretValueCalls - calls).toBe(2);
  });

  it('does not keep a failed read: the next call reads again', async () => {
    const s = source();
    sm.failNext(3, 500); // the SDK itself tries three times
    await expect(s.current()).rejects.toThrow(ConfigError);
    expect(await appSecretOf(s)).toBe('first');
  });

  it('names the secret and the problem, never a value, when the secret is invalid', async () => {
    sm.putSecret(NAME, { endpoint: 'http://kd.example', appId: 'app', appSecret: 'hunter2-secret' });
    const error = await source()
      .current()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/secret koodrive\/test is not usable: endpoint must be https/);
    expect((error as Error).message).not.toContain('hunter2-secret');
  });

  it('names a missing secret', async () => {
    const s = new SecretSettingsSource({ client, secretId: 'missing', ttlMs: 1000 });
    await expect(s.current()).rejects.toThrow(/secret missing could not be read: ResourceNotFoundException/);
  });

  it('reads again exactly when the cache period ends, not a millisecond before', async () => {
    const s = source(1000);
    expect(await reads(() => s.current())).toBe(1);
    time += 999;
    expect(await reads(() => s.current())).toBe(0);
    time += 1;
    expect(await reads(() => s.current())).toBe(1);
  });

  it('reads on every call with a cache period of 0', async () => {
    const s = source(0);
    expect(await reads(() => s.current())).toBe(1);
    expect(await reads(() => s.current())).toBe(1);
  });
});

describe('SecretSettingsSource: a re-read that fails mid-invocation (issue 11, defect 4)', () => {
  it('keeps the settings in use when the read fails, reports it, and tries again 5 s later', async () => {
    const s = source();
    const first = await s.current();
    time += 300_000;
    sm.deleteSecret(NAME);
    const calls = sm.getSecretValueCalls;
    expect(await s.current()).toEqual(first);
    expect(sm.getSecretValueCalls - calls, 'the re-read was tried').toBe(1);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeInstanceOf(ConfigError);
    expect(reported[0]?.message).toMatch(
      /^secret koodrive\/test could not be read: ResourceNotFoundException/,
    );

    // No read storm: every caller within the next 5 s gets the settings in use without a read.
    sm.putSecret(NAME, secret('second'));
    time += FAILED_READ_RETRY_MS - 1;
    expect(await reads(() => Promise.all([s.current(), s.current()]))).toBe(0);
    expect(await appSecretOf(s)).toBe('first');
    time += 1;
    expect(await appSecretOf(s)).toBe('second');
    expect((await s.current()).version).toBe(first.version + 1);
    expect(reported).toHaveLength(1);
  });

  it('a short cache period is not lengthened by a failed read', async () => {
    const s = source(2000);
    await s.current();
    time += 2000;
    sm.failNext(3, 500); // the SDK itself tries three times
    await s.current();
    time += 1999;
    expect(await reads(() => s.current())).toBe(0);
    time += 1;
    expect(await reads(() => s.current())).toBe(1);
  });

  it('concurrent callers during the failing re-read all get the settings in use; no call rejects', async () => {
    const s = source();
    const first = await s.current();
    time += 300_000;
    sm.failNext(3, 500);
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => s.current()));
    expect(results.map((r) => r.status)).toEqual(Array<string>(8).fill('fulfilled'));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : undefined))).toEqual(
      Array(8).fill(first),
    );
    expect(reported).toHaveLength(1);
  });

  it('keeps the settings in use when the re-read finds an unusable secret, naming the fields only', async () => {
    const s = source();
    const first = await s.current();
    time += 300_000;
    sm.putSecret(NAME, { endpoint: 'http://kd.example', appId: 'app', appSecret: 'hunter2-secret' });
    expect(await s.current()).toEqual(first);
    expect(reported.map((e) => e.message)).toEqual([
      'secret koodrive/test is not usable: endpoint must be https:// (http:// only to a loopback address)',
    ]);
    // The unusable content never counts as a version: the good secret put back is not "new".
    sm.putSecret(NAME, secret('first'));
    time += FAILED_READ_RETRY_MS;
    expect((await s.current()).version).toBe(first.version);
  });

  it('a failed re-read after an auth failure is not new credentials: refresh() answers false', async () => {
    const s = source();
    const { version } = await s.current();
    sm.failNext(3, 500);
    expect(await s.refresh(version)).toBe(false);
    expect(reported).toHaveLength(1);
    expect((await s.current()).version).toBe(version);
    // Same with an unusable secret, once the rate limit allows another forced read.
    time += 300_000;
    sm.putSecret(NAME, { endpoint: 'https://kd.example', appId: 'app' });
    expect(await s.refresh(version)).toBe(false);
    expect(reported).toHaveLength(2);
    expect((await s.current()).version).toBe(version);
  });

  it('a failed re-read while another read brought new settings answers true: newer settings are in use', async () => {
    const s = source();
    const { version } = await s.current();
    sm.putSecret(NAME, secret('rotated'));
    time += 300_000;
    const fresh = s.current(); // the cache period's read, in flight
    expect(await s.refresh(version)).toBe(true); // shares that read: no second one
    expect((await fresh).version).toBe(version + 1);
  });

  it('forced re-reads are at least 1 s apart even without a cache', async () => {
    const s = source(0);
    const { version } = await s.current();
    sm.putSecret(NAME, secret('rotated'));
    expect(await s.refresh(version - 1)).toBe(true); // newer than what that caller saw: no read needed
    time += 1;
    expect(await reads(async () => expect(await s.refresh(version)).toBe(true))).toBe(1);
    sm.putSecret(NAME, secret('again'));
    time += 999;
    expect(await reads(async () => expect(await s.refresh(version + 1)).toBe(false))).toBe(0);
    time += 1;
    expect(await reads(async () => expect(await s.refresh(version + 1)).toBe(true))).toBe(1);
  });

  it('without onError a failed re-read is silent and still keeps the settings in use', async () => {
    const s = new SecretSettingsSource({ client, secretId: NAME, ttlMs: 1000, now: () => time });
    const first = await s.current();
    time += 1000;
    sm.failNext(3, 500);
    expect(await s.current()).toEqual(first);
  });

  it('before any good read there is nothing to keep: the failure rejects, and is not cached', async () => {
    const s = source();
    sm.putSecret(NAME, 'not json');
    await expect(s.current()).rejects.toThrow(/SecretString is not JSON/);
    expect(reported).toHaveLength(0);
    sm.putSecret(NAME, secret('first'));
    expect(await appSecretOf(s)).toBe('first');
  });
});

describe('SecretSettingsSource with a scripted client', () => {
  const good = JSON.stringify(secret('scripted'));
  /** A client whose reads are answered by the test, in order. */
  function scriptedClient() {
    const pending: { resolve: (v: { SecretString: string }) => void; reject: (e: unknown) => void }[] = [];
    const client = {
      send: () =>
        new Promise<{ SecretString: string }>((resolve, reject) => {
          pending.push({ resolve, reject });
        }),
    };
    return { client: client as unknown as SecretsManagerClient, pending };
  }

  it('names a thrown value that is not an Error as text, and an Error by its name and message', async () => {
    const throwing = (value: unknown) =>
      new SecretSettingsSource({
        // The SDK throws Errors; a value of another kind is still named.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        client: { send: () => Promise.reject(value) },
        secretId: 'kd',
        ttlMs: 1000,
      });
    await expect(throwing('socket hang up').current()).rejects.toThrow(
      /^secret kd could not be read: socket hang up$/,
    );
    const cause = new RangeError('bad');
    const error = await throwing(cause)
      .current()
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe('secret kd could not be read: RangeError: bad');
    expect((error as Error).cause).toBe(cause);
  });

  it('a forced re-read before any good read, failing, answers false', async () => {
    const s = new SecretSettingsSource({ client, secretId: 'missing', ttlMs: 1000 });
    expect(await s.refresh(undefined)).toBe(false);
  });

  it('keeps time with the system clock by default', async () => {
    const s = new SecretSettingsSource({ client, secretId: NAME, ttlMs: 60_000 });
    expect(
      await reads(async () => {
        await s.current();
        await s.current();
      }),
    ).toBe(1);
  });

  it('a first read that fails after a newer read started does not evict the newer one', async () => {
    const { client, pending } = scriptedClient();
    const s = new SecretSettingsSource({ client, secretId: NAME, ttlMs: 1000, now: () => time });
    const first = s.current();
    time += 1000;
    const second = s.current();
    expect(pending).toHaveLength(2);
    pending[0]?.reject(new Error('throttled'));
    await expect(first).rejects.toThrow(/could not be read/);
    // The newer read is still the one callers share: no third read.
    const third = s.current();
    expect(pending).toHaveLength(2);
    pending[1]?.resolve({ SecretString: good });
    expect((await second).version).toBe(1);
    expect(await third).toEqual(await second);
  });
});
