/**
 * What the KooDrive client needs to know, parsed from the secret (see src/config.ts).
 * The protocol knobs cover the points the public docs leave open; their defaults are the documented behaviour.
 */

export type KooDriveAuth =
  { mode: 'app'; appId: string; appSecret: string } | { mode: 'token'; accessToken: string };

export interface ProtocolOptions {
  /** Signed headers beyond host;x-date;x-user-id, lower case (e.g. "x-backup-lock-id"). Default none. */
  extraSignedHeaders: string[];
  /** Put the X-Date value as a second line of the StringToSign. Default false (two-line StringToSign). */
  dateLineInStringToSign: boolean;
  /** What precedes the access token in the Authorization header in token mode. Default "Bearer ". */
  tokenPrefix: string;
  /** KooDrive `code` values that mean the lock no longer exists. Default ["13000309"]. */
  alreadyReleasedCodes: string[];
}

export const DEFAULT_PROTOCOL: ProtocolOptions = {
  extraSignedHeaders: [],
  dateLineInStringToSign: false,
  tokenPrefix: 'Bearer ',
  alreadyReleasedCodes: ['13000309'],
};

export interface KooDriveSettings {
  /** Origin, e.g. "https://intl.myhuaweicloud-koodrive.com" (loopback http only for local use). */
  endpoint: string;
  auth: KooDriveAuth;
  defaultUserId?: string;
  protocol: ProtocolOptions;
}

/** Settings with the version of the secret they came from (bumped on every re-read that changed them). */
export interface VersionedSettings {
  settings: KooDriveSettings;
  version: number;
}

/** Where the client gets its current settings; cached by the implementation. */
export interface SettingsSource {
  current(): Promise<VersionedSettings>;
}
