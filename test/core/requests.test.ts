/** Parsing what the release function receives (README, "Release requests" and "Valid IDs"). */
import { describe, expect, it } from 'vitest';
import { describeType, idProblem, MAX_ID_LENGTH } from '../../src/core/model';
import {
  distinctLocks,
  lockKey,
  parseDirectPayload,
  parseSqsBody,
  preview,
  toEntry,
  type Entry,
} from '../../src/core/requests';

describe('valid IDs: 1–256 printable ASCII characters (0x21–0x7E)', () => {
  it('accepts the bounds of the alphabet and of the length', () => {
    expect(MAX_ID_LENGTH).toBe(256);
    expect(idProblem('lockId', '!')).toBeUndefined();
    expect(idProblem('lockId', '~')).toBeUndefined();
    expect(idProblem('lockId', 'x'.repeat(256))).toBeUndefined();
  });

  it('names the problem of each invalid ID', () => {
    expect(idProblem('lockId', 'x'.repeat(257))).toBe('lockId is 257 characters long; at most 256');
    expect(idProblem('userId', '')).toBe('userId must not be empty');
    expect(idProblem('lockId', 42)).toBe('lockId must be a string, got number');
    for (const bad of ['a b', 'a\u007f', 'a\u0020', 'é', 'a\nb', ' ab', 'ab ']) {
      expect(idProblem('lockId', bad), JSON.stringify(bad)).toBe(
        'lockId may hold only printable ASCII characters (0x21-0x7E)',
      );
    }
  });

  it('describes the type of a non-string', () => {
    expect(describeType(null)).toBe('null');
    expect(describeType([1])).toBe('an array');
    expect(describeType({})).toBe('an object');
    expect(describeType(undefined)).toBe('undefined');
    expect(describeType(true)).toBe('boolean');
    expect(describeType(1)).toBe('number');
  });
});

describe('preview', () => {
  it('shows a bad ID bounded to 64 characters, non-printables as "?", never the raw value', () => {
    expect(preview('a b\r\n')).toBe('a?b??');
    expect(preview('x'.repeat(64))).toBe('x'.repeat(64));
    expect(preview('x'.repeat(65))).toBe(`${'x'.repeat(64)}…`);
    expect(preview(42)).toBe('');
    expect(preview(undefined)).toBe('');
  });
});

describe('toEntry', () => {
  it('uses the secret’s defaultUserId only when userId is absent', () => {
    expect(toEntry('w', 'l', undefined, 'default')).toEqual({
      ok: true,
      lock: { lockId: 'l', userId: 'default' },
    });
    expect(toEntry('w', 'l', 'mine', 'default')).toEqual({ ok: true, lock: { lockId: 'l', userId: 'mine' } });
    expect(toEntry('w', 'l', null, 'default')).toMatchObject({
      ok: false,
      message: 'w: userId must be a string, got null',
    });
  });

  it('lists every problem, prefixed with where it was found', () => {
    expect(toEntry('locks[2]', '', undefined, undefined)).toEqual({
      ok: false,
      lockId: '',
      userId: '',
      message: 'locks[2]: lockId must not be empty; userId is missing and the secret names no defaultUserId',
    });
    expect(toEntry('m', 'ok', 'bad user')).toEqual({
      ok: false,
      lockId: 'ok',
      userId: 'bad?user',
      message: 'm: userId may hold only printable ASCII characters (0x21-0x7E)',
    });
  });
});

describe('parseSqsBody', () => {
  it('parses {"lockId", "userId"}', () => {
    expect(parseSqsBody('{"lockId":"l","userId":"u"}')).toEqual({
      ok: true,
      lock: { lockId: 'l', userId: 'u' },
    });
    expect(parseSqsBody('{"lockId":"l"}', 'd')).toEqual({ ok: true, lock: { lockId: 'l', userId: 'd' } });
  });

  it('names what is wrong with a bad body', () => {
    const invalid = (message: string): Entry => ({ ok: false, lockId: '', userId: '', message });
    expect(parseSqsBody(undefined)).toEqual(invalid('message body is missing'));
    expect(parseSqsBody('{')).toEqual(invalid('message body is not JSON'));
    expect(parseSqsBody('[]')).toEqual(
      invalid('message body must be a JSON object {"lockId", "userId"}, got an array'),
    );
    expect(parseSqsBody('null')).toEqual(
      invalid('message body must be a JSON object {"lockId", "userId"}, got null'),
    );
    expect(parseSqsBody('{"lockId":5,"userId":"u"}')).toMatchObject({
      message: 'message body: lockId must be a string, got number',
    });
  });
});

