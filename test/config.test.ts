import { describe, expect, it } from 'vitest';
import { readEnv } from '../src/config';
import { ConfigError } from '../src/core/errors';

/** The problems readEnv names for `env`; fails the test when it accepts it. */
function problems(env: Record<string, string | undefined>): string[] {
  try {
    readEnv(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

const SECRET = { KOODRIVE_SECRET_ID: 'koodrive/dev' };

describe('readEnv', () => {
  it('applies the documented defaults', () => {
    expect(readEnv(SECRET)).toEqual({
      secretId: 'koodrive/dev',
      ledgerTable: undefined,
      concurrency: 8,
      maxAttempts: 4,
      timeoutMs: 5000,
      staleAfterSeconds: 900,
      clockSkewSeconds: 10,
      secretCacheSeconds: 300,
      maxLocksPerInvoke: 10_000,
      logLevel: 'INFO',
    });
  });

  it('reads every setting, trimmed, blank meaning unset', () => {
    expect(
      readEnv({
        KOODRIVE_SECRET_ID: ' arn:aws:secretsmanager:eu-west-1:1:secret:kd ',
        LOCK_LEDGER_TABLE: ' ledger ',
        RELEASE_CONCURRENCY: '16',
        RELEASE_MAX_ATTEMPTS: ' 1 ',
        KOODRIVE_TIMEOUT_MS: '250',
        STALE_AFTER_SECONDS: '60',
        CLOCK_SKEW_SECONDS: '0',
        SECRET_CACHE_SECONDS: '',
        MAX_LOCKS_PER_INVOKE: '3',
        LOG_LEVEL: 'debug',
      }),
    ).toEqual({
      secretId: 'arn:aws:secretsmanager:eu-west-1:1:secret:kd',
      ledgerTable: 'ledger',
      concurrency: 16,
      maxAttempts: 1,
      timeoutMs: 250,
      staleAfterSeconds: 60,
      clockSkewSeconds: 0,
      secretCacheSeconds: 300,
      maxLocksPerInvoke: 3,
      logLevel: 'DEBUG',
    });
    expect(readEnv({ ...SECRET, LOCK_LEDGER_TABLE: '  ' }).ledgerTable).toBeUndefined();
    expect(readEnv({ ...SECRET, LOG_LEVEL: ' ' }).logLevel).toBe('INFO');
  });

  it.each([
    ['RELEASE_CONCURRENCY', 'concurrency', 1, 256],
    ['RELEASE_MAX_ATTEMPTS', 'maxAttempts', 1, 20],
    ['KOODRIVE_TIMEOUT_MS', 'timeoutMs', 100, 60_000],
    ['STALE_AFTER_SECONDS', 'staleAfterSeconds', 60, 604_800],
    ['CLOCK_SKEW_SECONDS', 'clockSkewSeconds', 0, 300],
    ['SECRET_CACHE_SECONDS', 'secretCacheSeconds', 0, 86_400],
    ['MAX_LOCKS_PER_INVOKE', 'maxLocksPerInvoke', 1, 100_000],
  ] as const)('%s: a whole number from its minimum to its maximum', (name, key, min, max) => {
    expect(readEnv({ ...SECRET, [name]: String(min) })[key]).toBe(min);
    expect(readEnv({ ...SECRET, [name]: String(max) })[key]).toBe(max);
    const rule = [`${name} must be a whole number from ${min} to ${max}`];
    for (const bad of [String(min - 1), String(max + 1), '1.5', '-1', '1e2', '0x10', 'soon', '+5', '5 5']) {
      expect(problems({ ...SECRET, [name]: bad }), bad).toEqual(rule);
    }
  });

  it('LOG_LEVEL: one of the levels, in any case', () => {
    for (const level of ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT']) {
      expect(readEnv({ ...SECRET, LOG_LEVEL: level.toLowerCase() }).logLevel).toBe(level);
    }
    expect(problems({ ...SECRET, LOG_LEVEL: 'LOUD' })).toEqual([
      'LOG_LEVEL must be one of TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL, SILENT',
    ]);
  });

  it('KOODRIVE_SECRET_ID is required, blank counts as missing', () => {
    const rule = ['KOODRIVE_SECRET_ID is required (the Secrets Manager secret name or ARN)'];
    expect(problems({})).toEqual(rule);
    expect(problems({ KOODRIVE_SECRET_ID: ' \t ' })).toEqual(rule);
  });

  it('reports every bad setting at once, in a fixed order, in one ConfigError', () => {
    const env = {
      RELEASE_CONCURRENCY: '0',
      KOODRIVE_TIMEOUT_MS: 'soon',
      LOG_LEVEL: 'LOUD',
      CLOCK_SKEW_SECONDS: '301',
    };
    expect(problems(env)).toEqual([
      'KOODRIVE_SECRET_ID is required (the Secrets Manager secret name or ARN)',
      'LOG_LEVEL must be one of TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL, SILENT',
      'RELEASE_CONCURRENCY must be a whole number from 1 to 256',
      'KOODRIVE_TIMEOUT_MS must be a whole number from 100 to 60000',
      'CLOCK_SKEW_SECONDS must be a whole number from 0 to 300',
    ]);
    expect(() => readEnv(env)).toThrow(/^invalid environment: KOODRIVE_SECRET_ID is required/);
  });

  it('never echoes a value', () => {
    const value = 'value-that-must-not-appear';
    const env = Object.fromEntries(
      [
        'RELEASE_CONCURRENCY',
        'RELEASE_MAX_ATTEMPTS',
        'KOODRIVE_TIMEOUT_MS',
        'STALE_AFTER_SECONDS',
        'CLOCK_SKEW_SECONDS',
        'SECRET_CACHE_SECONDS',
        'MAX_LOCKS_PER_INVOKE',
        'LOG_LEVEL',
      ].map((name) => [name, value]),
    );
    let message = '';
    try {
      readEnv(env);
    } catch (error) {
      message = (error as Error).message;
    }
    expect((message.match(/must be/g) ?? []).length).toBe(8);
    expect(message).not.toContain(value);
  });

  it('reads process.env when given nothing', () => {
    const before = process.env.KOODRIVE_SECRET_ID;
    process.env.KOODRIVE_SECRET_ID = 'from-process-env';
    try {
      expect(readEnv().secretId).toBe('from-process-env');
    } finally {
      if (before === undefined) delete process.env.KOODRIVE_SECRET_ID;
      else process.env.KOODRIVE_SECRET_ID = before;
    }
  });
});
