/**
 * The ledger's DynamoDB port (dynamo-calls.ts) as SigV4-signed JSON requests (the `aws4` signer) over an undici
 * pool, one per container like KooDrive's: what the functions use. Measured against the AWS SDK and aws-lite in
 * `npm run bench` (docs/benchmarks.md, "DynamoDB client"): a third of the SDK's CPU per request, no SDK load.
 *
 * Each call is bounded by `timeoutMs`, its retries included. Throttling, 5xx and transport errors are retried
 * (`maxAttempts`, first try included) with full-jitter backoff, each attempt signed afresh. A failed condition is
 * the port's `conditionFailed` answer with the old item when DynamoDB returns it; other errors become
 * DynamoCallError with DynamoDB's error type as `name` and `code`.
 */
import aws4 from 'aws4';
import { Pool, type Dispatcher } from 'undici';
import { ConfigError } from '../core/errors';
import { systemClock, systemRandom, type Random } from '../core/model';
import {
  DEFAULT_DYNAMO_TIMEOUT_MS,
  DynamoCallError,
  isRetryableDynamoError,
  withTimeout,
  type AttributeMap,
  type BatchGetItemAnswer,
  type DynamoCalls,
  type GetItemAnswer,
  type QueryAnswer,
  type WriteAnswer,
} from './dynamo-calls';

export interface DynamoCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface HttpDynamoCallsOptions {
  region: string;
  /** Default https://dynamodb.<region>.amazonaws.com. */
  endpoint?: string;
  /** Fixed keys, or a provider asked before each request (it caches and refreshes them itself). */
  credentials: DynamoCredentials | (() => Promise<DynamoCredentials>);
  /** Bound of one call, its retries included. Default DEFAULT_DYNAMO_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Attempts per call, the first included. Default 3 (as the SDK's standard retry mode). */
  maxAttempts?: number;
  /** Keep-alive connections to DynamoDB. Default 16. */
  connections?: number;
  /** Default: a Pool on the endpoint with `connections`. */
  dispatcher?: Dispatcher;
  random?: Random;
  sleep?: (ms: number) => Promise<void>;
}

export interface HttpDynamoCalls extends DynamoCalls {
  readonly endpoint: string;
  /** Closes the pool's connections (a pool passed in as `dispatcher` stays open). */
  close(): Promise<void>;
}

/** First backoff cap in ms; doubles per retry up to MAX_BACKOFF_MS (full jitter: a random wait below the cap). */
const BASE_BACKOFF_MS = 25;
const MAX_BACKOFF_MS = 1000;
const TARGET_PREFIX = 'DynamoDB_20120810.';
const CONTENT_TYPE = 'application/x-amz-json-1.0';

export function httpDynamoCalls(options: HttpDynamoCallsOptions): HttpDynamoCalls {
  const endpoint = new URL(options.endpoint ?? `https://dynamodb.${options.region}.amazonaws.com`);
  if (endpoint.protocol !== 'https:' && endpoint.protocol !== 'http:') {
    throw new ConfigError('invalid DynamoDB endpoint', [`${endpoint.href} is not an http(s) URL`]);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_DYNAMO_TIMEOUT_MS;
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  const random = options.random ?? systemRandom;
  const sleep = options.sleep ?? ((ms: number) => systemClock.sleep(ms));
  const ownPool = options.dispatcher === undefined;
  const dispatcher =
    options.dispatcher ??
    new Pool(endpoint.origin, { connections: options.connections ?? 16, keepAliveTimeout: 30_000 });
  const credentials = options.credentials;
  const credentialsOf = typeof credentials === 'function' ? credentials : () => credentials;
  const host = endpoint.host;
  const path = endpoint.pathname;
  const region = options.region;

  async function attempt<T>(operation: string, body: string, signal: AbortSignal): Promise<T> {
    const keys = await credentialsOf();
    const signed = aws4.sign(
      {
        host,
        path,
        method: 'POST',
        service: 'dynamodb',
        region,
        headers: { Host: host, 'Content-Type': CONTENT_TYPE, 'X-Amz-Target': TARGET_PREFIX + operation },
        body,
      },
      keys,
    );
    const response = await dispatcher.request({
      origin: endpoint.origin,
      path,
      method: 'POST',
      headers: signed.headers as Record<string, string>,
      body,
      signal,
    });
    const text = await response.body.text();
    if (response.statusCode === 200) return JSON.parse(text) as T;
    throw answerError(operation, response.statusCode, text);
  }

  async function call<T>(operation: string, input: unknown, signal: AbortSignal): Promise<T> {
    const body = JSON.stringify(input);
    for (let attemptNo = 1; ; attemptNo += 1) {
      try {
        return await attempt<T>(operation, body, signal);
      } catch (error) {
        if (signal.aborted || attemptNo >= maxAttempts || !isRetryable(error)) throw error;
      }
      const cap = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** (attemptNo - 1));
      await sleep(Math.floor(random() * cap));
    }
  }

  const send = <T>(operation: string, input: unknown): Promise<T> =>
    withTimeout(operation, timeoutMs, (signal) => call<T>(operation, input, signal));

  const write = async (operation: string, input: unknown): Promise<WriteAnswer> => {
    try {
      const answer = await send<Omit<WriteAnswer, 'conditionFailed'>>(operation, input);
      return {
        conditionFailed: false,
        ...(answer.ConsumedCapacity ? { ConsumedCapacity: answer.ConsumedCapacity } : {}),
      };
    } catch (error) {
      if (error instanceof DynamoCallError && error.code === 'ConditionalCheckFailedException') {
        const oldItem = (error as DynamoCallError & { item?: AttributeMap }).item;
        return { conditionFailed: true, ...(oldItem ? { oldItem } : {}) };
      }
      throw error;
    }
  };

  return {
    endpoint: endpoint.origin,
    putItem: (input) => write('PutItem', input),
    updateItem: (input) => write('UpdateItem', input),
    getItem: (input) => send<GetItemAnswer>('GetItem', input),
    query: (input) => send<QueryAnswer>('Query', input),
    batchGetItem: (input) => send<BatchGetItemAnswer>('BatchGetItem', input),
    close: async () => {
      if (ownPool) await dispatcher.close();
    },
  };
}

