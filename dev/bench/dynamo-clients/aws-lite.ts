/** Candidate: @aws-lite/client with its DynamoDB plugin (it marshalls plain values itself; its only dependency is aws4). */
import awsLite from '@aws-lite/client';
import dynamodb from '@aws-lite/dynamodb';
import { drive, type Candidate, type Target, type Write } from './drive';

/** A wire-format value as the plain JS value aws-lite marshalls. */
const plain = (values: Record<string, { S?: string; N?: string }>) =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.S ?? Number(v.N)]));

function make(t: Target): Candidate {
  const client = awsLite({
    endpoint: t.endpoint,
    region: t.region,
    ...t.credentials,
    plugins: [dynamodb],
    autoloadPlugins: false,
  });
  const send = async (input: Write) => {
    const aws = (await client) as unknown as {
      DynamoDB: { UpdateItem(input: unknown): Promise<unknown> };
    };
    return aws.DynamoDB.UpdateItem({
      ...input,
      Key: plain(input.Key),
      ExpressionAttributeValues: plain(input.ExpressionAttributeValues),
    });
  };
  return {
    update: async (input) => {
      try {
        await send(input);
      } catch (error) {
        if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
      }
    },
    conditionFailure: async (input) => {
      try {
        await send(input);
        return undefined;
      } catch (error) {
        return (error as { Item?: unknown }).Item;
      }
    },
    close: () => Promise.resolve(),
  };
}

export const run = (options: Parameters<typeof drive>[1]) => drive(make, options);
