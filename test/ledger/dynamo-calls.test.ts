/**
 * The ledger's DynamoDB adapters (src/ledger/dynamo-http.ts, the functions'; src/ledger/dynamo-sdk.ts, the holder
 * package's) against real loopback servers: dynalite for what DynamoDB does, and a scripted server for what dynalite
 * cannot show (the old item with a failed condition, throttling, a server that never answers). The signature is
 * checked against the AWS SDK's own SigV4 signer; the ledger's behaviour on top is in ledger.contract.test.ts.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../dev/dynalite';
import { closerOf, listenOnLoopback } from '../../src/testing/loopback';
import { ConfigError } from '../../src/core/errors';
import { DynamoCallError, DynamoTimeoutError, type DynamoCalls } from '../../src/ledger/dynamo-calls';
import { httpDynamoCalls, httpDynamoCallsFromEnv } from '../../src/ledger/dynamo-http';
import { sdkDynamoCalls } from '../../src/ledger/dynamo-sdk';

const KEYS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

interface Scripted {
  endpoint: string;
  requests: Array<{ headers: IncomingMessage['headers']; body: string }>;
  close(): Promise<void>;
}

/** A loopback server answering each request with the next scripted answer (the last one repeats); null: never. */
async function scriptedServer(answers: Array<{ status: number; body: unknown } | null>): Promise<Scripted> {
  const requests: Scripted['requests'] = [];
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      requests.push({ headers: request.headers, body });
      const answer = answers[Math.min(requests.length - 1, answers.length - 1)];
      if (answer === null || answer === undefined) return; // hangs
      response.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(JSON.stringify(answer.body));
    });
  });
  const endpoint = await listenOnLoopback(server);
  return { endpoint, requests, close: closerOf(server) };
}

const conditionFailed = (item?: unknown) => ({
  status: 400,
  body: {
    __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',
    message: 'The conditional request failed',
    ...(item ? { Item: item } : {}),
  },
});
const throttled = {
  status: 400,
  body: {
    __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
    message: 'Rate exceeded',
  },
};
const update = {
  TableName: 't',
  Key: { lockId: { S: 'l' } },
  UpdateExpression: 'SET #s = :s',
  ConditionExpression: '#s = :held',
  ExpressionAttributeNames: { '#s': 'status' },
  ExpressionAttributeValues: { ':s': { S: 'RELEASED' }, ':held': { S: 'HELD' } },
  ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
};

/** Both adapters on an endpoint, with the same timeout and no backoff wait. */
function adapters(endpoint: string, timeoutMs = 2000): Array<[string, DynamoCalls]> {
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint,
    credentials: KEYS,
    maxAttempts: 3,
  });
  return [
    [
      'signed HTTP',
      httpDynamoCalls({ region: 'us-east-1', endpoint, credentials: KEYS, timeoutMs, sleep: async () => {} }),
    ],
    ['AWS SDK', sdkDynamoCalls(client, { timeoutMs })],
  ];
}

describe('on dynalite', () => {
  let dynamo: LocalDynamo;
  beforeAll(async () => {
    dynamo = await startDynalite();
  });
  afterAll(() => dynamo.close());

  it.each(['signed HTTP', 'AWS SDK'])('%s: writes, reads, a failed condition is an answer', async (name) => {
    const calls = adapters(dynamo.endpoint).find(([n]) => n === name)![1];
    const lockId = `l-${name}`;
    const put = await calls.putItem({
      TableName: dynamo.tableName,
      Item: { lockId: { S: lockId }, status: { S: 'HELD' }, version: { N: '1' } },
      ConditionExpression: 'attribute_not_exists(lockId)',
      ReturnConsumedCapacity: 'TOTAL',
    });
    expect(put).toEqual({
      conditionFailed: false,
      ConsumedCapacity: { TableName: dynamo.tableName, CapacityUnits: 1 },
    });
    const again = await calls.putItem({
      TableName: dynamo.tableName,
      Item: { lockId: { S: lockId } },
      ConditionExpression: 'attribute_not_exists(lockId)',
    });
    expect(again.conditionFailed).toBe(true);
    const got = await calls.getItem({
      TableName: dynamo.tableName,
      Key: { lockId: { S: lockId } },
      ConsistentRead: true,
    });
    expect(got.Item).toEqual({ lockId: { S: lockId }, status: { S: 'HELD' }, version: { N: '1' } });
    const refused = calls.getItem({ TableName: 'no-such-table', Key: { lockId: { S: lockId } } });
    await expect(refused).rejects.toBeInstanceOf(DynamoCallError);
    await expect(refused).rejects.toMatchObject({ name: 'ResourceNotFoundException', retryable: false });
  });
});

