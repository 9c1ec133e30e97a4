/**
 * KooDrive backup-lock emulator for development and tests (never bundled into the Lambda).
 * Written from the public KooDrive API documentation alone, never from src/, so it cross-checks the production
 * signer independently.
 *
 * What it verifies, in this order (after the fault rules, which come first):
 * - the route: POST, PATCH or DELETE on exactly `/koodrive/ose/v1/backup/lock`; anything else → 404 APIGW.0101;
 * - `X-User-Id` present and non-empty, else 400 code 13000102;
 * - `X-Date` (both auth modes): exactly `yyyyMMddTHHmmssZ`, a real calendar date, NOT later than `now()`
 *   (strict, no tolerance: the docs say so, and a client must back-date against skew), and at most
 *   `xDateWindowMs` older than `now()`;
 * - app auth (§3): `Authorization: HMAC-SHA256 AppId=…,SignedHeaders=…,Signature=…` in exactly this order and
 *   form (no spaces), a known AppId, SignedHeaders lower-case, sorted, unique, containing every
 *   `requiredSignedHeaders` entry and present in the request; the signature is recomputed from what the server
 *   received (method, raw path → canonical URI, raw query, the received header values — so the signed `host`
 *   is the `Host` received — and SHA-256 of the received body bytes) and compared in constant time;
 * - token auth (§4): `Authorization: <tokenPrefix><token>` with a known token;
 * - `x-backup-lock-id` present on PATCH and DELETE, `moduleCode` a JSON string "100", "101" or "102" (else 13000102).
 * Any auth failure → 401 `{"error_code":"APIGW.0301","error_msg":"Incorrect app authentication information: …"}`
 * (the reason never contains a secret, a token or the expected signature).
 *
 * What it simplifies or decides where the docs are silent:
 * - plain HTTP on 127.0.0.1, no TLS, no rate limit (inject `throttle` faults instead);
 * - lock IDs are `<uuid>@<moduleCode>`; business codes are JSON numbers; errors use HTTP 400;
 * - create while the user holds an unexpired, unreleased lock for that module → 400 code 13000310
 *   (`LOCK_HELD_CODE`, invented: the docs document no lock-specific code);
 * - renew sets `expiresAt = now + lockTtlMs`, also for an expired but unreleased lock (counted from now, not from
 *   the old expiry); it answers `LOCK_HELD_CODE` if the user took another lock for that module meanwhile;
 * - release of an expired lock, of a released or unknown lock, or of another user's lock → 400 `notFoundCode`
 *   (a lock of another user is reported as absent, never as "forbidden");
 * - faults are evaluated after the body is read and before routing and auth: the first rule (in insertion order)
 *   that matches and has `times` left wins, else the fault policy; the global latency is added to every request;
 * - a `latency` fault delays, then handles the request normally: the request TAKES EFFECT even if the client
 *   gave up meanwhile (an answer lost in transit); `drop` destroys the socket and changes nothing;
 * - `requests[].status` is 0 for a dropped request; `authOk` is true only when authentication ran and passed.
 */
import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';

import { setTimeout as sleep } from 'node:timers/promises';
import { closerOf, listenOnLoopback, readBody } from './loopback';

export const LOCK_PATH = '/koodrive/ose/v1/backup/lock';
export const MODULE_CODES: readonly string[] = ['100', '101', '102'];
export const PARAM_CHECK_FAILED_CODE = 13000102;
export const INTERNAL_FAILURE_CODE = 13000201;
export const DEFAULT_NOT_FOUND_CODE = 13000309;
/** Invented by the emulator: create (or renew) while the user already holds a lock for the module. */
export const LOCK_HELD_CODE = 13000310;

const JSON_TYPE = 'application/json;charset=UTF-8';

// ---------------------------------------------------------------------------------------------------------
// Signature verification: pure functions, testable without HTTP.

/** A request as the server received it. Header names are lower case; values as received. */
export interface SignableRequest {
  method: string;
  /** Raw path, without the query (e.g. "/koodrive/ose/v1/backup/lock"). */
  path: string;
  /** Raw query string without "?" ("" or undefined when none). */
  query?: string;
  headers: Readonly<Record<string, string | undefined>>;
  /** Exact body bytes (a string is taken as UTF-8); none means empty. */
  body?: Uint8Array | string;
}

