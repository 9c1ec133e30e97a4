/** How a KooDrive answer reads: the exact outcome, code, message and Retry-After of each kind of answer. */
import { describe, expect, it } from 'vitest';
import {
  classifyAnswer,
  clip,
  field,
  normalizeCode,
  parseJson,
  parseRetryAfter,
  readEnvelope,
  redactor,
  RETRY_CODE,
} from '../../src/koodrive/answers';

const protocol = { alreadyReleasedCodes: ['13000309'] };

describe('classifyAnswer: the whole outcome', () => {
  it.each([
    [
      { status: 200, body: { code: 0 } },
      { ok: true, outcome: 'released' },
    ],
    [
      { status: 299, body: { code: '0' } },
      { ok: true, outcome: 'released' },
    ],
    [
      { status: 400, body: { code: '13000309' } },
      { ok: true, outcome: 'alreadyReleased' },
    ],
    [
      { status: 300, body: { code: 0 } },
      {
        ok: false,
        error: { kind: 'permanent', httpStatus: 300, code: '0', message: 'redirect (HTTP 300) not followed' },
      },
    ],
    [
      { status: 199, body: { code: 0, msg: 'odd' } },
      { ok: false, error: { kind: 'permanent', httpStatus: 199, code: '0', message: 'odd' } },
    ],
    [
      { status: 400, body: { code: 13000201 } },
      {
        ok: false,
        error: {
          kind: 'retryable',
          httpStatus: 400,
          code: RETRY_CODE,
          message: 'KooDrive internal invocation failure (13000201)',
        },
      },
    ],
    [
      { status: 429, body: { error_code: 'APIGW.0308' } },
      {
        ok: false,
        error: {
          kind: 'retryable',
          httpStatus: 429,
          code: 'APIGW.0308',
          message: 'throttled by the API gateway',
        },
      },
    ],
    [
      { status: 401, body: { error_code: 'APIGW.0301' } },
      {
        ok: false,
        error: {
          kind: 'auth',
          httpStatus: 401,
          code: 'APIGW.0301',
          message: 'authentication failed (APIGW.0301)',
        },
      },
    ],
    [
      { status: 400, body: { error_code: 'APIGW.0401' } },
      { ok: false, error: { kind: 'permanent', httpStatus: 400, code: 'APIGW.0401', message: 'HTTP 400' } },
    ],
    [
      { status: 403, bodyProblem: 'response body over 10 bytes' },
      {
        ok: false,
        error: {
          kind: 'auth',
          httpStatus: 403,
          message: 'authentication failed (HTTP 403); response body over 10 bytes',
        },
      },
    ],
    [
      { status: 401 },
      { ok: false, error: { kind: 'auth', httpStatus: 401, message: 'authentication failed (HTTP 401)' } },
    ],
    [{ status: 402 }, { ok: false, error: { kind: 'permanent', httpStatus: 402, message: 'HTTP 402' } }],
    [
      { status: 429, retryAfterMs: 0 },
      {
        ok: false,
        error: { kind: 'retryable', httpStatus: 429, message: 'too many requests (HTTP 429)' },
        retryAfterMs: 0,
      },
    ],
    [
      { status: 500, bodyProblem: 'b' },
      { ok: false, error: { kind: 'retryable', httpStatus: 500, message: 'server error (HTTP 500); b' } },
    ],
    [{ status: 499 }, { ok: false, error: { kind: 'permanent', httpStatus: 499, message: 'HTTP 499' } }],
    [
      { status: 399, body: { msg: 'moved' } },
      {
        ok: false,
        error: { kind: 'permanent', httpStatus: 399, message: 'redirect (HTTP 399) not followed' },
      },
    ],
    [
      { status: 200, body: { msg: 'no code' }, bodyProblem: 'x' },
      {
        ok: false,
        error: {
          kind: 'permanent',
          httpStatus: 200,
          message: 'unexpected answer: HTTP 200 without a KooDrive code; x',
        },
      },
    ],
    [
      { status: 200, body: { code: 7 } },
      {
        ok: false,
        error: { kind: 'permanent', httpStatus: 200, code: '7', message: 'KooDrive answered code 7' },
      },
    ],
    [
      { status: 404, bodyProblem: 'too big' },
      { ok: false, error: { kind: 'permanent', httpStatus: 404, message: 'HTTP 404; too big' } },
    ],
  ] as const)('%j → %j', (answer, expected) => {
    // Strict: a key present with the value undefined is a difference too.
    expect(classifyAnswer(answer, protocol)).toStrictEqual(expected);
  });

  it('prefers KooDrive message, then the gateway message, over its own words', () => {
    const message = (body: unknown) => {
      const outcome = classifyAnswer({ status: 400, body }, protocol);
      return outcome.ok ? undefined : outcome.error.message;
    };
    expect(message({ code: 1, msg: 'from msg', error_msg: 'from error_msg' })).toBe('from msg');
    expect(message({ error_code: 'APIGW.0101', error_msg: 'from error_msg' })).toBe('from error_msg');
    expect(message({ code: 1, msg: 5, error_msg: 'ignored: msg is present' })).toBe('HTTP 400');
    expect(message({ code: 1, msg: '' })).toBe('HTTP 400');
  });

  it('matches the configured already-released codes as numbers ("13000404" = 13000404 = " 13000404")', () => {
    const codes = { alreadyReleasedCodes: [' 13000404', '13000405'] };
    for (const code of [13000404, '13000404', '013000404', 13000405]) {
      expect(classifyAnswer({ status: 400, body: { code } }, codes)).toEqual({
        ok: true,
        outcome: 'alreadyReleased',
      });
    }
    expect(classifyAnswer({ status: 400, body: { code: 13000309 } }, codes).ok).toBe(false);
  });

  it('redacts before clipping, and clips to 200 characters', () => {
    const outcome = classifyAnswer(
      { status: 400, body: { code: 1, msg: `key=SECRET ${'z'.repeat(300)}` } },
      protocol,
      (text) => text.split('SECRET').join('[redacted]'),
    );
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.error.message).toBe(`key=[redacted] ${'z'.repeat(184)}…`);
    expect(outcome.error.message).toHaveLength(200);
  });
});

