/**
 * KooDrive settings from AWS Secrets Manager, cached across warm invocations for a bounded time and
 * re-read at most once per cache period when KooDrive rejects the credentials (rotation).
 * A failed read is never cached: the next caller tries again. Once a secret has been read, a failed re-read
 * (Secrets Manager unreachable, the secret deleted or made unusable) keeps the settings in use, reports the
 * error through `onError`, and is tried again after a short pause: a running invocation never fails for it.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigError } from '../core/errors';
import { systemClock } from '../core/model';
import { parseSecret } from './secret';
import type { SettingsSource, VersionedSettings } from './settings';

export interface SecretSourceOptions {
  client: Pick<SecretsManagerClient, 'send'>;
  secretId: string;
  /** How long a read secret is used before it is read again. */
  ttlMs: number;
  /** Epoch ms; default the system clock's now(). */
  now?: () => number;
  /**
   * A re-read failed and the settings read before stay in use (a ConfigError naming the secret and the cause,
   * never a value). Without it the failure is silent. The first read has no fallback: its failure rejects.
   */
  onError?: (error: ConfigError) => void;
}

interface Entry {
  value: Promise<VersionedSettings>;
  /** Epoch ms until which `value` is used. */
  until: number;
}

/** Re-reads forced by authentication failures are at least this far apart, even with no cache. */
const MIN_REFRESH_INTERVAL_MS = 1000;
/** After a failed re-read, the settings in use stay at most this long before the next try. */
export const FAILED_READ_RETRY_MS = 5000;

export class SecretSettingsSource implements SettingsSource {
  private entry: Entry | undefined;
  /** The settings of the last successful read. */
  private good: VersionedSettings | undefined;
  private lastRaw: string | undefined;
  private lastForcedReadAt = Number.NEGATIVE_INFINITY;
  private forced: Promise<boolean> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: SecretSourceOptions) {
    this.now = options.now ?? (() => systemClock.now());
  }

  /** The cached settings, read again once the cache period has passed. */
  current(): Promise<VersionedSettings> {
    const entry = this.entry;
    if (entry && this.now() < entry.until) return entry.value;
    return this.load();
  }

  /**
   * After KooDrive rejected credentials of `seenVersion`: true when newer settings are in use (read by
   * this call or another), false when a re-read already happened this cache period, found the same secret,
   * or failed (a failed read is never new credentials).
   */
  async refresh(seenVersion: number | undefined): Promise<boolean> {
    const version = this.good?.version ?? 0;
    if (seenVersion !== undefined && version > seenVersion) return true;
    if (this.forced) return this.forced;
    if (this.now() - this.lastForcedReadAt < Math.max(this.options.ttlMs, MIN_REFRESH_INTERVAL_MS))
      return false;
    this.lastForcedReadAt = this.now();
    this.forced = this.load()
      .then(
        (settings) => settings.version > version,
        () => false,
      )
      .finally(() => {
        this.forced = undefined;
      });
    return this.forced;
  }

  private load(): Promise<VersionedSettings> {
    const entry: Entry = {
      value: this.read().then((raw) => this.accept(raw)),
      until: this.now() + this.options.ttlMs,
    };
    entry.value = entry.value.catch((error: unknown) => this.fallBack(entry, error));
    this.entry = entry;
    return entry.value;
  }

  /** A failed read or an unusable secret: the settings in use stay, reported; before the first good read, it fails. */
  private fallBack(entry: Entry, error: unknown): VersionedSettings {
    if (this.good === undefined) {
      // Evict the failed read so a rejected promise is never reused.
      if (this.entry === entry) this.entry = undefined;
      throw error;
    }
    entry.until = Math.min(entry.until, this.now() + FAILED_READ_RETRY_MS);
    this.options.onError?.(error as ConfigError);
    return this.good;
  }

  /** Parses a read secret; the version changes only when the secret's content does. */
  private accept(raw: string | undefined): VersionedSettings {
    const settings = parseSecret(raw, this.options.secretId);
    if (raw !== this.lastRaw) {
      this.lastRaw = raw;
      this.good = { settings, version: (this.good?.version ?? 0) + 1 };
    }
    return this.good as VersionedSettings;
  }

  /** One GetSecretValue; any failure as a ConfigError naming the secret. */
  private async read(): Promise<string | undefined> {
    let answer;
    try {
      answer = await this.options.client.send(new GetSecretValueCommand({ SecretId: this.options.secretId }));
    } catch (error) {
      throw new ConfigError(`secret ${this.options.secretId} could not be read`, [describeAwsError(error)], {
        cause: error,
      });
    }
    return answer.SecretString;
  }
}

function describeAwsError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
