/**
 * Bundle variant ("coalescing outcome writes"): released outcomes that arrive together are
 * written as one BatchWriteItem of up to 25 PutRequests, each a final RELEASED item with every value
 * marshalled by hand; failures go through the ledger's own conditional write. A BatchWriteItem carries no
 * condition: a put replaces the item whole (the holder's acquiredAt and name are lost from the audit trail, a
 * RELEASED item is rewritten), which is why it is measured here and not proposed as is.
 */
import { BatchWriteItemCommand, DynamoDBClient, type WriteRequest } from '@aws-sdk/client-dynamodb';
import type { LockResult } from '../../../src/core/model';
import {
  DynamoLedger as Ledger,
  RELEASED_RETENTION_SECONDS,
  type DynamoLedgerOptions,
} from '../../../src/ledger/ledger';

export * from '../../../src/ledger/ledger';

const BATCH = 25;

export class DynamoLedger extends Ledger {
  private readonly batchClient: DynamoDBClient;
  private readonly batchTable: string;
  private queue: Array<{ result: LockResult; done: (error?: Error) => void }> = [];
  private scheduled = false;

  constructor(options: DynamoLedgerOptions) {
    super(options);
    this.batchClient = new DynamoDBClient({});
    this.batchTable = options.tableName;
  }

  override record(result: LockResult): Promise<void> {
    if (result.outcome !== 'released' && result.outcome !== 'alreadyReleased') return super.record(result);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ result, done: (error) => (error ? reject(error) : resolve()) });
      if (this.queue.length >= BATCH) void this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH);
      const now = Date.now();
      const at = { N: String(now) };
      const expires = { N: String(Math.floor(now / 1000) + RELEASED_RETENTION_SECONDS) };
      let pending: WriteRequest[] = batch.map(({ result }) => ({
        PutRequest: {
          Item: {
            lockId: { S: result.lockId },
            userId: { S: result.userId },
            status: { S: 'RELEASED' },
            acquiredAt: at,
            heartbeatAt: at,
            releasedAt: at,
            expiresAt: expires,
            releaseAttempts: { N: String(result.attempts) },
            version: { N: '1' },
          },
        },
      }));
      try {
        while (pending.length > 0) {
          const answer = await this.batchClient.send(
            new BatchWriteItemCommand({ RequestItems: { [this.batchTable]: pending } }),
          );
          pending = answer.UnprocessedItems?.[this.batchTable] ?? [];
        }
        for (const b of batch) b.done();
      } catch (error) {
        for (const b of batch) b.done(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }
}