const sha256Hex = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

/** RFC 3986 encoding: unreserved characters A–Z a–z 0–9 - _ . ~ stay, everything else %XY upper case. */
function encodeRfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function decodeLenient(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Path segments decoded then RFC 3986-encoded, with a "/" appended when the path does not end in one. */
export function canonicalUri(path: string): string {
  const encoded = path
    .split('/')
    .map((segment) => encodeRfc3986(decodeLenient(segment)))
    .join('/');
  return encoded.endsWith('/') ? encoded : `${encoded}/`;
}

/** `enc(name)=enc(value)` pairs sorted by name (then value), joined by "&"; "" for no query. */
export function canonicalQuery(query: string | undefined): string {
  if (!query) return '';
  const pairs = query
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? '' : part.slice(eq + 1);
      return [encodeRfc3986(decodeLenient(name)), encodeRfc3986(decodeLenient(value))] as const;
    });
  pairs.sort(([n1, v1], [n2, v2]) => (n1 === n2 ? compare(v1, v2) : compare(n1, n2)));
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The six-line CanonicalRequest of the documented KooDrive signing algorithm; `signedHeaders` lower case and sorted. */
export function canonicalRequest(req: SignableRequest, signedHeaders: readonly string[]): string {
  const canonicalHeaders = signedHeaders
    .map((name) => `${name}:${(req.headers[name] ?? '').trim()}\n`)
    .join('');
  return [
    req.method.toUpperCase(),
    canonicalUri(req.path),
    canonicalQuery(req.query),
    canonicalHeaders,
    signedHeaders.join(';'),
    sha256Hex(req.body ?? ''),
  ].join('\n');
}

/** `HMAC-SHA256\n<hex sha256 of the canonical request>`, with the X-Date as a middle line when given. */
export function stringToSign(canonical: string, xDateLine?: string): string {
  const lines = xDateLine === undefined ? ['HMAC-SHA256'] : ['HMAC-SHA256', xDateLine];
  return [...lines, sha256Hex(canonical)].join('\n');
}

export interface SignatureOptions {
  /** Put the request's X-Date as a second line of the StringToSign (a point the public docs leave open). Default false. */
  dateLineInStringToSign?: boolean;
}

/** Lower-case hex HMAC-SHA256 of the StringToSign keyed with the AppSecret's UTF-8 bytes. */
export function expectedSignature(
  appSecret: string,
  req: SignableRequest,
  signedHeaders: readonly string[],
  options: SignatureOptions = {},
): string {
  const dateLine = options.dateLineInStringToSign ? (req.headers['x-date'] ?? '') : undefined;
  const toSign = stringToSign(canonicalRequest(req, signedHeaders), dateLine);
  return createHmac('sha256', Buffer.from(appSecret, 'utf8')).update(toSign, 'utf8').digest('hex');
}

export interface VerifyOptions extends SignatureOptions {
  /** AppId → AppSecret (own properties only: "constructor" is not an app). */
  apps: Readonly<Record<string, string>>;
  /** Headers SignedHeaders must include. Default host, x-date, x-user-id. */
  requiredSignedHeaders?: readonly string[];
}

export type VerifyResult = { ok: true; appId: string } | { ok: false; reason: string };

const APP_AUTH = /^HMAC-SHA256 AppId=([^,\s]+),SignedHeaders=([^,\s]+),Signature=([^,\s]+)$/;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const SIGNATURE = /^[0-9a-f]{64}$/;
export const DEFAULT_SIGNED_HEADERS: readonly string[] = ['host', 'x-date', 'x-user-id'];

