import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSecretsManager, type LocalSecretsManager } from '../../dev/secrets-manager';
import { ConfigError } from '../../src/core/errors';
import { SecretSettingsSource } from '../../src/koodrive/secret-source';

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
  sm.putSecret(NAME, secret('first'));
});

const source = (ttlMs = 300_000) =>
  new SecretSettingsSource({ client, secretId: NAME, ttlMs, now: () => time });
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
});
