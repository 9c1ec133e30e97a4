/**
 * `npm run stack`: keeps the local stack running for `npx sls invoke local`. Seeds the locks the samples name,
 * writes the environment to .local/stack.env and runs until interrupted (Ctrl-C).
 *
 * One process holds the whole stack (the emulator, the Secrets Manager endpoint and dynalite run in it), and
 * `npm run stack` execs it with tsx's loader in-process (package.json), so npm's own child is this process: a
 * SIGTERM or SIGINT to npm reaches it, and it closes the stack and exits. Should npm die without passing a
 * signal on (SIGKILL), this process notices that its parent changed and stops too.
 *
 *   set -a; . .local/stack.env; set +a
 *   npx sls invoke local --stage local -f release -p events/sqs-release.json
 *   npx sls invoke local --stage local -f sweep -p events/scheduled-sweep.json
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { seedSamples } from './samples';
import { LOCAL_LEDGER_TABLE, startLocalStack } from './stack';

// LOCAL_STACK_DIR: where the ledger and stack.env go (tests use a folder of their own); default .local/.
const dir = process.env.LOCAL_STACK_DIR ?? join(import.meta.dirname, '..', '.local');
const ledgerDir = join(dir, 'stack-dynamodb');
rmSync(ledgerDir, { recursive: true, force: true });
const stack = await startLocalStack({ ledger: { path: ledgerDir, tableName: LOCAL_LEDGER_TABLE } });
// Held for a day rather than KooDrive's 10 minutes, so the samples still find them later.
await seedSamples(stack, 24 * 3600_000);

mkdirSync(dir, { recursive: true });
const envFile = join(dir, 'stack.env');
const shown = relative(process.cwd(), envFile);
writeFileSync(
  envFile,
  Object.entries(stack.env)
    .map(([k, v]) => `${k}=${v}\n`)
    .join(''),
);

console.log(
  `KooDrive emulator ${stack.koodrive.url}, Secrets Manager ${stack.secrets.url}, DynamoDB ${stack.dynamo?.endpoint}`,
);
console.log(`${stack.koodrive.locks().length} locks held, ledger seeded. Environment written to ${shown}:`);
console.log(`  set -a; . ${shown}; set +a`);
console.log(`  npx sls invoke local --stage local -f release -p events/sqs-release.json`);
console.log(`  npx sls invoke local --stage local -f sweep -p events/scheduled-sweep.json`);
console.log('Ctrl-C stops the stack.');

/** The longest a close may take (dynalite flushing to disk) before the process exits anyway. */
const CLOSE_TIMEOUT_MS = 5000;
let stopping = false;
const stop = (why: string) => {
  if (stopping) return; // Ctrl-C reaches npm and this process both: one stop
  stopping = true;
  console.log(`${why}: stopping the stack.`);
  const forced = setTimeout(() => {
    console.error(`the stack did not close within ${CLOSE_TIMEOUT_MS} ms: exiting anyway`);
    process.exit(1);
  }, CLOSE_TIMEOUT_MS);
  forced.unref();
  stack.close().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error('closing the stack failed:', error);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGHUP', () => stop('SIGHUP'));
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop(`parent process ${parent} is gone`);
}, 500).unref();