describe('what dynalite cannot show, from a scripted server', () => {
  it.each([0, 1])('a failed condition carries the old item DynamoDB returned (adapter %i)', async (which) => {
    const old = { lockId: { S: 'l' }, status: { S: 'RELEASING' }, version: { N: '4' } };
    const server = await scriptedServer([conditionFailed(old)]);
    try {
      const [, calls] = adapters(server.endpoint)[which]!;
      expect(await calls.updateItem({ ...update, TableName: 't' })).toEqual({
        conditionFailed: true,
        oldItem: old,
      });
      expect(server.requests).toHaveLength(1); // a failed condition is never retried
    } finally {
      await server.close();
    }
  });

  it.each([0, 1])('throttling is retried, each attempt signed afresh (adapter %i)', async (which) => {
    const server = await scriptedServer([throttled, throttled, { status: 200, body: {} }]);
    try {
      // The SDK waits up to 500 ms × 2^retry after throttling: a bound that leaves room for two of them.
      const [, calls] = adapters(server.endpoint, 8000)[which]!;
      expect(await calls.updateItem(update)).toEqual({ conditionFailed: false });
      expect(server.requests).toHaveLength(3);
      expect(
        server.requests.every((r) => String(r.headers.authorization).startsWith('AWS4-HMAC-SHA256 ')),
      ).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('gives up after maxAttempts with the last error; a validation error is not retried', async () => {
    const server = await scriptedServer([throttled]);
    const refusing = await scriptedServer([
      { status: 400, body: { __type: 'com.amazon.coral.validate#ValidationException', message: 'bad' } },
    ]);
    try {
      const calls = httpDynamoCalls({
        region: 'us-east-1',
        endpoint: server.endpoint,
        credentials: KEYS,
        maxAttempts: 2,
        sleep: async () => {},
      });
      await expect(calls.updateItem(update)).rejects.toMatchObject({
        name: 'ProvisionedThroughputExceededException',
        httpStatus: 400,
        retryable: true,
      });
      expect(server.requests).toHaveLength(2);
      const strict = httpDynamoCalls({ region: 'us-east-1', endpoint: refusing.endpoint, credentials: KEYS });
      await expect(strict.updateItem(update)).rejects.toThrow(
        'DynamoDB UpdateItem: ValidationException: bad',
      );
      expect(refusing.requests).toHaveLength(1);
    } finally {
      await server.close();
      await refusing.close();
    }
  });

  it.each([0, 1])(
    'a server that never answers ends in DynamoTimeoutError at the bound (adapter %i)',
    async (which) => {
      const server = await scriptedServer([null]);
      try {
        const [, calls] = adapters(server.endpoint, 200)[which]!;
        const startedAt = performance.now();
        const error: unknown = await calls
          .getItem({ TableName: 't', Key: { lockId: { S: 'l' } } })
          .catch((e: unknown) => e);
        const took = performance.now() - startedAt;
        expect(error).toBeInstanceOf(DynamoTimeoutError);
        expect((error as Error).message).toBe('DynamoDB GetItem did not answer within 200 ms');
        expect(took).toBeGreaterThanOrEqual(190);
        expect(took).toBeLessThan(2000);
      } finally {
        await server.close();
      }
    },
  );

  it('signs as the AWS SDK signs: the same Authorization for the same request and time', async () => {
    const server = await scriptedServer([{ status: 200, body: {} }]);
    try {
      const calls = httpDynamoCalls({
        region: 'eu-west-1',
        endpoint: server.endpoint,
        credentials: { ...KEYS, sessionToken: 'session-token' },
      });
      await calls.updateItem(update);
      const [{ headers, body }] = server.requests as [Scripted['requests'][number]];
      expect(headers['x-amz-target']).toBe('DynamoDB_20120810.UpdateItem');
      expect(headers['content-type']).toBe('application/x-amz-json-1.0');
      expect(headers['x-amz-security-token']).toBe('session-token');
      expect(JSON.parse(body)).toEqual(update);
      const date = String(headers['x-amz-date']);
      const signedAt = new Date(
        `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
      );
      // The SDK's signer, given the same request (the headers ours signed) and time, must compute the same signature.
      const signedNames = String(headers.authorization)
        .match(/SignedHeaders=([^,]+)/)![1]!
        .split(';');
      expect(signedNames).toEqual(
        expect.arrayContaining(['host', 'x-amz-date', 'x-amz-target', 'x-amz-security-token']),
      );
      const reference = new SignatureV4({
        service: 'dynamodb',
        region: 'eu-west-1',
        credentials: { ...KEYS, sessionToken: 'session-token' },
        sha256: NodeSha256,
        applyChecksum: false,
      });
      const url = new URL(server.endpoint);
      const signed = await reference.sign(
        {
          method: 'POST',
          protocol: 'http:',
          hostname: url.hostname,
          port: Number(url.port),
          path: '/',
          headers: Object.fromEntries(
            signedNames
              .filter((name) => name !== 'x-amz-date' && name !== 'x-amz-security-token')
              .map((name) => [name, String(headers[name])]),
          ),
          body,
        },
        { signingDate: signedAt },
      );
      expect(String(headers.authorization)).toBe(String(signed.headers.authorization));
    } finally {
      await server.close();
    }
  });
});

describe('configuration from the environment', () => {
  it('names every missing setting at once', () => {
    expect(() => httpDynamoCallsFromEnv({})).toThrow(ConfigError);
    expect(() => httpDynamoCallsFromEnv({})).toThrow(
      'the DynamoDB client has no region or credentials: AWS_REGION is not set; AWS_ACCESS_KEY_ID is not set; AWS_SECRET_ACCESS_KEY is not set',
    );
  });

  it('takes the endpoint from AWS_ENDPOINT_URL_DYNAMODB, else the region’s', async () => {
    const base = { AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' };
    const local = httpDynamoCallsFromEnv({ ...base, AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9' });
    const regional = httpDynamoCallsFromEnv(base);
    expect(local.endpoint).toBe('http://127.0.0.1:9');
    expect(regional.endpoint).toBe('https://dynamodb.eu-west-1.amazonaws.com');
    await Promise.all([local.close(), regional.close()]);
  });
});

/** SHA-256 and HMAC-SHA256 in the shape the SDK's signer takes. */
class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}
