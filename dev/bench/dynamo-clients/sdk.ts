/** Candidate: the AWS SDK v3 client through the ledger's SDK adapter (the functions' client until now). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { sdkDynamoCalls } from '../../../src/ledger/dynamo-sdk';
import { drive, type Candidate, type Target } from './drive';

function make(t: Target): Candidate {
  const client = new DynamoDBClient({ region: t.region, endpoint: t.endpoint, credentials: t.credentials });
  const calls = sdkDynamoCalls(client);
  return {
    update: async (input) => void (await calls.updateItem(input)),
    conditionFailure: async (input) => {
      const answer = await calls.updateItem(input);
      return answer.conditionFailed ? answer.oldItem : undefined;
    },
    close: () => Promise.resolve(client.destroy()),
  };
}

export const run = (options: Parameters<typeof drive>[1]) => drive(make, options);
