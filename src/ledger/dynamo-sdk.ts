/**
 * The ledger's DynamoDB port (dynamo-calls.ts) through the AWS SDK v3 client: for callers that hand the ledger a
 * DynamoDBClient of their own (the holder package's `dynamodb` option, tools). Each call is bounded by a timeout
 * (the SDK's own retries included); ConditionalCheckFailedException becomes the port's `conditionFailed` answer
 * with the old item, other service errors become DynamoCallError.
 */
import {
  BatchGetItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type BatchGetItemCommandInput,
  type DynamoDBClient,
  type GetItemCommandInput,
  type PutItemCommandInput,
  type QueryCommandInput,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import {
  DEFAULT_DYNAMO_TIMEOUT_MS,
  DynamoCallError,
  isRetryableDynamoError,
  withTimeout,
  type BatchGetItemAnswer,
  type DynamoCalls,
  type GetItemAnswer,
  type QueryAnswer,
  type WriteAnswer,
  type AttributeMap,
} from './dynamo-calls';

export interface SdkDynamoCallsOptions {
  /** Bound of one call, the SDK's retries included. Default DEFAULT_DYNAMO_TIMEOUT_MS. */
  timeoutMs?: number;
}

interface SdkError {
  name?: string;
  message?: string;
  Item?: AttributeMap;
  $metadata?: { httpStatusCode?: number };
}

export function sdkDynamoCalls(client: DynamoDBClient, options: SdkDynamoCallsOptions = {}): DynamoCalls {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DYNAMO_TIMEOUT_MS;
  // The SDK's commands are typed with its own AttributeValue union; the port's inputs are the same JSON.
  type Sent = (options: { abortSignal: AbortSignal }) => Promise<unknown>;
  const send = <T>(operation: string, sent: Sent): Promise<T> =>
    withTimeout(operation, timeoutMs, async (abortSignal) => {
      try {
        return (await sent({ abortSignal })) as T;
      } catch (error) {
        throw serviceError(operation, error);
      }
    });
  const write = async (operation: string, sent: Sent) => {
    try {
      const answer = await send<Omit<WriteAnswer, 'conditionFailed'>>(operation, sent);
      return { conditionFailed: false, ConsumedCapacity: answer.ConsumedCapacity } as WriteAnswer;
    } catch (error) {
      if (error instanceof DynamoCallError && error.code === 'ConditionalCheckFailedException') {
        const item = (error.cause as SdkError).Item;
        return { conditionFailed: true, ...(item ? { oldItem: item } : {}) } as WriteAnswer;
      }
      throw error;
    }
  };
  return {
    putItem: (input) =>
      write('PutItem', (o) => client.send(new PutItemCommand(input as unknown as PutItemCommandInput), o)),
    updateItem: (input) =>
      write('UpdateItem', (o) =>
        client.send(new UpdateItemCommand(input as unknown as UpdateItemCommandInput), o),
      ),
    getItem: (input) =>
      send<GetItemAnswer>('GetItem', (o) =>
        client.send(new GetItemCommand(input as unknown as GetItemCommandInput), o),
      ),
    query: (input) =>
      send<QueryAnswer>('Query', (o) =>
        client.send(new QueryCommand(input as unknown as QueryCommandInput), o),
      ),
    batchGetItem: (input) =>
      send<BatchGetItemAnswer>('BatchGetItem', (o) =>
        client.send(new BatchGetItemCommand(input as unknown as BatchGetItemCommandInput), o),
      ),
  };
}

/** A service error as DynamoCallError (the SDK's error as its cause); anything else unchanged. */
function serviceError(operation: string, error: unknown): unknown {
  const e = error as SdkError;
  if (!e || typeof e !== 'object' || !e.$metadata || !e.name || e.name === 'AbortError') return error;
  const httpStatus = e.$metadata.httpStatusCode;
  return new DynamoCallError(
    operation,
    e.name,
    e.message ?? '',
    {
      ...(httpStatus !== undefined ? { httpStatus } : {}),
      retryable: isRetryableDynamoError(e.name, httpStatus),
    },
    { cause: error },
  );
}
