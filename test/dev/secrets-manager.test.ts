import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSecretsManager } from '../../dev/secrets-manager';
import type { LocalSecretsManager } from '../../dev/secrets-manager';

describe('local Secrets Manager', () => {
  let sm: LocalSecretsManager;
  let client: SecretsManagerClient;

  beforeEach(async () => {
    sm = await startSecretsManager();
    client = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: sm.url,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
  });

  afterEach(async () => {
    client.destroy();
    await sm.close();
  });

  it('serves GetSecretValue by name and by ARN to the real SDK client', async () => {
    const arn = sm.putSecret('koodrive', { appId: 'a', appSecret: 's' });
    expect(arn).toBe('arn:aws:secretsmanager:us-east-1:000000000000:secret:koodrive-AbCdEf');

    const byName = await client.send(new GetSecretValueCommand({ SecretId: 'koodrive' }));
    expect(byName).toMatchObject({
      ARN: arn,
      Name: 'koodrive',
      SecretString: '{"appId":"a","appSecret":"s"}',
      VersionStages: ['AWSCURRENT'],
    });
    expect(byName.CreatedDate).toBeInstanceOf(Date);
    expect(Math.abs(byName.CreatedDate!.getTime() - Date.now())).toBeLessThan(60_000);

    const byArn = await client.send(new GetSecretValueCommand({ SecretId: arn }));
    expect(byArn.SecretString).toBe(byName.SecretString);
    expect(byArn.VersionId).toBe(byName.VersionId);

    expect(sm.calls).toEqual([
      { target: 'GetSecretValue', secretId: 'koodrive' },
      { target: 'GetSecretValue', secretId: arn },
    ]);
    expect(sm.getSecretValueCalls).toBe(2);
  });

  it('gives a new VersionId on every put and stores strings as they are', async () => {
    sm.putSecret('s', 'first');
    const v1 = await client.send(new GetSecretValueCommand({ SecretId: 's' }));
    sm.putSecret('s', 'second');
    const v2 = await client.send(new GetSecretValueCommand({ SecretId: 's' }));
    expect(v1.SecretString).toBe('first');
    expect(v2.SecretString).toBe('second');
    expect(v2.VersionId).not.toBe(v1.VersionId);
  });

  it('answers ResourceNotFoundException for an unknown or deleted secret', async () => {
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'nope' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      message: "Secrets Manager can't find the specified secret.",
      $metadata: { httpStatusCode: 400 },
    });
    sm.putSecret('gone', 'x');
    expect(sm.deleteSecret('gone')).toBe(true);
    expect(sm.deleteSecret('gone')).toBe(false);
    const error: unknown = await client
      .send(new GetSecretValueCommand({ SecretId: 'gone' }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResourceNotFoundException);
    expect(sm.getSecretValueCalls).toBe(2);
  });

  it('injects failures with failNext, then recovers', async () => {
    sm.putSecret('s', 'v');
    sm.failNext(1, 500);
    await expect(client.send(new GetSecretValueCommand({ SecretId: 's' }))).rejects.toMatchObject({
      name: 'InternalServiceError',
      $metadata: { httpStatusCode: 500 },
    });
    await expect(client.send(new GetSecretValueCommand({ SecretId: 's' }))).resolves.toMatchObject({
      SecretString: 'v',
    });
    expect(sm.getSecretValueCalls).toBe(2);
  });

  it('lets the SDK retry an injected 500 with its default retry strategy', async () => {
    sm.putSecret('s', 'v');
    sm.failNext(1);
    const retrying = new SecretsManagerClient({
      region: 'us-east-1',
      endpoint: sm.url,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    try {
      const out = await retrying.send(new GetSecretValueCommand({ SecretId: 's' }));
      expect(out.SecretString).toBe('v');
      expect(sm.getSecretValueCalls).toBe(2);
    } finally {
      retrying.destroy();
    }
  });

  it('answers UnknownOperationException for other targets', async () => {
    const res = await request(sm.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.ListSecrets' },
      body: '{}',
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['x-amzn-errortype']).toBe('UnknownOperationException');
    expect(await res.body.json()).toEqual({ __type: 'UnknownOperationException' });
    expect(sm.calls).toEqual([{ target: 'ListSecrets', secretId: undefined }]);
    expect(sm.getSecretValueCalls).toBe(0);
  });
});
