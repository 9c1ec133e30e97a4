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
  unknownKey,
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
  it('shows a bad ID bounded to 32 characters, non-printables as "?", never the raw value', () => {
    expect(preview('a b\r\n')).toBe('a?b??');
    expect(preview('x'.repeat(32))).toBe('x'.repeat(32));
    expect(preview('x'.repeat(33))).toBe(`${'x'.repeat(32)}…`);
    expect(preview('😀'.repeat(1000))).toBe(`${'?'.repeat(32)}…`);
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

  it('makes a body with an unknown key invalid, naming it and the closest known key: a typo never falls back to the default user', () => {
    expect(parseSqsBody('{"lockId":"l","userid":"u"}', 'd')).toEqual({
      ok: false,
      lockId: 'l',
      userId: '',
      message: 'message body: `userid`: unknown key, did you mean `userId`?',
    });
    expect(parseSqsBody('{"lockId":"l","userId":"u","priority":1}')).toMatchObject({
      ok: false,
      message: 'message body: `priority`: unknown key, the known keys are `lockId`, `userId`',
    });
  });
});

describe('unknownKey', () => {
  const known = ['lockIds', 'locks', 'userId', 'moduleCode', 'dryRun', 'force'];

  it('names the key and the closest known one', () => {
    expect(unknownKey({ dryrun: true }, known)).toEqual({
      field: 'dryrun',
      message: '`dryrun`: unknown key, did you mean `dryRun`?',
    });
    expect(unknownKey({ lockIds: [], lock_ids: [] }, known)?.message).toBe(
      '`lock_ids`: unknown key, did you mean `lockIds`?',
    );
    expect(unknownKey({ modulecode: '101' }, known)?.message).toBe(
      '`modulecode`: unknown key, did you mean `moduleCode`?',
    );
    expect(unknownKey({ lockId: 'x' }, ['lockId', 'userId'], 'locks[3].')).toBeUndefined();
    expect(unknownKey({ lockid: 'x' }, ['lockId', 'userId'], 'locks[3].')).toEqual({
      field: 'locks[3].lockid',
      message: '`locks[3].lockid`: unknown key, did you mean `lockId`?',
    });
  });

  it('lists the known keys when none is close, and counts the other unknown ones', () => {
    expect(unknownKey({ scheduler: 'x', a: 1, b: 2 }, known)?.message).toBe(
      '`scheduler`: unknown key, the known keys are `lockIds`, `locks`, `userId`, `moduleCode`, `dryRun`, `force` (and 2 more unknown keys)',
    );
    expect(unknownKey({ dryRun: true }, known)).toBeUndefined();
    expect(unknownKey({}, known)).toBeUndefined();
  });

  it('shows a hostile key by a short printable preview only', () => {
    const refusal = unknownKey({ [`${'k'.repeat(1_000_000)}\r\n`]: 1 }, known);
    expect(refusal?.field).toBe(`${'k'.repeat(32)}…`);
    expect(refusal?.message.length).toBeLessThan(200);
    expect(unknownKey({ '\r\n': 1 }, known)?.field).toBe('??');
    expect(unknownKey({ '': 1 }, known)?.field).toBe('?');
  });
});