/** Checks an app-signature Authorization header against the received request (X-Date is checked apart). */
export function verifyAppSignature(
  authorization: string,
  req: SignableRequest,
  options: VerifyOptions,
): VerifyResult {
  const match = APP_AUTH.exec(authorization);
  if (!match) return { ok: false, reason: 'malformed Authorization header' };
  const [, appId = '', signedRaw = '', signature = ''] = match;
  const secret = Object.hasOwn(options.apps, appId) ? options.apps[appId] : undefined;
  if (secret === undefined) return { ok: false, reason: 'unknown AppId' };
  const signed = signedRaw.split(';');
  const normalised = [...new Set(signed)].sort(compare);
  if (!signed.every((name) => HEADER_NAME.test(name)) || normalised.join(';') !== signedRaw) {
    return { ok: false, reason: 'SignedHeaders must be lower-case header names, sorted and unique' };
  }
  for (const name of options.requiredSignedHeaders ?? DEFAULT_SIGNED_HEADERS) {
    if (!signed.includes(name)) return { ok: false, reason: `SignedHeaders lacks ${name}` };
  }
  for (const name of signed) {
    if (req.headers[name] === undefined) return { ok: false, reason: `signed header ${name} is missing` };
  }
  if (!SIGNATURE.test(signature)) return { ok: false, reason: 'Signature is not 64 lower-case hex digits' };
  const expected = Buffer.from(expectedSignature(secret, req, signed, options), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    return { ok: false, reason: 'signature mismatch' };
  }
  return { ok: true, appId };
}

const X_DATE = /^\d{8}T\d{6}Z$/;

/** Epoch ms of a `yyyyMMddTHHmmssZ` value, or undefined when malformed or not a real date. */
export function parseXDate(value: string): number | undefined {
  if (!X_DATE.test(value)) return undefined;
  const iso = `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}T${value.slice(9, 11)}:${value.slice(11, 13)}:${value.slice(13, 15)}Z`;
  const ms = Date.parse(iso);
  // Date.parse rolls over impossible dates (Feb 30) in some engines: insist on a round trip.
  if (Number.isNaN(ms) || new Date(ms).toISOString() !== iso.replace('Z', '.000Z')) return undefined;
  return ms;
}

