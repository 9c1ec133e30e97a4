/**
 * The KooDrive backup-lock client on undici: create (POST), renew (PATCH) and release (DELETE).
 *
 * Every call is one freshly signed attempt; retries belong to the caller (the release engine). The
 * methods never throw for HTTP or network problems: they answer with a classified failure
 * (README, "Behaviour"; KooDrive's documented error codes). Only a failing SettingsSource (configuration error) rejects.
 */
import type { Dispatcher } from 'undici';
import { idProblem, systemClock } from '../core/model';
import type { AttemptOutcome, ErrorKind, LockRef } from '../core/model';
import { classifyAnswer, clip, field, parseJson, parseRetryAfter, readEnvelope, redactor } from './answers';
import type { KooDriveAnswer } from './answers';
import { checkEndpoint } from './endpoint';
import { AttemptTimeoutError, defaultDispatcher, errorCode, errorMessage, exchange } from './exchange';
import type { KooDriveSettings, SettingsSource } from './settings';
import { BASE_SIGNED_HEADERS, encodePath, formatXDate, signRequest } from './signer';

// The client's public surface as it was before the exchange, the answers and the endpoint rule got files of
// their own: importers keep importing from here.
export { classifyAnswer, parseRetryAfter, RETRY_CODE, type KooDriveAnswer } from './answers';
export { isLoopbackHost } from './endpoint';
export { defaultDispatcher } from './exchange';

export const LOCK_PATH = '/koodrive/ose/v1/backup/lock';
/** LOCK_PATH as sent, encoded on first use. */
let encodedLockPath: string | undefined;
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
export const DEFAULT_X_DATE_BACKDATE_MS = 1000;

export type KooDriveFailure = Extract<AttemptOutcome, { ok: false }>;
export type CreateLockResult = { ok: true; lockId: string } | KooDriveFailure;
export type RenewLockResult = { ok: true } | KooDriveFailure;

export interface KooDriveClientOptions {
  settings: SettingsSource;
  /** Default: one keep-alive Agent per process (one connection pool per origin), see defaultDispatcher(). */
  dispatcher?: Dispatcher;
  /**
   * With the default dispatcher: the most connections its pool opens per origin; set it to the concurrency.
   * Unbounded, undici opens up to twice as many, as it waits a tick before reusing a socket. Default unbounded.
   */
  connections?: number;
  /** Bound of one whole attempt: connect, request, response headers and body. */
  timeoutMs: number;
  /** Epoch ms; default the system clock's now(). */
  now?: () => number;
  /** Larger response bodies are not read; the answer is classified by its HTTP status. Default 64 KiB. */
  maxResponseBytes?: number;
  /** X-Date is this much earlier than now, against clock skew (KooDrive refuses a future X-Date). Default 1000. */
  xDateBackdateMs?: number;
}

export class KooDriveClient {
  private readonly settings: SettingsSource;
  private readonly dispatcher: Dispatcher;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly maxResponseBytes: number;
  private readonly xDateBackdateMs: number;

  constructor(options: KooDriveClientOptions) {
    if (!(options.timeoutMs > 0)) {
      throw new Error(`timeoutMs must be a positive number, got ${options.timeoutMs}`);
    }
    this.settings = options.settings;
    this.dispatcher = options.dispatcher ?? defaultDispatcher(options.connections);
    this.timeoutMs = options.timeoutMs;
    this.now = options.now ?? (() => systemClock.now());
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.xDateBackdateMs = Math.max(0, options.xDateBackdateMs ?? DEFAULT_X_DATE_BACKDATE_MS);
  }

  /** DELETE the lock. `alreadyReleased` when KooDrive says the lock does not exist. */
  async releaseLock(lock: LockRef): Promise<AttemptOutcome> {
    const sent = await this.send({ method: 'DELETE', userId: lock.userId, lockId: lock.lockId });
    return sent.outcome;
  }

  /** POST a new lock for `moduleCode` (100 folders, 101 album, 102 address book). */
  async createLock(userId: string, moduleCode: string): Promise<CreateLockResult> {
    const sent = await this.send({ method: 'POST', userId, body: JSON.stringify({ moduleCode }) });
    const { outcome } = sent;
    if (!outcome.ok) return outcome;
    if (outcome.outcome === 'alreadyReleased') {
      return gone(sent, 'create answered that the resource does not exist');
    }
    const lockId: unknown = field(field(sent.answer?.body, 'data'), 'lockId');
    const problem = idProblem('lockId', lockId);
    if (typeof lockId !== 'string' || problem !== undefined) {
      return failure('permanent', `create succeeded but its answer has no usable lock ID: ${problem}`, sent);
    }
    return { ok: true, lockId };
  }

  /** PATCH the lock: its 10-minute life starts again. A lock that no longer exists is a permanent error. */
  async renewLock(lock: LockRef): Promise<RenewLockResult> {
    const sent = await this.send({ method: 'PATCH', userId: lock.userId, lockId: lock.lockId });
    const { outcome } = sent;
    if (!outcome.ok) return outcome;
    if (outcome.outcome === 'alreadyReleased') return gone(sent, 'lock no longer exists');
    return { ok: true };
  }

