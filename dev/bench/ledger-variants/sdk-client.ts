/**
 * Bundle variant: the ledger's DynamoDB calls through the AWS SDK v3 client, as the functions sent them before the
 * signed-HTTP adapter (the baseline of the DynamoDB client's cost; same ledger, same requests, same timeout).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DEFAULT_ENGINE_OPTIONS } from '../../../src/core/engine';
import { sdkDynamoCalls } from '../../../src/ledger/dynamo-sdk';
import { DynamoLedger as Ledger, type DynamoLedgerOptions } from '../../../src/ledger/ledger';

export * from '../../../src/ledger/ledger';

export class DynamoLedger extends Ledger {
  constructor(options: DynamoLedgerOptions) {
    const calls = sdkDynamoCalls(new DynamoDBClient({}), {
      timeoutMs: DEFAULT_ENGINE_OPTIONS.recordReserveMs,
    });
    super({ ...options, calls });
  }
}
