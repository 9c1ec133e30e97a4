/**
 * The KooDrive secret (Secrets Manager SecretString, JSON) parsed into client settings. Errors name every field
 * at fault and the rule it breaks, never a value, so they can be logged and shown.
 */
import * as z from 'zod/mini';
import { ConfigError } from '../core/errors';
import { MAX_ID_LENGTH } from '../core/model';
import { isAllowedEndpoint } from './endpoint';
import { DEFAULT_PROTOCOL, type KooDriveSettings } from './settings';

export { isAllowedEndpoint } from './endpoint';

/** The secret's JSON shape. Built per call: a secret is parsed once per read. */
function secretSchema() {
  const id = z.string().check(z.minLength(1), z.maxLength(MAX_ID_LENGTH), z.regex(/^[\x21-\x7e]+$/));
  const nonEmpty = z.string().check(z.minLength(1), z.regex(/^[\x21-\x7e]+$/));
  return z.object({
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
  const parsed = z.safeParse(secretSchema(), json);
  if (!parsed.success) {
    // One problem per field: an empty value also breaks the character rule, and the first rule says it best.
    const problems = new Map<string, string>();
    for (const issue of parsed.error.issues) {
      const path = issue.path.join('.') || '(root)';
      if (!problems.has(path)) problems.set(path, describeIssue(path, issue));
    }
    throw fail([...problems.values()]);
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

/** What is wrong with one field, in words that never include its value. */
function describeIssue(path: string, issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_format') return `${path} has characters that are not allowed`;
  if (issue.code === 'invalid_type') return `${path} must be of type ${issue.expected}`;
  if (issue.code === 'too_small') return `${path} must not be empty`;
  if (issue.code === 'too_big') return `${path} is too long`;
  return `${path} is not valid`;
}
