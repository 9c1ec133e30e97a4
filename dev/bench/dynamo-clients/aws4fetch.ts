/** Candidate: SigV4 by aws4fetch's AwsV4Signer (WebCrypto), sent over an undici Pool. */
import { AwsV4Signer } from 'aws4fetch';
import { Pool } from 'undici';
import { drive, type Candidate, type Target, type Write } from './drive';

function make(t: Target): Candidate {
  const pool = new Pool(t.endpoint, { connections: 16 });
  const url = new URL('/', t.endpoint).href;
  const send = async (input: Write) => {
    const body = JSON.stringify(input);
    const signed = await new AwsV4Signer({
      url,
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.UpdateItem',
      },
      body,
      service: 'dynamodb',
      region: t.region,
      ...t.credentials,
    }).sign();
    const response = await pool.request({
      path: '/',
      method: 'POST',
      headers: Object.fromEntries(signed.headers),
      body,
    });
    return {
      status: response.statusCode,
      answer: (await response.body.json()) as { __type?: string; Item?: unknown },
    };
  };
  return {
    update: async (input) => {
      const { status, answer } = await send(input);
      if (status !== 200 && !answer.__type?.endsWith('ConditionalCheckFailedException')) {
        throw new Error(`${status} ${JSON.stringify(answer)}`);
      }
    },
    conditionFailure: async (input) => (await send(input)).answer.Item,
    close: () => pool.close(),
  };
}

export const run = (options: Parameters<typeof drive>[1]) => drive(make, options);
