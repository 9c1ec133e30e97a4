/**
 * The KooDrive backup-lock client on undici: create (POST), renew (PATCH) and release (DELETE).
 *
 * Every call is one freshly signed attempt; retries belong to the caller (the release engine). The
 * methods never throw for HTTP or network problems: they answer with a classified failure
 * (README, "Behaviour"; KooDrive's documented error codes). Only a failing SettingsSource (configuration error) rejects.
 */
import { isIPv4 } from 'node:net';
import type { Dispatcher } from 'undici';
// The Agent alone, not the package root (src/koodrive/undici-lib.d.ts says why).
import Agent from 'undici/lib/dispatcher/agent.js';
import type { IncomingHttpHeaders } from 'undici/types/header';
import { idProblem } from '../core/model';
import type { AttemptOutcome, ErrorKind, LockError, LockRef } from '../core/model';
import type { KooDriveSettings, ProtocolOptions, SettingsSource } from './settings';
import { BASE_SIGNED_HEADERS, encodePath, formatXDate, signRequest } from './signer';

export const LOCK_PATH = '/koodrive/ose/v1/backup/lock';
const ENCODED_LOCK_PATH = encodePath(LOCK_PATH);
/** KooDrive's "internal invocation failure, retry" business code. */
export const RETRY_CODE = '13000201';
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
export const DEFAULT_X_DATE_BACKDATE_MS = 1000;
const MAX_MESSAGE_LENGTH = 200;

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
  /** Epoch ms; default Date.now. */
  now?: () => number;
  /** Larger response bodies are not read; the answer is classified by its HTTP status. Default 64 KiB. */
  maxResponseBytes?: number;
  /** X-Date is this much earlier than now, against clock skew (KooDrive refuses a future X-Date). Default 1000. */
  xDateBackdateMs?: number;
}

/** An HTTP answer as classifyAnswer() sees it. */
export interface KooDriveAnswer {
  status: number;
  /** The parsed JSON body; undefined when absent, unparseable or too large. */
  body?: unknown;
  /** From the Retry-After header, see parseRetryAfter(). */
  retryAfterMs?: number;
  /** Why the body is missing (e.g. too large), appended to messages that have nothing better. */
  bodyProblem?: string;
}

let sharedAgent: Agent | undefined;

/**
 * The process-wide undici Agent, created on first use: it keeps connections alive and holds one
 * pool per origin, so warm Lambda invocations reuse connections.
 */