/**
 * The adapter configured as the AWS SDK configures itself in Lambda: AWS_REGION (or AWS_DEFAULT_REGION), the keys
 * in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, the endpoint in AWS_ENDPOINT_URL_DYNAMODB (or
 * AWS_ENDPOINT_URL). A missing setting is a ConfigError naming every one.
 */
export function httpDynamoCallsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  options: Omit<HttpDynamoCallsOptions, 'region' | 'endpoint' | 'credentials'> = {},
): HttpDynamoCalls {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  const problems = [
    ...(region ? [] : ['AWS_REGION is not set']),
    ...(accessKeyId ? [] : ['AWS_ACCESS_KEY_ID is not set']),
    ...(secretAccessKey ? [] : ['AWS_SECRET_ACCESS_KEY is not set']),
  ];
  if (!region || !accessKeyId || !secretAccessKey) {
    throw new ConfigError('the DynamoDB client has no region or credentials', problems);
  }
  const endpoint = env.AWS_ENDPOINT_URL_DYNAMODB ?? env.AWS_ENDPOINT_URL;
  return httpDynamoCalls({
    ...options,
    region,
    ...(endpoint ? { endpoint } : {}),
    credentials: {
      accessKeyId,
      secretAccessKey,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    },
  });
}

/** DynamoDB's error answer ({"__type": "com.amazonaws.dynamodb.v20120810#Code", "message": …}) as DynamoCallError. */
function answerError(operation: string, httpStatus: number, text: string): DynamoCallError {
  let parsed: { __type?: unknown; message?: unknown; Message?: unknown; Item?: AttributeMap } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // not JSON (a proxy's page): the status tells
  }
  const type = typeof parsed.__type === 'string' ? parsed.__type : `HTTP${httpStatus}`;
  const code = type.slice(type.lastIndexOf('#') + 1);
  const given = parsed.message ?? parsed.Message;
  const message = typeof given === 'string' ? given : text.slice(0, 200);
  const error = new DynamoCallError(operation, code, message, {
    httpStatus,
    retryable: isRetryableDynamoError(code, httpStatus),
  });
  if (parsed.Item) Object.assign(error, { item: parsed.Item });
  return error;
}

/** DynamoDB asked for a retry, or the request failed in transport (a reset or refused connection). */
function isRetryable(error: unknown): boolean {
  if (error instanceof DynamoCallError) return error.retryable;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('UND_ERR_') || code.startsWith('E'));
}

/** What httpDynamoCallsFor reads of an AWS SDK v3 client (a DynamoDBClient has it). */
export interface SdkClientConfig {
  config: {
    region: () => Promise<string>;
    endpoint?: () => Promise<{ protocol: string; hostname: string; port?: number; path: string }>;
    credentials: () => Promise<DynamoCredentials>;
  };
}

/**
 * The adapter on an AWS SDK client's region, endpoint and credential provider (its whole chain: environment,
 * profile, container, instance); the client's own middleware and HTTP handler are not used. Resolved at the first
 * call; a failed resolution is retried at the next.
 */
export function httpDynamoCallsFor(
  client: SdkClientConfig,
  options: Omit<HttpDynamoCallsOptions, 'region' | 'endpoint' | 'credentials'> = {},
  env: NodeJS.ProcessEnv = process.env,
): DynamoCalls {
  let built: Promise<HttpDynamoCalls> | undefined;
  const build = async (): Promise<HttpDynamoCalls> => {
    const region = await client.config.region();
    const configured = client.config.endpoint ? await client.config.endpoint() : undefined;
    const endpoint = configured
      ? `${configured.protocol}//${configured.hostname}${configured.port ? `:${configured.port}` : ''}${configured.path}`
      : (env.AWS_ENDPOINT_URL_DYNAMODB ?? env.AWS_ENDPOINT_URL);
    return httpDynamoCalls({
      ...options,
      region,
      ...(endpoint ? { endpoint } : {}),
      credentials: () => client.config.credentials(),
    });
  };
  const calls = (): Promise<HttpDynamoCalls> => {
    built ??= build().catch((error: unknown) => {
      built = undefined;
      throw error;
    });
    return built;
  };
  return {
    putItem: async (input) => (await calls()).putItem(input),
    updateItem: async (input) => (await calls()).updateItem(input),
    getItem: async (input) => (await calls()).getItem(input),
    query: async (input) => (await calls()).query(input),
    batchGetItem: async (input) => (await calls()).batchGetItem(input),
  };
}
