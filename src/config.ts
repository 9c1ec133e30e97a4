/**
 * Configuration, validated once: the environment (read when the container first handles an event)
 * and the KooDrive secret (read through the secret cache). Errors name every bad setting, never a value.
 */
import * as z from 'zod/mini';
import { ConfigError } from './core/errors';
import { MAX_ID_LENGTH } from './core/model';
import { DEFAULT_PROTOCOL, type KooDriveSettings } from './koodrive/settings';

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT' | 'CRITICAL' | 'TRACE';

export interface EnvConfig {
  secretId: string;
  /** Absent when LOCK_LEDGER_TABLE is unset: release then works without a ledger. */
  ledgerTable: string | undefined;
  concurrency: number;
  maxAttempts: number;
  timeoutMs: number;
  staleAfterSeconds: number;
  secretCacheSeconds: number;
  maxLocksPerInvoke: number;
  logLevel: LogLevel;
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'];

/** Reads and checks every setting; throws one ConfigError that lists all the problems found. */
export function readEnv(env: Env = process.env): EnvConfig {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const secretId = env.KOODRIVE_SECRET_ID?.trim() ?? '';
  if (secretId === '')
    problems.push('KOODRIVE_SECRET_ID is required (the Secrets Manager secret name or ARN)');
  const logLevel = (env.LOG_LEVEL?.trim().toUpperCase() || 'INFO') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const config: EnvConfig = {
    secretId,
    ledgerTable: env.LOCK_LEDGER_TABLE?.trim() || undefined,
    concurrency: int('RELEASE_CONCURRENCY', 8, 1, 256),
    maxAttempts: int('RELEASE_MAX_ATTEMPTS', 4, 1, 20),
    timeoutMs: int('KOODRIVE_TIMEOUT_MS', 5000, 100, 60_000),
    staleAfterSeconds: int('STALE_AFTER_SECONDS', 900, 60, 7 * 24 * 3600),
    secretCacheSeconds: int('SECRET_CACHE_SECONDS', 300, 0, 24 * 3600),
    maxLocksPerInvoke: int('MAX_LOCKS_PER_INVOKE', 10_000, 1, 100_000),
    logLevel,
  };
  if (problems.length > 0) throw new ConfigError('invalid environment', problems);
  return config;
}

const id = z.string().check(z.minLength(1), z.maxLength(MAX_ID_LENGTH), z.regex(/^[\x21-\x7e]+$/));
const nonEmpty = z.string().check(z.minLength(1), z.regex(/^[\x21-\x7e]+$/));

const SecretSchema = z.object({
  endpoint: z.string(),
  appId: z.optional(nonEmpty),
  appSecret: z.optional(nonEmpty),
  accessToken: z.optional(nonEmpty),
  defaultUserId: z.optional(id),
  extraSignedHeaders: z.optional(z.array(z.string().check(z.regex(/^[a-z0-9-]+$/)))),
  dateLineInStringToSign: z.optional(z.boolean()),
  tokenPrefix: z.optional(z.string().check(z.regex(/^[\x20-\x7e]*$/))),
  alreadyReleasedCodes: z.optional(z.array(z.union([z.string(), z.number()]))),
});

const LOOPBACK_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/** True when `url` is https://, or http:// to a loopback address (the local stack, tests). */
export function isAllowedEndpoint(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.test(url.hostname));
}

/**
 * Parses the secret's SecretString into client settings. The error lists the fields at fault, never
 * their values, so it can be logged and shown.
 */
export function parseSecret(secretString: string | undefined, secretId: string): KooDriveSettings {
  const fail = (problems: string[]) => new ConfigError(`secret ${secretId} is not usable`, problems);
  if (secretString === undefined) throw fail(['it has no SecretString (a JSON object is expected)']);
  let json: unknown;
  try {
    json = JSON.parse(secretString);
  } catch {
    throw fail(['SecretString is not JSON']);
  }
  const parsed = z.safeParse(SecretSchema, json);
  if (!parsed.success) {
    throw fail(
      parsed.error.issues.map((issue) => {
        const path = issue.path.join('.') || '(root)';
        return issue.code === 'invalid_format'
          ? `${path} has characters that are not allowed`
          : `${path}: ${issue.message}`;
      }),
    );
  }
  const secret = parsed.data;
  const problems: string[] = [];
  let endpoint = '';
  try {
    const url = new URL(secret.endpoint);
    if (!isAllowedEndpoint(url))
      problems.push('endpoint must be https:// (http:// only to a loopback address)');
    if (url.pathname !== '/' || url.search !== '' || url.username !== '') {
      problems.push('endpoint must be an origin only, like https://host[:port]');
    }
    endpoint = url.origin;
  } catch {
    problems.push('endpoint is not a URL');
  }
  let auth: KooDriveSettings['auth'] | undefined;
  if (secret.appId !== undefined || secret.appSecret !== undefined) {
    if (secret.appId === undefined || secret.appSecret === undefined) {
      problems.push('appId and appSecret go together: one of them is missing');
    } else {
      auth = { mode: 'app', appId: secret.appId, appSecret: secret.appSecret };
    }
  } else if (secret.accessToken !== undefined) {
    auth = { mode: 'token', accessToken: secret.accessToken };
  } else {
    problems.push('credentials are missing: give appId and appSecret, or accessToken');
  }
  if (problems.length > 0 || auth === undefined) throw fail(problems);
  return {
    endpoint,
    auth,
    ...(secret.defaultUserId !== undefined ? { defaultUserId: secret.defaultUserId } : {}),
    protocol: {
      extraSignedHeaders: secret.extraSignedHeaders ?? DEFAULT_PROTOCOL.extraSignedHeaders,
      dateLineInStringToSign: secret.dateLineInStringToSign ?? DEFAULT_PROTOCOL.dateLineInStringToSign,
      tokenPrefix: secret.tokenPrefix ?? DEFAULT_PROTOCOL.tokenPrefix,
      alreadyReleasedCodes: secret.alreadyReleasedCodes?.map(String) ?? DEFAULT_PROTOCOL.alreadyReleasedCodes,
    },
  };
}
