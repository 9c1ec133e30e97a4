/**
 * What a KooDrive answer means: the envelope and API-gateway bodies read, the answer classified into an outcome
 * (README, "Behaviour"; KooDrive's documented error codes), Retry-After read, messages made safe to report.
 */
import type { AttemptOutcome, ErrorKind, LockError } from '../core/model';
import type { ProtocolOptions } from './settings';

/** KooDrive's "internal invocation failure, retry" business code. */
export const RETRY_CODE = '13000201';
export const MAX_MESSAGE_LENGTH = 200;

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

/** The body's JSON value; undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The parts of a KooDrive envelope or API-gateway error body that classification looks at. */
export function readEnvelope(body: unknown): { code?: string; gatewayCode?: string; message?: string } {
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
export function normalizeCode(code: string | number): string {
  const text = String(code).trim();
  const n = Number(text);
  return text !== '' && Number.isFinite(n) ? String(n) : text;
}

/** A property of a JSON object; undefined for anything else (arrays, null, scalars). */
export function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)[name]
    : undefined;
}

/** Control characters out, at most 200 characters. */
export function clip(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return clean.length > MAX_MESSAGE_LENGTH ? `${clean.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : clean;
}

/** Replaces every occurrence of each secret with [redacted] (longest first, so no part of one survives). */
export function redactor(secrets: string[]): (text: string) => string {
  const nonEmpty = secrets.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  return (text) => nonEmpty.reduce((t, secret) => t.split(secret).join('[redacted]'), text);
}
