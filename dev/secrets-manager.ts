/**
 * A minimal AWS Secrets Manager endpoint for development and tests (never bundled into the Lambda).
 *
 * Speaks the AWS JSON 1.1 protocol the real `@aws-sdk/client-secrets-manager` uses: `POST /` with
 * `X-Amz-Target: secretsmanager.<Operation>`. Only `GetSecretValue` is implemented (by name or by the ARN it
 * reports); any other target → 400 `UnknownOperationException`. Errors carry both the `__type` body field and
 * the `x-amzn-errortype` header, which is how the SDK names its exceptions.
 *
 * Simplifies: no SigV4 verification (any credentials pass), one region and account
 * (`us-east-1`, `000000000000`), a fixed ARN suffix `-AbCdEf`, only the `AWSCURRENT` version is served
 * (`VersionId`/`VersionStage` in the request are ignored), partial ARNs are not accepted.
 * `calls` and `getSecretValueCalls` count every request received, injected failures included.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { closerOf, listenOnLoopback, readBody } from '../src/testing/loopback';

const ARN_PREFIX = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:';
const ARN_SUFFIX = '-AbCdEf';
const TARGET_PREFIX = 'secretsmanager.';

export interface SecretsManagerCall {
  /** The operation, e.g. "GetSecretValue" (the X-Amz-Target without its "secretsmanager." prefix). */
  target: string;
  secretId?: string;
}

export interface LocalSecretsManager {
  /** http://127.0.0.1:<port>, for the SDK's `endpoint` or AWS_ENDPOINT_URL_SECRETS_MANAGER. */
  readonly url: string;
  /** Creates or replaces a secret (an object is stored as its JSON); a new VersionId each time. Returns the ARN. */
  putSecret(name: string, value: string | object): string;
  /** Removes a secret; true when it existed. */
  deleteSecret(name: string): boolean;
  /** Every request received, in order (live array). */
  readonly calls: readonly SecretsManagerCall[];
  readonly getSecretValueCalls: number;
  /** The next `count` requests answer `status` (default 500) with an error body. */
  failNext(count: number, status?: number): void;
  close(): Promise<void>;
}

interface StoredSecret {
  name: string;
  arn: string;
  value: string;
  versionId: string;
  createdDate: number;
}

function errorTypeFor(status: number): string {
  if (status === 429) return 'ThrottlingException';
  return status >= 500 ? 'InternalServiceError' : 'InvalidRequestException';
}

function send(res: ServerResponse, status: number, body: object, errorType?: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...(errorType === undefined ? {} : { 'x-amzn-errortype': errorType }),
  });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, type: string, message?: string): void {
  send(res, status, message === undefined ? { __type: type } : { __type: type, message }, type);
}

export async function startSecretsManager(): Promise<LocalSecretsManager> {
  const secrets = new Map<string, StoredSecret>();
  const calls: SecretsManagerCall[] = [];
  let getSecretValueCalls = 0;
  let failuresLeft = 0;
  let failureStatus = 500;

  const find = (secretId: string): StoredSecret | undefined =>
    secrets.get(secretId) ?? [...secrets.values()].find((secret) => secret.arn === secretId);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = (await readBody(req))?.toString('utf8');
    const targetHeader = req.headers['x-amz-target'];
    const fullTarget = typeof targetHeader === 'string' ? targetHeader : '';
    const target = fullTarget.startsWith(TARGET_PREFIX) ? fullTarget.slice(TARGET_PREFIX.length) : fullTarget;
    let input: unknown;
    try {
      input = raw ? JSON.parse(raw) : {};
    } catch {
      input = undefined;
    }
    const secretIdField = (input as { SecretId?: unknown } | null | undefined)?.SecretId;
    const secretId = typeof secretIdField === 'string' ? secretIdField : undefined;
    calls.push({ target, secretId });
    if (fullTarget === `${TARGET_PREFIX}GetSecretValue`) getSecretValueCalls += 1;

    if (failuresLeft > 0) {
      failuresLeft -= 1;
      return sendError(res, failureStatus, errorTypeFor(failureStatus), 'injected failure');
    }
    if (req.method !== 'POST' || req.url !== '/') return sendError(res, 404, 'UnknownOperationException');
    if (raw === undefined) return sendError(res, 413, 'InvalidRequestException', 'request body too large');
    if (fullTarget !== `${TARGET_PREFIX}GetSecretValue`)
      return sendError(res, 400, 'UnknownOperationException');
    if (input === undefined || typeof input !== 'object' || input === null) {
      return sendError(res, 400, 'SerializationException', 'request body is not a JSON object');
    }
    if (secretId === undefined || secretId === '') {
      return sendError(res, 400, 'ValidationException', 'SecretId is required');
    }
    const secret = find(secretId);
    if (!secret) {
      return sendError(
        res,
        400,
        'ResourceNotFoundException',
        "Secrets Manager can't find the specified secret.",
      );
    }
    send(res, 200, {
      ARN: secret.arn,
      Name: secret.name,
      SecretString: secret.value,
      VersionId: secret.versionId,
      VersionStages: ['AWSCURRENT'],
      CreatedDate: secret.createdDate,
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (res.headersSent || res.destroyed) res.destroy();
      else sendError(res, 500, 'InternalServiceError', 'local secrets manager error');
    });
  });
  const url = await listenOnLoopback(server);

  return {
    url,
    putSecret(name, value) {
      if (name === '') throw new Error('secret name must not be empty');
      const arn = `${ARN_PREFIX}${name}${ARN_SUFFIX}`;
      secrets.set(name, {
        name,
        arn,
        value: typeof value === 'string' ? value : JSON.stringify(value),
        versionId: randomUUID(),
        createdDate: Date.now() / 1000,
      });
      return arn;
    },
    deleteSecret(name) {
      return secrets.delete(name);
    },
    calls,
    get getSecretValueCalls() {
      return getSecretValueCalls;
    },
    failNext(count, status = 500) {
      if (!Number.isInteger(count) || count < 0) throw new RangeError('count must be an integer >= 0');
      if (!Number.isInteger(status) || status < 400 || status > 599) {
        throw new RangeError('status must be an HTTP error status (400-599)');
      }
      failuresLeft = count;
      failureStatus = status;
    },
    close: closerOf(server),
  };
}