describe('"force" comes only from a direct invoke', () => {
  it('an SQS body naming "force" (true, false or anything) is an invalid entry, its IDs kept for the report', () => {
    const message = 'message body: "force" is accepted only on a direct invoke, never from SQS';
    for (const force of [true, false, 'yes', null]) {
      expect(parseSqsBody(JSON.stringify({ lockId: 'l', userId: 'u', force }))).toEqual({
        ok: false,
        lockId: 'l',
        userId: 'u',
        message,
      });
    }
    expect(parseSqsBody('{"lockId":"","force":true}', 'd')).toEqual({
      ok: false,
      lockId: '',
      userId: 'd',
      message: `${message}; message body: lockId must not be empty`,
    });
  });

  it('a direct payload reads "force" as a boolean, false when absent, and refuses anything else as a whole', () => {
    expect(parseDirectPayload({ lockIds: ['a'], userId: 'u', force: true }, undefined, 10)).toEqual({
      entries: [{ ok: true, lock: { lockId: 'a', userId: 'u' } }],
      dryRun: false,
      force: true,
    });
    expect(parseDirectPayload({ lockIds: ['a'], userId: 'u', force: 'true' }, undefined, 10)).toEqual({
      refused: 'force must be true or false, got string',
      requested: 0,
    });
  });
});

describe('parseDirectPayload', () => {
  const shape = 'expected {"lockIds": ["…"], "userId": "…"} or {"locks": [{"lockId": "…", "userId": "…"}]}';

  it('reads both shapes and dryRun', () => {
    expect(parseDirectPayload({ lockIds: ['a'], userId: 'u' }, undefined, 10)).toEqual({
      entries: [{ ok: true, lock: { lockId: 'a', userId: 'u' } }],
      dryRun: false,
      force: false,
    });
    expect(parseDirectPayload({ locks: [{ lockId: 'a' }], dryRun: true }, 'd', 10)).toEqual({
      entries: [{ ok: true, lock: { lockId: 'a', userId: 'd' } }],
      dryRun: true,
      force: false,
    });
    expect(parseDirectPayload({ lockIds: [], dryRun: false }, undefined, 10)).toEqual({
      entries: [],
      dryRun: false,
      force: false,
    });
  });

  it('refuses a payload of the wrong shape as a whole, saying why', () => {
    expect(parseDirectPayload([], undefined, 10)).toEqual({
      refused: `payload must be a JSON object, got an array; ${shape}`,
      requested: 0,
    });
    expect(parseDirectPayload({ lockIds: ['a'], dryRun: 'yes' }, undefined, 10)).toEqual({
      refused: 'dryRun must be true or false, got string',
      requested: 0,
    });
    expect(parseDirectPayload({}, undefined, 10)).toEqual({
      refused: `payload must hold exactly one of "lockIds" and "locks"; ${shape}`,
      requested: 0,
    });
    expect(parseDirectPayload({ lockIds: [], locks: [] }, undefined, 10)).toMatchObject({ requested: 0 });
    expect(parseDirectPayload({ locks: { lockId: 'a' } }, undefined, 10)).toEqual({
      refused: 'locks must be an array, got an object',
      requested: 0,
    });
    expect(parseDirectPayload({ lockIds: 'a' }, undefined, 10)).toEqual({
      refused: 'lockIds must be an array, got string',
      requested: 0,
    });
  });

  it('accepts exactly the maximum number of locks and refuses one more, counting them', () => {
    expect(parseDirectPayload({ lockIds: ['a', 'b'], userId: 'u' }, undefined, 2)).toHaveProperty('entries');
    expect(parseDirectPayload({ lockIds: ['a', 'b', 'c'], userId: 'u' }, undefined, 2)).toEqual({
      refused: 'payload holds 3 locks; at most 2 per invocation: split it, or send them through the queue',
      requested: 3,
    });
  });

  it('makes each bad entry an invalid entry of its own, named by its place', () => {
    const parsed = parseDirectPayload(
      { locks: [{ lockId: 'a', userId: 'u' }, null, { lockId: ' ' }] },
      'd',
      10,
    );
    expect(parsed).toEqual({
      entries: [
        { ok: true, lock: { lockId: 'a', userId: 'u' } },
        {
          ok: false,
          lockId: '',
          userId: '',
          message: 'locks[1] must be an object {"lockId", "userId"}, got null',
        },
        {
          ok: false,
          lockId: '?',
          userId: 'd',
          message: 'locks[2]: lockId may hold only printable ASCII characters (0x21-0x7E)',
        },
      ],
      dryRun: false,
      force: false,
    });
    expect(parseDirectPayload({ lockIds: ['a', 7], userId: 'u' }, undefined, 10)).toMatchObject({
      entries: [{ ok: true }, { ok: false, message: 'lockIds[1]: lockId must be a string, got number' }],
    });
  });
});

describe('a lock is its (userId, lockId) pair', () => {
  it('lockKey tells two users’ locks with the same ID apart', () => {
    expect(lockKey({ userId: 'u1', lockId: 'l' })).not.toBe(lockKey({ userId: 'u2', lockId: 'l' }));
    expect(lockKey({ userId: 'u', lockId: 'l' })).toBe(lockKey({ lockId: 'l', userId: 'u' }));
  });

  it('distinctLocks keeps the first of each pair, in order, and only valid entries', () => {
    const ok = (lockId: string, userId: string): Entry => ({ ok: true, lock: { lockId, userId } });
    expect(
      distinctLocks([
        ok('b', 'u'),
        { ok: false, lockId: 'x', userId: 'u', message: 'bad' },
        ok('a', 'u'),
        ok('b', 'u'),
        ok('b', 'v'),
      ]),
    ).toEqual([
      { lockId: 'b', userId: 'u' },
      { lockId: 'a', userId: 'u' },
      { lockId: 'b', userId: 'v' },
    ]);
  });
});
