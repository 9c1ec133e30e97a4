/**
 * DynamoDB for development and tests (never bundled into the Lambda): dynalite in-process on 127.0.0.1,
 * in memory or on disk, with the ledger table created from resources/ledger-table.yml, the same file
 * serverless.yml deploys. Reached by the real `@aws-sdk/client-dynamodb`.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';

import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import { listenOnLoopback } from '../src/testing/loopback';

// Neither package ships types; these are the only parts used.
const require = createRequire(import.meta.url);
const dynalite = require('dynalite') as (options: {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => Server;
const yaml = require('js-yaml') as { load(text: string): unknown };

export const LEDGER_TABLE_FILE = new URL('../resources/ledger-table.yml', import.meta.url);

/**
 * Left out locally: what dynalite cannot do (TTL, PITR), and a TableName (each local table gets its own).
 * Any other property this file does not know is an error, so the two tables cannot drift apart unnoticed.
 */
const NOT_IN_DYNALITE = ['TimeToLiveSpecification', 'PointInTimeRecoverySpecification', 'TableName'];
const CREATE_TABLE_PROPERTIES = [
  'AttributeDefinitions',
  'KeySchema',
  'GlobalSecondaryIndexes',
  'LocalSecondaryIndexes',
  'BillingMode',
  'ProvisionedThroughput',
];

/** The CreateTable request for the ledger table, read from resources/ledger-table.yml. */
export function ledgerTableInput(tableName: string): CreateTableCommandInput {
  const properties = yaml.load(readFileSync(LEDGER_TABLE_FILE, 'utf8'));
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) {
    throw new Error(`${LEDGER_TABLE_FILE.pathname} must hold the table's Properties as a YAML mapping`);
  }
  const input: Record<string, unknown> = { TableName: tableName };
  for (const [key, value] of Object.entries(properties)) {
    if (CREATE_TABLE_PROPERTIES.includes(key)) input[key] = value;
    else if (!NOT_IN_DYNALITE.includes(key)) {
      throw new Error(`${LEDGER_TABLE_FILE.pathname}: dev/dynalite.ts does not know the property ${key}`);
    }
  }
  return input as unknown as CreateTableCommandInput;
}

export interface LocalDynamo {
  /** http://127.0.0.1:<port>, for the SDK's `endpoint` or AWS_ENDPOINT_URL_DYNAMODB. */
  endpoint: string;
  tableName: string;
  /** A real DynamoDBClient pointed at the endpoint (region us-east-1, fake credentials). */
  client: DynamoDBClient;
  /** Destroys the client and stops the server and its store. */
  close(): Promise<void>;
}

export interface StartDynaliteOptions {
  /** A folder for an on-disk store; in memory by default. */
  path?: string;
  /** Default: a fresh name per call. An existing table of that name (on disk) is kept. */
  tableName?: string;
}

export async function startDynalite(options: StartDynaliteOptions = {}): Promise<LocalDynamo> {
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.path !== undefined ? { path: options.path } : {}),
  });
  const endpoint = await listenOnLoopback(server);
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const close = async (): Promise<void> => {
    client.destroy();
    await new Promise<void>((resolve, reject) =>
      server.close((error) => (error ? reject(error) : resolve())),
    );
  };
  const tableName = options.tableName ?? `lock-ledger-${randomUUID().slice(0, 8)}`;
  try {
    try {
      await client.send(new CreateTableCommand(ledgerTableInput(tableName)));
    } catch (error) {
      if ((error as { name?: unknown }).name !== 'ResourceInUseException') throw error;
    }
    await waitUntilActive(client, tableName);
  } catch (error) {
    await close();
    throw error;
  }
  return { endpoint, tableName, client, close };
}

/**
 * Polls DescribeTable until the table and every index are ACTIVE: CreateTable answers while the table is still
 * CREATING (dynalite too, even with createTableMs 0: it switches on a timer), and a write before then fails.
 */
export async function waitUntilActive(
  client: DynamoDBClient,
  tableName: string,
  timeoutMs = 10_000,
): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  for (let delayMs = 5; ; delayMs = Math.min(200, delayMs * 2)) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const states = [Table?.TableStatus, ...(Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexStatus)];
    if (states.every((state) => state === 'ACTIVE')) return;
    if (Date.now() > giveUpAt) {
      throw new Error(`table ${tableName} is not ACTIVE after ${timeoutMs} ms (${states.join(', ')})`);
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}