  /** One signed request, its answer read (capped) and classified. */
  private async send(req: {
    method: 'POST' | 'PATCH' | 'DELETE';
    userId: string;
    lockId?: string;
    body?: string;
  }): Promise<Sent> {
    // The caller validated the IDs already; this guard keeps anything odd out of the headers.
    const inputProblem =
      idProblem('userId', req.userId) ??
      (req.lockId === undefined ? undefined : idProblem('lockId', req.lockId));
    if (inputProblem !== undefined) {
      return { outcome: { ok: false, error: { kind: 'invalid-input', message: inputProblem } } };
    }

    const { settings, version } = await this.settings.current();
    const fail = (kind: ErrorKind, message: string): Sent => ({
      outcome: { ok: false, error: { kind, message }, credentialsVersion: version },
      credentialsVersion: version,
    });

    const target = endpointOf(settings.endpoint);
    if (typeof target === 'string') return fail('permanent', target);

    const headers: Record<string, string> = {
      host: target.host,
      'x-date': formatXDate(new Date(this.now() - this.xDateBackdateMs)),
      'x-user-id': req.userId,
    };
    if (req.lockId !== undefined) headers['x-backup-lock-id'] = req.lockId;
    if (req.body !== undefined) headers['content-type'] = 'application/json';

    const { authorization, secrets } = authorize(settings, req.method, headers, req.body);
    // CR, LF and other control characters would let a header value be split or rejected by undici.
    if (!/^[\x20-\x7e]+$/.test(authorization)) {
      return fail('permanent', 'the credentials hold characters that are not allowed in an HTTP header');
    }
    headers.authorization = authorization;
    // Built only when a message needs it (failures): the success path never pays for it.
    let redactSecrets: ((text: string) => string) | undefined;
    const redact = (text: string) => (redactSecrets ??= redactor(secrets))(text);

    let answer: KooDriveAnswer;
    try {
      const res = await exchange(
        this.dispatcher,
        {
          origin: target.origin,
          path: (encodedLockPath ??= encodePath(LOCK_PATH)),
          method: req.method,
          headers,
          body: req.body ?? null,
        },
        this.timeoutMs,
        this.maxResponseBytes,
      );
      answer = {
        status: res.status,
        body: res.text === undefined ? undefined : parseJson(res.text),
        retryAfterMs: parseRetryAfter(res.headers['retry-after'], this.now()),
        bodyProblem: res.text === undefined ? `response body over ${this.maxResponseBytes} bytes` : undefined,
      };
    } catch (err) {
      if (err instanceof AttemptTimeoutError)
        return fail('retryable', `timed out after ${this.timeoutMs} ms`);
      const code = errorCode(err);
      // An argument undici refuses will be refused again: no point retrying.
      const kind = code === 'UND_ERR_INVALID_ARG' ? 'permanent' : 'retryable';
      return fail(kind, clip(redact(`request failed (${code ?? 'unknown error'}): ${errorMessage(err)}`)));
    }

    const outcome = classifyAnswer(answer, settings.protocol, redact);
    return {
      outcome: outcome.ok ? outcome : { ...outcome, credentialsVersion: version },
      answer,
      credentialsVersion: version,
    };
  }
}

interface Sent {
  outcome: AttemptOutcome;
  /** The HTTP answer, when there was one. */
  answer?: KooDriveAnswer;
  /** The version of the settings the request was signed with (absent when none were loaded). */
  credentialsVersion?: number;
}

let checkedEndpoint: { endpoint: string; target: URL | string } | undefined;

/** checkEndpoint() of the settings' endpoint, parsed once (it changes only with the secret). */
function endpointOf(endpoint: string): URL | string {
  if (checkedEndpoint?.endpoint !== endpoint) checkedEndpoint = { endpoint, target: checkEndpoint(endpoint) };
  return checkedEndpoint.target;
}

/** The Authorization value for the configured mode, and the strings that must never leak. */
function authorize(
  settings: KooDriveSettings,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
): { authorization: string; secrets: string[] } {
  const { auth, protocol } = settings;
  if (auth.mode === 'token') {
    const authorization = `${protocol.tokenPrefix}${auth.accessToken}`;
    return { authorization, secrets: [auth.accessToken, authorization] };
  }
  // Extra signed headers are signed only when the request carries them (x-backup-lock-id is absent on create).
  const extras = protocol.extraSignedHeaders.map((h) => h.toLowerCase()).filter((h) => h in headers);
  const signed = signRequest(
    { method, path: LOCK_PATH, headers, signedHeaders: [...BASE_SIGNED_HEADERS, ...extras], body },
    { appId: auth.appId, appSecret: auth.appSecret, dateLineInStringToSign: protocol.dateLineInStringToSign },
  );
  return {
    authorization: signed.authorization,
    secrets: [auth.appSecret, signed.authorization, signed.signature],
  };
}

/** The failure for an "already released" answer where the lock's absence is not success (renew, create). */
function gone(sent: Sent, message: string): KooDriveFailure {
  const f = failure('permanent', message, sent);
  const code = readEnvelope(sent.answer?.body).code;
  if (code !== undefined) f.error.code = code;
  return f;
}

/** A failure about an answer the shared classification accepted. */
function failure(kind: ErrorKind, message: string, sent: Sent): KooDriveFailure {
  const f: KooDriveFailure = { ok: false, error: { kind, message } };
  if (sent.answer !== undefined) f.error.httpStatus = sent.answer.status;
  if (sent.credentialsVersion !== undefined) f.credentialsVersion = sent.credentialsVersion;
  return f;
}
