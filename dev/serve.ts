/**
 * `npm run stack`: keeps the local stack running for `npx sls invoke local`. Seeds the locks the samples name,
 * writes the environment to .local/stack.env and runs until interrupted (Ctrl-C).
 *
 *   set -a; . .local/stack.env; set +a
 *   npx sls invoke local --stage local -f release -p events/sqs-release.json
 *   npx sls invoke local --stage local -f sweep -p events/scheduled-sweep.json
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seedSamples } from './samples';
import { LOCAL_LEDGER_TABLE, startLocalStack } from './stack';

const ledgerDir = join(import.meta.dirname, '..', '.local', 'stack-dynamodb');
rmSync(ledgerDir, { recursive: true, force: true });
const stack = await startLocalStack({ ledger: { path: ledgerDir, tableName: LOCAL_LEDGER_TABLE } });
// Held for a day rather than KooDrive's 10 minutes, so the samples still find them later.
await seedSamples(stack, 24 * 3600_000);

const dir = join(import.meta.dirname, '..', '.local');
mkdirSync(dir, { recursive: true });
const envFile = join(dir, 'stack.env');
writeFileSync(
  envFile,
  Object.entries(stack.env)
    .map(([k, v]) => `${k}=${v}\n`)
    .join(''),
);

console.log(
  `KooDrive emulator ${stack.koodrive.url}, Secrets Manager ${stack.secrets.url}, DynamoDB ${stack.dynamo?.endpoint}`,
);
console.log(
  `${stack.koodrive.locks().length} locks held, ledger seeded. Environment written to .local/stack.env:`,
);
console.log(`  set -a; . .local/stack.env; set +a`);
console.log(`  npx sls invoke local --stage local -f release -p events/sqs-release.json`);
console.log(`  npx sls invoke local --stage local -f sweep -p events/scheduled-sweep.json`);
console.log('Ctrl-C stops the stack.');

const stop = () => {
  void stack.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
