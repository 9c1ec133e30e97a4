/** Candidate: SigV4 by `aws4` over an undici Pool, through the ledger's adapter (src/ledger/dynamo-http.ts). */
import { httpDynamoCalls } from '../../../src/ledger/dynamo-http';
import { drive, type Candidate, type Target } from './drive';

function make(t: Target): Candidate {
  const calls = httpDynamoCalls({ region: t.region, endpoint: t.endpoint, credentials: t.credentials });
  return {
    update: async (input) => void (await calls.updateItem(input)),
    conditionFailure: async (input) => {
      const answer = await calls.updateItem(input);
      return answer.conditionFailed ? answer.oldItem : undefined;
    },
    close: () => calls.close(),
  };
}

export const run = (options: Parameters<typeof drive>[1]) => drive(make, options);