export function defaultDispatcher(connections?: number): Dispatcher {
  return (sharedAgent ??= new Agent(connections ? { connections } : {}));
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
    this.now = options.now ?? Date.now;
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
          path: ENCODED_LOCK_PATH,
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

/**
 * Maps one HTTP answer to an outcome (README, "Behaviour"; KooDrive's documented error codes), in this order:
 * 2xx with code 0 → released; code in alreadyReleasedCodes (any status) → alreadyReleased;
 * code 13000201 (any status) → retryable; gateway APIGW.0308 → retryable, other APIGW.03xx → auth;
 * 401/403 → auth; 429 and 5xx → retryable; 3xx → permanent (redirects are not followed);
 * 2xx with another code or no code, and other 4xx → permanent.
 * `redact` scrubs secrets from KooDrive's message before it is clipped to 200 characters.
 */
export function classifyAnswer(
  answer: KooDriveAnswer,
  protocol: Pick<ProtocolOptions, 'alreadyReleasedCodes'>,
  redact: (text: string) => string = (text) => text,
): AttemptOutcome {
  const { status } = answer;
  const env = readEnvelope(answer.body);
  const is2xx = status >= 200 && status < 300;
  const fail = (kind: ErrorKind, fallback: string, preferFallback = false): AttemptOutcome => {
    const text = !preferFallback && env.message ? env.message : fallback;
    const error: LockError = { kind, message: clip(redact(text)), httpStatus: status };
    const code = env.code ?? env.gatewayCode;
    if (code !== undefined) error.code = code;
    return answer.retryAfterMs === undefined
      ? { ok: false, error }
      : { ok: false, error, retryAfterMs: answer.retryAfterMs };
  };
  const bodyNote = answer.bodyProblem ? `; ${answer.bodyProblem}` : '';

  if (env.code !== undefined) {
    if (is2xx && env.code === '0') return { ok: true, outcome: 'released' };
    if (protocol.alreadyReleasedCodes.some((c) => normalizeCode(c) === env.code)) {
      return { ok: true, outcome: 'alreadyReleased' };
    }
    if (env.code === RETRY_CODE) {
      return fail('retryable', `KooDrive internal invocation failure (${RETRY_CODE})`);
    }
  }
  if (env.gatewayCode?.startsWith('APIGW.03')) {
    return env.gatewayCode === 'APIGW.0308'
      ? fail('retryable', 'throttled by the API gateway')
      : fail('auth', `authentication failed (${env.gatewayCode})`);
  }
  if (status === 401 || status === 403) {
    return fail('auth', `authentication failed (HTTP ${status})${bodyNote}`);
  }
  if (status === 429) return fail('retryable', `too many requests (HTTP 429)${bodyNote}`);
  if (status >= 500) return fail('retryable', `server error (HTTP ${status})${bodyNote}`);
  if (status >= 300 && status < 400) return fail('permanent', `redirect (HTTP ${status}) not followed`, true);
  if (is2xx) {
    return env.code === undefined
      ? fail('permanent', `unexpected answer: HTTP ${status} without a KooDrive code${bodyNote}`, true)
      : fail('permanent', `KooDrive answered code ${env.code}`);
  }
  return fail('permanent', `HTTP ${status}${bodyNote}`);
}

/** Retry-After as milliseconds from `nowMs`: delay-seconds or an HTTP-date; undefined when absent or invalid. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP-date names its weekday and month; Date.parse alone would take "-5" for a year.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Loopback per the transport rule: 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}

let checkedEndpoint: { endpoint: string; target: URL | string } | undefined;

/** checkEndpoint() of the settings' endpoint, parsed once (it changes only with the secret). */
function endpointOf(endpoint: string): URL | string {
  if (checkedEndpoint?.endpoint !== endpoint) checkedEndpoint = { endpoint, target: checkEndpoint(endpoint) };
  return checkedEndpoint.target;
}

/** The endpoint as a URL, or why it is refused (https only, plain http to loopback). */
function checkEndpoint(endpoint: string): URL | string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return 'the KooDrive endpoint is not a valid URL';
  }
  if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) {
    return 'the KooDrive endpoint must be an origin (https://host[:port]) without path, query or credentials';
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return url;
  if (url.protocol === 'http:') {
    return `refusing plain http:// to the non-loopback host ${url.hostname}: the KooDrive endpoint must use https://`;
  }
  return `unsupported endpoint scheme ${url.protocol}: the KooDrive endpoint must use https://`;
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

/** An attempt took longer than the client's timeoutMs. */
class AttemptTimeoutError extends Error {}

interface Exchanged {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8; undefined when it was larger than the cap (the rest is not read: the socket closes). */
  text: string | undefined;
}

/**
 * One HTTP exchange through undici's dispatch(): the answer's status, headers and (capped) body, or a rejection
 * with undici's error or AttemptTimeoutError after `timeoutMs` (connect, request and whole answer). A handler of
 * its own instead of request(): no stream, AbortSignal or async resource per request, which were most of the
 * client's CPU time per lock (`npm run bench`, item 2).
 */
function exchange(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  timeoutMs: number,
  maxBytes: number,
): Promise<Exchanged> {
  return new Promise((resolve, reject) => {
    const handler = new ExchangeHandler(resolve, reject, timeoutMs, maxBytes);
    try {
      dispatcher.dispatch(options, handler);
    } catch (error) {
      handler.settle(error);
    }
  });
}

/** The undici handler of one exchange (a class: no closures to allocate per request). */
class ExchangeHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private settled = false;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private chunks: Buffer[] | undefined = [];
  private size = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly resolve: (value: Exchanged) => void,
    private readonly reject: (error: Error) => void,
    private readonly timeoutMs: number,
    private readonly maxBytes: number,
  ) {
    this.timer = setTimeout(ExchangeHandler.onTimeout, timeoutMs, this);
  }

  private static onTimeout(this: void, self: ExchangeHandler): void {
    const error = new AttemptTimeoutError(`timed out after ${self.timeoutMs} ms`);
    self.controller?.abort(error);
    self.settle(error);
  }

  settle(error: unknown, value?: Exchanged): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    if (value) this.resolve(value);
    else this.reject(error instanceof Error ? error : new Error(String(error)));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Still queued when the attempt timed out: it must not go out any more.
    if (this.settled) controller.abort(new AttemptTimeoutError(`timed out after ${this.timeoutMs} ms`));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    this.status = statusCode;
    this.headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.chunks) return;
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      // Not read further: aborting closes the connection instead of reusing it.
      this.chunks = undefined;
      this.settle(undefined, { status: this.status, headers: this.headers, text: undefined });
      controller.abort(new Error('response body too large'));
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    const text = this.chunks && Buffer.concat(this.chunks, this.size).toString('utf8');
    this.settle(undefined, { status: this.status, headers: this.headers, text });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.settle(error);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The parts of a KooDrive envelope or API-gateway error body that classification looks at. */
function readEnvelope(body: unknown): { code?: string; gatewayCode?: string; message?: string } {
  const rawCode = field(body, 'code');
  const gatewayCode = field(body, 'error_code');
  const message = field(body, 'msg') ?? field(body, 'error_msg');
  return {
    code: typeof rawCode === 'number' || typeof rawCode === 'string' ? normalizeCode(rawCode) : undefined,
    gatewayCode: typeof gatewayCode === 'string' ? gatewayCode : undefined,
    message: typeof message === 'string' ? message : undefined,
  };
}

/** A KooDrive code as the string of its number (0, "0" and " 0" all give "0"); other strings as they are. */
function normalizeCode(code: string | number): string {
  const text = String(code).trim();
  const n = Number(text);
  return text !== '' && Number.isFinite(n) ? String(n) : text;
}

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)[name]
    : undefined;
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

/** Replaces every occurrence of each secret with [redacted]. */
function redactor(secrets: string[]): (text: string) => string {
  const nonEmpty = secrets.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  return (text) => nonEmpty.reduce((t, secret) => t.split(secret).join('[redacted]'), text);
}

/** Control characters out, at most 200 characters. */
function clip(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return clean.length > MAX_MESSAGE_LENGTH ? `${clean.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : clean;
}

function errorCode(err: unknown): string | undefined {
  const code = field(err, 'code');
  if (typeof code === 'string') return code;
  // Happy-eyeballs connection attempts may fail with an AggregateError of per-address errors.
  const first: unknown = err instanceof AggregateError ? err.errors[0] : undefined;
  const inner = field(first, 'code');
  return typeof inner === 'string' ? inner : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
