/** The baseline ledger's table (the ledger-scale scenario): dev/bench/baseline-ledger-table.yml as a CreateTable request. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

const require = createRequire(import.meta.url);
const yaml = require('js-yaml') as { load(text: string): unknown };

export const BASELINE_TABLE_FILE = new URL('./baseline-ledger-table.yml', import.meta.url);

/** What dev/dynalite.ts does with resources/ledger-table.yml, for the baseline's table. */
export function baselineTableInput(tableName: string): CreateTableCommandInput {
  const p = yaml.load(readFileSync(BASELINE_TABLE_FILE, 'utf8')) as Record<string, unknown>;
  return {
    TableName: tableName,
    BillingMode: p.BillingMode,
    AttributeDefinitions: p.AttributeDefinitions,
    KeySchema: p.KeySchema,
    GlobalSecondaryIndexes: p.GlobalSecondaryIndexes,
  } as CreateTableCommandInput;
}
