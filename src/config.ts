/**
 * The environment, validated once (read when the container first handles an event). The error names every bad
 * setting and its rule at once, never a value. The KooDrive secret is parsed next to its settings, in
 * src/koodrive/secret.ts.
 */
import * as z from 'zod/mini';
import { ConfigError } from './core/errors';
import { DEFAULT_CLOCK_SKEW_SECONDS } from './core/lease';

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT' | 'CRITICAL' | 'TRACE';

export interface EnvConfig {
  secretId: string;
  /** Absent when LOCK_LEDGER_TABLE is unset: release then works without a ledger. */
  ledgerTable: string | undefined;
  concurrency: number;
  maxAttempts: number;
  timeoutMs: number;
  staleAfterSeconds: number;
  /** Allowance for clock differences between holders and the sweep (README, "The lease protocol"). */
  clockSkewSeconds: number;
  secretCacheSeconds: number;
  maxLocksPerInvoke: number;
  logLevel: LogLevel;
}

type Env = Record<string, string | undefined>;

/**
 * One variable: its schema and the one message that describes its rule. Only that message is ever reported,
 * so no value can reach an error whatever zod would have said.
 */
interface Setting<T> {
  schema: z.ZodMiniType<T, string | undefined>;
  rule: string;
}

/** The trimmed value; '' when unset. */
function text() {
  return z.pipe(
    z.optional(z.string()),
    z.transform((raw) => raw?.trim() ?? ''),
  );
}

/** A whole number in [min, max] written in decimal digits; `fallback` when unset or blank. */
function wholeNumber(name: string, fallback: number, min: number, max: number): Setting<number> {
  return {
    schema: z.pipe(
      text(),
      z.pipe(
        z.transform((value: string) => (value === '' ? fallback : /^\d+$/.test(value) ? Number(value) : NaN)),
        z.number().check(z.minimum(min), z.maximum(max)),
      ),
    ),
    rule: `${name} must be a whole number from ${min} to ${max}`,
  };
}

/** CLOCK_SKEW_SECONDS: the functions and the holder read it by the same rule. */
function clockSkewSetting() {
  return wholeNumber('CLOCK_SKEW_SECONDS', DEFAULT_CLOCK_SKEW_SECONDS, 0, 300);
}

/** The holder's default skew allowance: CLOCK_SKEW_SECONDS as the functions read it; ConfigError when invalid. */
export function readClockSkew(env: Env = process.env): number {
  const setting = clockSkewSetting();
  const parsed = z.safeParse(setting.schema, env.CLOCK_SKEW_SECONDS);
  if (!parsed.success) throw new ConfigError('invalid environment', [setting.rule]);
  return parsed.data;
}

/** Every variable read, in the order problems are reported. Built per call: readEnv runs once per container. */
function settings() {
  const LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'];
  return {
    KOODRIVE_SECRET_ID: {
      schema: z.pipe(text(), z.string().check(z.minLength(1))),
      rule: 'KOODRIVE_SECRET_ID is required (the Secrets Manager secret name or ARN)',
    },
    LOG_LEVEL: {
      schema: z.pipe(
        text(),
        z.pipe(
          z.transform((value: string) => value.toUpperCase() || 'INFO'),
          z.enum(LOG_LEVELS),
        ),
      ),
      rule: `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`,
    },
    RELEASE_CONCURRENCY: wholeNumber('RELEASE_CONCURRENCY', 8, 1, 256),
    RELEASE_MAX_ATTEMPTS: wholeNumber('RELEASE_MAX_ATTEMPTS', 4, 1, 20),
    KOODRIVE_TIMEOUT_MS: wholeNumber('KOODRIVE_TIMEOUT_MS', 5000, 100, 60_000),
    STALE_AFTER_SECONDS: wholeNumber('STALE_AFTER_SECONDS', 900, 60, 7 * 24 * 3600),
    CLOCK_SKEW_SECONDS: clockSkewSetting(),
    SECRET_CACHE_SECONDS: wholeNumber('SECRET_CACHE_SECONDS', 300, 0, 24 * 3600),
    MAX_LOCKS_PER_INVOKE: wholeNumber('MAX_LOCKS_PER_INVOKE', 10_000, 1, 100_000),
  } satisfies Record<string, Setting<unknown>>;
}

/** Reads and checks every setting; throws one ConfigError that lists all the problems found, in table order. */
export function readEnv(env: Env = process.env): EnvConfig {
  const table = settings();
  const schema = z.object(
    Object.fromEntries(Object.entries(table).map(([name, setting]) => [name, setting.schema])) as {
      [K in keyof typeof table]: (typeof table)[K]['schema'];
    },
  );
  const parsed = z.safeParse(schema, env);
  if (!parsed.success) {
    const bad = new Set(parsed.error.issues.map((issue) => issue.path[0]));
    const problems = Object.entries(table)
      .filter(([name]) => bad.has(name))
      .map(([, setting]) => setting.rule);
    throw new ConfigError('invalid environment', problems);
  }
  const values = parsed.data;
  return {
    secretId: values.KOODRIVE_SECRET_ID,
    // Any name, or none: only DynamoDB can tell whether the table exists.
    ledgerTable: env.LOCK_LEDGER_TABLE?.trim() || undefined,
    concurrency: values.RELEASE_CONCURRENCY,
    maxAttempts: values.RELEASE_MAX_ATTEMPTS,
    timeoutMs: values.KOODRIVE_TIMEOUT_MS,
    staleAfterSeconds: values.STALE_AFTER_SECONDS,
    clockSkewSeconds: values.CLOCK_SKEW_SECONDS,
    secretCacheSeconds: values.SECRET_CACHE_SECONDS,
    maxLocksPerInvoke: values.MAX_LOCKS_PER_INVOKE,
    logLevel: values.LOG_LEVEL,
  };
}