/** The reason an X-Date is refused, or undefined when it is acceptable at `nowMs`. */
export function checkXDate(value: string | undefined, nowMs: number, windowMs: number): string | undefined {
  if (value === undefined) return 'X-Date is missing';
  const at = parseXDate(value);
  if (at === undefined) return 'X-Date is not a valid yyyyMMddTHHmmssZ date';
  if (at > nowMs) return 'X-Date is later than now';
  if (nowMs - at > windowMs) return 'X-Date is outside the allowed time window';
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// The HTTP emulator.

export interface EmulatorOptions {
  /** AppId → AppSecret. Default none. */
  apps?: Record<string, string>;
  /** Valid access tokens for token mode. Default none. */
  tokens?: string[];
  /** The emulator's clock (epoch ms). Default Date.now. */
  now?: () => number;
  /** Lock lifetime after create or renew. Default 600_000 (10 minutes). */
  lockTtlMs?: number;
  /** How old an X-Date may be. Default 900_000 (15 minutes). */
  xDateWindowMs?: number;
  /** `code` answered for a lock that does not exist (or no longer). Default 13000309. */
  notFoundCode?: number;
  /** Expect the X-Date as a second line of the StringToSign. Default false. */
  dateLineInStringToSign?: boolean;
  /** Headers SignedHeaders must include, lower case. Default host, x-date, x-user-id. */
  requiredSignedHeaders?: string[];
  /** What precedes the token in token mode. Default "Bearer ". */
  tokenPrefix?: string;
  /** The port on 127.0.0.1. Default 0: one the system picks. */
  port?: number;
}

export interface LockRecord {
  lockId: string;
  userId: string;
  moduleCode: string;
  createdAt: number;
  expiresAt: number;
  releasedAt?: number;
}

export interface FaultRequest {
  method: string;
  lockId?: string;
  userId?: string;
}

export type Fault =
  | { type: 'status'; status: number; body?: unknown; retryAfter?: string }
  | { type: 'throttle'; retryAfterSeconds: number }
  | { type: 'latency'; ms: number }
  | { type: 'drop' }
  | { type: 'internal' };

export interface FaultRule {
  match?: (req: FaultRequest) => boolean;
  /** How many requests this rule applies to. Default Infinity. */
  times?: number;
  action: Fault;
}

export type FaultPolicy = (req: FaultRequest) => Fault | undefined;

export interface RecordedRequest {
  method: string;
  lockId?: string;
  userId?: string;
  /** HTTP status answered; 0 when the connection was dropped. */
  status: number;
  /** `now()` when the request arrived. */
  at: number;
  /** Type of the fault applied, if any. */
  fault?: Fault['type'];
  /** Authentication ran and passed. */
  authOk: boolean;
}

export interface KooDriveEmulator {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Every request handled, in order of completion (live array, emptied by reset()). */
  readonly requests: readonly RecordedRequest[];
  /** TCP connections accepted since start (or reset()). */
  readonly connectionsOpened: number;
  fault(rule: FaultRule): void;
  setFaultPolicy(policy: FaultPolicy | undefined): void;
  clearFaults(): void;
  /** Delay added to every request (ms, timer-based). */
  setLatency(ms: number): void;
  /** Creates a lock directly (no HTTP); returns its ID. */
  seedLock(userId: string, moduleCode?: string, opts?: { expiresAt?: number; lockId?: string }): string;
  /** A copy of the lock's record. */
  lock(lockId: string): LockRecord | undefined;
  locks(): LockRecord[];
  /** Exists, not released, not expired. */
  isHeld(lockId: string): boolean;
  /** Replaces the AppId → AppSecret table (credential rotation). */
  setApps(apps: Record<string, string>): void;
  /** Back to the state right after start: no locks, requests, faults or latency; counters 0; initial apps. */
  reset(): void;
  /** Stops listening and destroys every connection, idle keep-alive ones and pending delays included. */
  close(): Promise<void>;
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  authOk?: boolean;
  fault?: Fault['type'];
}

function assertNonNegative(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be a finite number >= 0`);
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  if (Array.isArray(value)) return value.join(', ');
  return value === '' ? undefined : value;
}

function receivedHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

const business = (status: number, code: number, msg: string): Reply => ({ status, body: { code, msg } });
const gateway = (status: number, errorCode: string, errorMsg: string): Reply => ({
  status,
  body: { error_code: errorCode, error_msg: errorMsg, request_id: randomUUID() },
});

export async function startKooDriveEmulator(options: EmulatorOptions = {}): Promise<KooDriveEmulator> {
  const now = options.now ?? Date.now;
  const lockTtlMs = options.lockTtlMs ?? 600_000;
  const xDateWindowMs = options.xDateWindowMs ?? 15 * 60_000;
  const notFoundCode = options.notFoundCode ?? DEFAULT_NOT_FOUND_CODE;
  const tokenPrefix = options.tokenPrefix ?? 'Bearer ';
  const tokens = [...(options.tokens ?? [])];
  const verifyOptions = {
    dateLineInStringToSign: options.dateLineInStringToSign ?? false,
    requiredSignedHeaders: (options.requiredSignedHeaders ?? DEFAULT_SIGNED_HEADERS).map((h) =>
      h.toLowerCase(),
    ),
  };
  assertNonNegative('lockTtlMs', lockTtlMs);
  assertNonNegative('xDateWindowMs', xDateWindowMs);

  let apps = { ...options.apps };
  const locks = new Map<string, LockRecord>();
  const requests: RecordedRequest[] = [];
  let rules: { rule: FaultRule; left: number }[] = [];
  let policy: FaultPolicy | undefined;
  let latencyMs = 0;
  let connectionsOpened = 0;
  const closing = new AbortController();

  const notFound = (): Reply => business(400, notFoundCode, 'resource does not exist');
  const paramError = (detail: string): Reply =>
    business(400, PARAM_CHECK_FAILED_CODE, `parameter check failed: ${detail}`);
  const isLive = (lock: LockRecord, at: number): boolean =>
    lock.releasedAt === undefined && at < lock.expiresAt;
  function heldFor(userId: string, moduleCode: string, at: number): LockRecord | undefined {
    for (const lock of locks.values()) {
      if (lock.userId === userId && lock.moduleCode === moduleCode && isLive(lock, at)) return lock;
    }
    return undefined;
  }

  function pickFault(req: FaultRequest): Fault | undefined {
    for (const entry of rules) {
      if (entry.left > 0 && (entry.rule.match?.(req) ?? true)) {
        entry.left -= 1;
        return entry.rule.action;
      }
    }
    return policy?.(req);
  }

  function faultReply(fault: Exclude<Fault, { type: 'latency' } | { type: 'drop' }>): Reply {
    switch (fault.type) {
      case 'status': {
        const reply =
          fault.body === undefined
            ? gateway(fault.status, 'EMULATOR.FAULT', `injected HTTP ${fault.status}`)
            : { status: fault.status, body: fault.body };
        return fault.retryAfter === undefined
          ? reply
          : { ...reply, headers: { 'retry-after': fault.retryAfter } };
      }
      case 'throttle':
        return {
          ...gateway(429, 'APIGW.0308', 'The throttling threshold has been reached'),
          headers: { 'retry-after': String(fault.retryAfterSeconds) },
        };
      case 'internal':
        return business(400, INTERNAL_FAILURE_CODE, 'internal invocation failure');
    }
  }

  function authenticate(req: IncomingMessage, body: Buffer): string | undefined {
    const authorization = headerValue(req, 'authorization');
    if (authorization === undefined) return 'missing Authorization header';
    const dateProblem = checkXDate(headerValue(req, 'x-date'), now(), xDateWindowMs);
    if (dateProblem !== undefined) return dateProblem;
    if (authorization.startsWith('HMAC-SHA256 ')) {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const signable: SignableRequest = {
        method: req.method ?? '',
        path: q < 0 ? url : url.slice(0, q),
        query: q < 0 ? '' : url.slice(q + 1),
        headers: receivedHeaders(req),
        body,
      };
      const result = verifyAppSignature(authorization, signable, { ...verifyOptions, apps });
      return result.ok ? undefined : result.reason;
    }
    if (authorization.startsWith(tokenPrefix)) {
      const token = authorization.slice(tokenPrefix.length);
      return tokens.some((known) => safeEqual(known, token)) ? undefined : 'unknown or expired access token';
    }
    return 'unsupported Authorization scheme';
  }

  function createLock(userId: string, body: Buffer): Reply {
    let moduleCode: unknown;
    try {
      moduleCode = (JSON.parse(body.toString('utf8')) as { moduleCode?: unknown } | null)?.moduleCode;
    } catch {
      return paramError('body is not JSON');
    }
    if (typeof moduleCode !== 'string' || !MODULE_CODES.includes(moduleCode)) {
      return paramError('moduleCode must be "100", "101" or "102"');
    }
    const at = now();
    if (heldFor(userId, moduleCode, at)) return business(400, LOCK_HELD_CODE, 'backup lock is held');
    const lockId = `${randomUUID()}@${moduleCode}`;
    locks.set(lockId, { lockId, userId, moduleCode, createdAt: at, expiresAt: at + lockTtlMs });
    return { status: 200, body: { code: 0, msg: 'success', data: { lockId } } };
  }

  function renewLock(userId: string, lockId: string): Reply {
    const lock = locks.get(lockId);
    if (!lock || lock.userId !== userId || lock.releasedAt !== undefined) return notFound();
    const at = now();
    const other = heldFor(userId, lock.moduleCode, at);
    if (other && other !== lock) return business(400, LOCK_HELD_CODE, 'backup lock is held');
    lock.expiresAt = at + lockTtlMs;
    return business(200, 0, 'success');
  }

  function releaseLock(userId: string, lockId: string): Reply {
    const lock = locks.get(lockId);
    const at = now();
    if (!lock || lock.userId !== userId || !isLive(lock, at)) return notFound();
    lock.releasedAt = at;
    return business(200, 0, 'success');
  }

  function route(
    req: IncomingMessage,
    body: Buffer,
    userId: string | undefined,
    lockId: string | undefined,
  ): Reply {
    const method = req.method ?? '';
    if (req.url !== LOCK_PATH || !['POST', 'PATCH', 'DELETE'].includes(method)) {
      return gateway(
        404,
        'APIGW.0101',
        'The API does not exist or has not been published in the environment',
      );
    }
    if (userId === undefined) return paramError('X-User-Id is required');
    const authProblem = authenticate(req, body);
    if (authProblem !== undefined) {
      return gateway(401, 'APIGW.0301', `Incorrect app authentication information: ${authProblem}`);
    }
    const reply = (r: Reply): Reply => ({ ...r, authOk: true });
    if (method === 'POST') return reply(createLock(userId, body));
    if (lockId === undefined) return reply(paramError('x-backup-lock-id is required'));
    return reply(method === 'PATCH' ? renewLock(userId, lockId) : releaseLock(userId, lockId));
  }

  function send(res: ServerResponse, reply: Reply): void {
    const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    res.writeHead(reply.status, {
      'content-type': typeof reply.body === 'string' ? 'text/plain;charset=UTF-8' : JSON_TYPE,
      'content-length': Buffer.byteLength(text),
      ...reply.headers,
    });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = now();
    const method = req.method ?? '';
    const lockId = headerValue(req, 'x-backup-lock-id');
    const userId = headerValue(req, 'x-user-id');
    const record = (status: number, reply?: Pick<Reply, 'authOk' | 'fault'>): void => {
      requests.push({
        method,
        lockId,
        userId,
        status,
        at,
        fault: reply?.fault,
        authOk: reply?.authOk ?? false,
      });
    };
    const body = await readBody(req);
    if (body === undefined) {
      const reply = business(413, PARAM_CHECK_FAILED_CODE, 'request body too large');
      record(reply.status);
      res.shouldKeepAlive = false;
      return send(res, reply);
    }
    const fault = pickFault({ method, lockId, userId });
    const delayMs = latencyMs + (fault?.type === 'latency' ? fault.ms : 0);
    if (delayMs > 0) {
      try {
        await sleep(delayMs, undefined, { signal: closing.signal });
      } catch {
        req.socket.destroy(); // closing
        return;
      }
    }
    if (fault?.type === 'drop') {
      record(0, { fault: 'drop' });
      req.socket.destroy();
      return;
    }
    const reply =
      fault === undefined || fault.type === 'latency'
        ? { ...route(req, body, userId, lockId), fault: fault?.type }
        : { ...faultReply(fault), fault: fault.type };
    record(reply.status, reply);
    send(res, reply);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (res.headersSent || res.destroyed) res.destroy();
      else send(res, business(500, INTERNAL_FAILURE_CODE, 'emulator error'));
    });
  });
  server.on('connection', () => {
    connectionsOpened += 1;
  });
  const url = await listenOnLoopback(server, options.port);

  return {
    url,
    requests,
    get connectionsOpened() {
      return connectionsOpened;
    },
    fault(rule) {
      const times = rule.times ?? Infinity;
      if (!(times > 0) || (Number.isFinite(times) && !Number.isInteger(times))) {
        throw new RangeError('fault times must be a positive integer or Infinity');
      }
      rules.push({ rule, left: times });
    },
    setFaultPolicy(fn) {
      policy = fn;
    },
    clearFaults() {
      rules = [];
      policy = undefined;
    },
    setLatency(ms) {
      assertNonNegative('latency', ms);
      latencyMs = ms;
    },
    seedLock(userId, moduleCode = '102', opts = {}) {
      const at = now();
      const lockId = opts.lockId ?? `${randomUUID()}@${moduleCode}`;
      if (locks.has(lockId)) throw new Error(`lock ${lockId} already exists`);
      locks.set(lockId, {
        lockId,
        userId,
        moduleCode,
        createdAt: at,
        expiresAt: opts.expiresAt ?? at + lockTtlMs,
      });
      return lockId;
    },
    lock(lockId) {
      const lock = locks.get(lockId);
      return lock && { ...lock };
    },
    locks() {
      return [...locks.values()].map((lock) => ({ ...lock }));
    },
    isHeld(lockId) {
      const lock = locks.get(lockId);
      return lock !== undefined && isLive(lock, now());
    },
    setApps(next) {
      apps = { ...next };
    },
    reset() {
      locks.clear();
      requests.length = 0;
      rules = [];
      policy = undefined;
      latencyMs = 0;
      connectionsOpened = 0;
      apps = { ...options.apps };
    },
    close: closerOf(server, () => closing.abort()),
  };
}
