/**
 * The local stack: a KooDrive emulator, a Secrets Manager endpoint holding the KooDrive secret, and (when
 * asked) DynamoDB through dynalite with the ledger table, all on 127.0.0.1 with free ports. For development,
 * tests and `npm start`; never bundled.
 */
import { startDynalite, type LocalDynamo } from './dynalite';
import {
  startKooDriveEmulator,
  type EmulatorOptions,
  type KooDriveEmulator,
} from '../src/testing/koodrive-emulator';
import { startSecretsManager, type LocalSecretsManager } from './secrets-manager';

export const LOCAL_APP_ID = 'local-app';
export const LOCAL_APP_SECRET = 'local-app-secret-do-not-use';
export const LOCAL_USER_ID = '1505084218764547200';
export const LOCAL_SECRET_NAME = 'koodrive-lock-releaser/local';
/** The names serverless.yml gives the secret and the table at stage "local", for `sls invoke local --stage local`. */
export const LOCAL_LEDGER_TABLE = 'koodrive-lock-releaser-local-ledger';

export interface LocalStackOptions {
  emulator?: EmulatorOptions;
  /** Fields merged over the default secret (app authentication, defaultUserId = LOCAL_USER_ID). */
  secret?: Record<string, unknown>;
  /** Start DynamoDB (dynalite) with the ledger table: in memory, or on disk in `path`. Default: no ledger. */
  ledger?: boolean | { path: string; tableName: string };
}

export interface LocalStack {
  koodrive: KooDriveEmulator;
  secrets: LocalSecretsManager;
  /** Present when the stack was started with a ledger. */
  dynamo: LocalDynamo | undefined;
  /** The environment the handlers need to use this stack. */
  env: Record<string, string>;
  /** The secret as stored now. */
  secret: Record<string, unknown>;
  close(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const koodrive = await startKooDriveEmulator({
    apps: { [LOCAL_APP_ID]: LOCAL_APP_SECRET },
    ...options.emulator,
  });
  const secrets = await startSecretsManager();
  const secret = {
    endpoint: koodrive.url,
    appId: LOCAL_APP_ID,
    appSecret: LOCAL_APP_SECRET,
    defaultUserId: LOCAL_USER_ID,
    ...options.secret,
  };
  secrets.putSecret(LOCAL_SECRET_NAME, secret);
  const dynamo = options.ledger
    ? await startDynalite(options.ledger === true ? {} : options.ledger)
    : undefined;
  const env: Record<string, string> = {
    KOODRIVE_SECRET_ID: LOCAL_SECRET_NAME,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    ...(dynamo ? { AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint, LOCK_LEDGER_TABLE: dynamo.tableName } : {}),
  };
  return {
    koodrive,
    secrets,
    dynamo,
    env,
    secret,
    async close() {
      await Promise.all([koodrive.close(), secrets.close(), dynamo?.close()]);
    },
  };
}

/** Sets `env` on process.env and returns a function that restores what was there before. */
export function applyEnv(env: Record<string, string | undefined>): () => void {
  const before = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
  const set = (values: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  set(env);
  return () => set(before);
}
