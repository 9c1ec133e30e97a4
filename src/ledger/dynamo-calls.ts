/**
 * The five DynamoDB requests the ledger sends, as one small port: the ledger builds each request in DynamoDB's own
 * JSON shape and an adapter sends it (dynamo-sdk.ts through the AWS SDK, dynamo-http.ts as a signed request over an
 * undici pool). Every call is bounded by the adapter's timeout. A failed condition is not an error: a write answers
 * `{ conditionFailed: true }` with the item as it was when DynamoDB returns it (ReturnValuesOnConditionCheckFailure).
 * Any other failure rejects (DynamoCallError, DynamoTimeoutError, or the transport's error).
 */
import { systemClock } from '../core/model';

/** A DynamoDB attribute value in the wire format ({ S: "…" }, { N: "12" }, …): one of these fields is set. */
export interface AttributeValue {
  S?: string;
  N?: string;
  BOOL?: boolean;
  NULL?: boolean;
  SS?: string[];
  NS?: string[];
  L?: AttributeValue[];
  M?: Record<string, AttributeValue>;
}

/** An item, a key or a set of expression values. */
export type AttributeMap = Record<string, AttributeValue>;

export interface ConsumedCapacity {
  TableName?: string;
  CapacityUnits?: number;
}

interface TableRequest {
  TableName: string;
  ReturnConsumedCapacity?: 'TOTAL' | 'NONE';
}

interface ExpressionRequest {
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: AttributeMap;
}

export interface PutItemInput extends TableRequest, ExpressionRequest {
  Item: AttributeMap;
  ConditionExpression?: string;
  ReturnValuesOnConditionCheckFailure?: 'ALL_OLD' | 'NONE';
}

export interface UpdateItemInput extends TableRequest, ExpressionRequest {
  Key: AttributeMap;
  UpdateExpression: string;
  ConditionExpression?: string;
  ReturnValuesOnConditionCheckFailure?: 'ALL_OLD' | 'NONE';
}

export interface GetItemInput extends TableRequest {
  Key: AttributeMap;
  ConsistentRead?: boolean;
}

export interface QueryInput extends TableRequest, ExpressionRequest {
  IndexName?: string;
  KeyConditionExpression: string;
  FilterExpression?: string;
  Limit?: number;
  ExclusiveStartKey?: AttributeMap;
}

export interface BatchGetItemInput {
  RequestItems: Record<string, { Keys: AttributeMap[]; ConsistentRead?: boolean }>;
  ReturnConsumedCapacity?: 'TOTAL' | 'NONE';
}

/** A write's answer: applied, or its condition failed (then the old item when DynamoDB returned it). */
export type WriteAnswer =
  | { conditionFailed: false; ConsumedCapacity?: ConsumedCapacity }
  | { conditionFailed: true; oldItem?: AttributeMap; ConsumedCapacity?: ConsumedCapacity };

export interface GetItemAnswer {
  Item?: AttributeMap;
  ConsumedCapacity?: ConsumedCapacity;
}

export interface QueryAnswer {
  Items?: AttributeMap[];
  LastEvaluatedKey?: AttributeMap;
  ConsumedCapacity?: ConsumedCapacity;
}

export interface BatchGetItemAnswer {
  Responses?: Record<string, AttributeMap[]>;
  UnprocessedKeys?: Record<string, { Keys?: AttributeMap[] }>;
  ConsumedCapacity?: ConsumedCapacity[];
}

export interface DynamoCalls {
  putItem(input: PutItemInput): Promise<WriteAnswer>;
  updateItem(input: UpdateItemInput): Promise<WriteAnswer>;
  getItem(input: GetItemInput): Promise<GetItemAnswer>;
  query(input: QueryInput): Promise<QueryAnswer>;
  batchGetItem(input: BatchGetItemInput): Promise<BatchGetItemAnswer>;
}

/** Default bound of one DynamoDB call, retries included (a Lambda would otherwise wait for its own timeout). */
export const DEFAULT_DYNAMO_TIMEOUT_MS = 3000;

/**
 * DynamoDB refused a request (other than a failed condition). `name` and `code` are DynamoDB's error type
 * (ResourceNotFoundException, ValidationException, …), as the SDK names its errors.
 */
export class DynamoCallError extends Error {
  readonly code: string;
  readonly httpStatus: number | undefined;
  readonly retryable: boolean;

  constructor(
    operation: string,
    code: string,
    message: string,
    details: { httpStatus?: number; retryable: boolean },
    options?: ErrorOptions,
  ) {
    super(`DynamoDB ${operation}: ${code}: ${message}`, options);
    this.name = code;
    this.code = code;
    this.httpStatus = details.httpStatus;
    this.retryable = details.retryable;
  }
}

/** A DynamoDB call did not answer within its bound. */
export class DynamoTimeoutError extends Error {
  readonly code = 'DynamoTimeout';

  constructor(operation: string, timeoutMs: number, options?: ErrorOptions) {
    super(`DynamoDB ${operation} did not answer within ${timeoutMs} ms`, options);
    this.name = 'DynamoTimeoutError';
  }
}

/** Error types DynamoDB asks to retry (besides any 5xx). */
const RETRYABLE_CODES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TransactionConflictException',
]);

export function isRetryableDynamoError(code: string, httpStatus: number | undefined): boolean {
  return RETRYABLE_CODES.has(code) || (httpStatus !== undefined && httpStatus >= 500);
}

/**
 * Runs `call` with an AbortSignal that fires after `timeoutMs`, and rejects with DynamoTimeoutError then, whether
 * or not the call honours the signal.
 */
export function withTimeout<T>(
  operation: string,
  timeoutMs: number,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    const timer = systemClock.setTimer(timeoutMs, () => {
      const error = new DynamoTimeoutError(operation, timeoutMs);
      controller.abort(error);
      reject(error);
    });
    call(controller.signal).then(
      (value) => {
        timer.cancel();
        resolve(value);
      },
      (error: unknown) => {
        timer.cancel();
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the call's own rejection, as it came
        reject(controller.signal.aborted ? (controller.signal.reason as Error) : error);
      },
    );
  });
}
