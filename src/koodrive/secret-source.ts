/**
 * KooDrive settings from AWS Secrets Manager, cached across warm invocations for a bounded time and
 * re-read at most once per cache period when KooDrive rejects the credentials (rotation).
 * A failed read is never cached: the next caller tries again.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseSecret } from '../config';
import { ConfigError } from '../core/errors';
import type { SettingsSource, VersionedSettings } from './settings';

export interface SecretSourceOptions {
  client: Pick<SecretsManagerClient, 'send'>;
  secretId: string;
  /** How long a read secret is used before it is read again. */
  ttlMs: number;
  now?: () => number;
}

interface Entry {
  value: Promise<VersionedSettings>;
  readAt: number;
}

/** Re-reads forced by authentication failures are at least this far apart, even with no cache. */
const MIN_REFRESH_INTERVAL_MS = 1000;

export class SecretSettingsSource implements SettingsSource {
  private entry: Entry | undefined;
  private version = 0;
  private lastRaw: string | undefined;
  private lastForcedReadAt = Number.NEGATIVE_INFINITY;
  private forced: Promise<boolean> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: SecretSourceOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The cached settings, read again once the cache period has passed. */
  current(): Promise<VersionedSettings> {
    const entry = this.entry;
    if (entry && this.now() - entry.readAt < this.options.ttlMs) return entry.value;
    return this.load().value;
  }

  /**
   * After KooDrive rejected credentials of `seenVersion`: true when newer settings are in use (read by
   * this call or another), false when a re-read already happened this cache period or found the same secret.
   */
  async refresh(seenVersion: number | undefined): Promise<boolean> {
    if (seenVersion !== undefined && this.version > seenVersion) return true;
    if (this.forced) return this.forced;
    if (this.now() - this.lastForcedReadAt < Math.max(this.options.ttlMs, MIN_REFRESH_INTERVAL_MS))
      return false;
    this.lastForcedReadAt = this.now();
    const before = this.version;
    this.forced = this.load()
      .value.then(
        (settings) => settings.version > before,
        () => false,
      )
      .finally(() => {
        this.forced = undefined;
      });
    return this.forced;
  }

  private load(): Entry {
    const value = this.read().then(
      (raw) => {
        // The version changes only when the secret's content does, so a re-read of the same secret
        // does not count as new credentials.
        if (raw !== this.lastRaw) {
          this.version += 1;
          this.lastRaw = raw;
        }
        return { settings: parseSecret(raw, this.options.secretId), version: this.version };
      },
      (error: unknown) => {
        throw new ConfigError(
          `secret ${this.options.secretId} could not be read`,
          [describeAwsError(error)],
          {
            cause: error,
          },
        );
      },
    );
    const entry: Entry = { value, readAt: this.now() };
    // Evict a failed read so a rejected promise is never reused.
    value.catch(() => {
      if (this.entry === entry) this.entry = undefined;
    });
    this.entry = entry;
    return entry;
  }

  private async read(): Promise<string | undefined> {
    const answer = await this.options.client.send(
      new GetSecretValueCommand({ SecretId: this.options.secretId }),
    );
    return answer.SecretString;
  }
}

function describeAwsError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