describe('parseDirectPayload', () => {
  const shape =
    'expected {"lockIds": ["…"], "userId": "…"}, {"locks": [{"lockId": "…", "userId": "…"}]} or {"userId": "…", "moduleCode": "…"}';
  const refused = (field: string, message: string, requested = 0) => ({
    refused: { field, message },
    requested,
  });

  it('reads both shapes, dryRun and force', () => {
    expect(parseDirectPayload({ lockIds: ['a'], userId: 'u' }, undefined, 10)).toEqual({
      kind: 'locks',
      entries: [{ ok: true, lock: { lockId: 'a', userId: 'u' } }],
      dryRun: false,
      force: false,
    });
    expect(parseDirectPayload({ locks: [{ lockId: 'a' }], dryRun: true, force: true }, 'd', 10)).toEqual({
      kind: 'locks',
      entries: [{ ok: true, lock: { lockId: 'a', userId: 'd' } }],
      dryRun: true,
      force: true,
    });
  });

  it('reads find-by-user: a userId without lock IDs, moduleCode optional', () => {
    expect(parseDirectPayload({ userId: 'u', moduleCode: '101' }, 'd', 10)).toEqual({
      kind: 'findByUser',
      userId: 'u',
      moduleCode: '101',
      dryRun: false,
      force: false,
    });
    expect(parseDirectPayload({ userId: 'u', dryRun: true }, 'd', 10)).toEqual({
      kind: 'findByUser',
      userId: 'u',
      dryRun: true,
      force: false,
    });
    // The secret's defaultUserId never stands in: find-by-user names its user.
    expect(parseDirectPayload({ moduleCode: '101' }, 'd', 10)).toEqual(
      refused('lockIds', `payload names no lock: give "lockIds", "locks", or a "userId" to find; ${shape}`),
    );
    expect(parseDirectPayload({ userId: 'a b' }, 'd', 10)).toEqual(
      refused('userId', 'userId may hold only printable ASCII characters (0x21-0x7E)'),
    );
    expect(parseDirectPayload({ userId: 'u', moduleCode: 101 }, 'd', 10)).toEqual(
      refused('moduleCode', 'moduleCode must be a string, got number'),
    );
    expect(parseDirectPayload({ lockIds: ['a'], userId: 'u', moduleCode: '101' }, 'd', 10)).toEqual(
      refused(
        'moduleCode',
        'moduleCode finds a user\'s locks: give it with "userId" alone, not with "lockIds"',
        1,
      ),
    );
  });

  it('refuses a payload with an unknown key as a whole, naming it and the closest known key', () => {
    expect(parseDirectPayload({ lockIds: ['a', 'b'], dryrun: true }, 'd', 10)).toEqual(
      refused('dryrun', '`dryrun`: unknown key, did you mean `dryRun`?', 2),
    );
    expect(parseDirectPayload({ userId: 'u', module: '101' }, 'd', 10)).toEqual(
      refused('module', '`module`: unknown key, did you mean `moduleCode`?'),
    );
    expect(parseDirectPayload({ locks: [{ lockId: 'a' }, { lockId: 'b', user: 'u' }] }, 'd', 10)).toEqual(
      refused('locks[1].user', '`locks[1].user`: unknown key, did you mean `userId`?', 2),
    );
  });

  it('refuses something that looks like an SQS event but is not one', () => {
    expect(parseDirectPayload({ Records: [{ body: '{}' }] }, 'd', 10)).toMatchObject({
      refused: { field: 'Records', message: expect.stringMatching(/^`Records`: not an SQS event/) as string },
    });
  });

  it('refuses a payload of the wrong shape as a whole, naming the field', () => {
    expect(parseDirectPayload([], undefined, 10)).toEqual(
      refused('payload', `payload must be a JSON object, got an array; ${shape}`),
    );
    expect(parseDirectPayload({ lockIds: ['a'], dryRun: 'yes' }, undefined, 10)).toEqual(
      refused('dryRun', 'dryRun must be true or false, got string', 1),
    );
    expect(parseDirectPayload({ lockIds: ['a'], force: 1 }, undefined, 10)).toEqual(
      refused('force', 'force must be true or false, got number', 1),
    );
    expect(parseDirectPayload({}, undefined, 10)).toMatchObject({
      refused: { field: 'lockIds' },
      requested: 0,
    });
    expect(parseDirectPayload({ lockIds: ['a'], locks: [] }, undefined, 10)).toEqual(
      refused('locks', `payload must hold only one of "lockIds" and "locks"; ${shape}`, 1),
    );
    expect(parseDirectPayload({ locks: { lockId: 'a' } }, undefined, 10)).toEqual(
      refused('locks', 'locks must be an array, got an object'),
    );
    expect(parseDirectPayload({ lockIds: 'a' }, undefined, 10)).toEqual(
      refused('lockIds', 'lockIds must be an array, got string'),
    );
    expect(parseDirectPayload({ locks: [{ lockId: 'a' }], userId: 'u' }, undefined, 10)).toEqual(
      refused('userId', 'userId goes into each entry of "locks", not next to it', 1),
    );
  });

  it('refuses an empty list, saying what to send instead', () => {
    for (const field of ['lockIds', 'locks'] as const) {
      expect(parseDirectPayload({ [field]: [], dryRun: false }, 'd', 10)).toEqual(
        refused(
          field,
          `${field} is empty: name at least one lock (or send only "userId" to find that user's locks)`,
        ),
      );
    }
  });

  it('accepts exactly the maximum number of locks and refuses one more, counting them', () => {
    expect(parseDirectPayload({ lockIds: ['a', 'b'], userId: 'u' }, undefined, 2)).toHaveProperty('entries');
    expect(parseDirectPayload({ lockIds: ['a', 'b', 'c'], userId: 'u' }, undefined, 2)).toEqual(
      refused(
        'lockIds',
        'lockIds holds 3 locks; at most 2 per invocation: split it, or send them through the queue',
        3,
      ),
    );
  });

  it('makes each bad entry an invalid entry of its own, named by its place', () => {
    const parsed = parseDirectPayload(
      { locks: [{ lockId: 'a', userId: 'u' }, null, { lockId: ' ' }] },
      'd',
      10,
    );
    expect(parsed).toEqual({
      kind: 'locks',
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
});
