import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  LedgerConflictError,
  LockExistsError,
  LockLostError,
  LockNotFoundError,
  ReleaserError,
} from '../../src/core/errors';

describe('errors', () => {
  it('each is a ReleaserError named after its own class, keeping its cause', () => {
    const cause = new Error('root');
    const errors = [
      new ConfigError('invalid environment', ['A is missing'], { cause }),
      new LedgerConflictError('l', 'conflict', { cause }),
      new LockExistsError('l', { cause }),
      new LockNotFoundError('l', { cause }),
      new LockLostError('l', 'HELD', 'why', { cause }),
    ];
    expect(errors.map((e) => e.name)).toEqual([
      'ConfigError',
      'LedgerConflictError',
      'LockExistsError',
      'LockNotFoundError',
      'LockLostError',
    ]);
    for (const error of errors) {
      expect(error).toBeInstanceOf(ReleaserError);
      expect(error).toBeInstanceOf(Error);
      expect(error.cause).toBe(cause);
    }
    expect(new ReleaserError('plain').name).toBe('ReleaserError');
  });

  it('ConfigError lists every problem in its message and keeps them', () => {
    const error = new ConfigError('invalid environment', ['A is missing', 'B must be a number']);
    expect(error.message).toBe('invalid environment: A is missing; B must be a number');
    expect(error.problems).toEqual(['A is missing', 'B must be a number']);
  });

  it('ledger conflicts name their lock', () => {
    expect(new LedgerConflictError('l-1', 'version moved')).toMatchObject({
      lockId: 'l-1',
      message: 'version moved',
    });
    expect(new LockExistsError('l-2')).toMatchObject({
      lockId: 'l-2',
      message: 'lock l-2 is already in the ledger',
    });
    expect(new LockNotFoundError('l-3')).toMatchObject({
      lockId: 'l-3',
      message: 'lock l-3 is not in the ledger',
    });
    expect(new LockExistsError('l-2')).toBeInstanceOf(LedgerConflictError);
  });

  it('LockLostError says why and to stop, with the status when known', () => {
    const taken = new LockLostError('l-4', 'RELEASING', 'a sweep claimed it');
    expect(taken).toMatchObject({
      lockId: 'l-4',
      status: 'RELEASING',
      message: 'lock l-4 is lost (a sweep claimed it): stop working under it',
    });
    expect(taken).toBeInstanceOf(LedgerConflictError);
    expect(new LockLostError('l-5', undefined, 'safe time passed').status).toBeUndefined();
  });
});