describe('clip', () => {
  it('keeps 200 characters as they are, cuts 201 to 199 and an ellipsis', () => {
    expect(clip('a'.repeat(200))).toBe('a'.repeat(200));
    expect(clip('a'.repeat(201))).toBe(`${'a'.repeat(199)}…`);
  });

  it('turns each run of control characters into one space and trims', () => {
    expect(clip('\r\n a\r\n\t\x00b\x7f \n')).toBe('a b');
    expect(clip('a\x1fb')).toBe('a b');
    expect(clip('a b~c')).toBe('a b~c');
  });
});

describe('redactor', () => {
  it('replaces every occurrence of each secret, the longest first', () => {
    const redact = redactor(['abc', 'abcdef', '']);
    expect(redact('x abcdef y abc abcdef')).toBe('x [redacted] y [redacted] [redacted]');
    expect(redactor(['abc', 'abcdef'])('abcdef')).toBe('[redacted]');
    expect(redactor(['abcdef', 'abc'])('abcdef')).toBe('[redacted]');
  });

  it('ignores empty secrets and changes nothing without a match', () => {
    expect(redactor([''])('text')).toBe('text');
    expect(redactor([])('text')).toBe('text');
  });
});

describe('the envelope', () => {
  it('reads code, gateway code and message; anything else counts as absent', () => {
    expect(readEnvelope({ code: ' 0 ', msg: 'ok' })).toEqual({ code: '0', message: 'ok' });
    expect(readEnvelope({ error_code: 'APIGW.0308', error_msg: 'slow down' })).toEqual({
      gatewayCode: 'APIGW.0308',
      message: 'slow down',
    });
    expect(readEnvelope({ code: true, error_code: 5, msg: ['x'] })).toEqual({});
    expect(readEnvelope([{ code: 0 }])).toEqual({});
    expect(readEnvelope(null)).toEqual({});
    expect(readEnvelope('{"code":0}')).toEqual({});
  });

  it('normalises codes as numbers when they are numbers, else as trimmed text', () => {
    expect(normalizeCode(0)).toBe('0');
    expect(normalizeCode(' 0 ')).toBe('0');
    expect(normalizeCode('007')).toBe('7');
    expect(normalizeCode('APIGW.0301 ')).toBe('APIGW.0301');
    expect(normalizeCode('Infinity')).toBe('Infinity');
    expect(normalizeCode(' ')).toBe('');
  });

  it('field() reads own fields of plain objects only', () => {
    expect(field({ a: 1 }, 'a')).toBe(1);
    expect(field([1], '0')).toBeUndefined();
    expect(field(undefined, 'a')).toBeUndefined();
    expect(field('abc', 'length')).toBeUndefined();
  });

  it('parseJson answers undefined for text that is not JSON', () => {
    expect(parseJson('{"code":0}')).toEqual({ code: 0 });
    expect(parseJson('{"code":')).toBeUndefined();
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2025, 10, 3, 7, 1, 40);

  it('reads whole delay-seconds only, trimmed', () => {
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 7 ', now)).toBe(7000);
    for (const text of ['1.5', '12abc', 'abc12', '0x10', '-5', '+5'])
      expect(parseRetryAfter(text, now), text).toBeUndefined();
  });

  it('reads an HTTP-date as the time from now, never negative', () => {
    expect(parseRetryAfter('Mon, 03 Nov 2025 07:01:50 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Mon, 03 Nov 2025 07:01:40 GMT', now)).toBe(0);
    expect(parseRetryAfter('Mon, 03 Nov 2025 07:01:39 GMT', now)).toBe(0);
    expect(parseRetryAfter('Mon, 32 Nov 2025 07:01:50 GMT', now)).toBeUndefined();
  });

  it('takes the first of repeated headers and nothing from an empty one', () => {
    expect(parseRetryAfter(['3', '9'], now)).toBe(3000);
    expect(parseRetryAfter([], now)).toBeUndefined();
    expect(parseRetryAfter('   ', now)).toBeUndefined();
  });
});
