/**
 * `npm run stack`: keeps the local stack running for `npx sls invoke local`. Seeds the locks the samples name,
 * writes the environment to .local/stack.env and runs until interrupted (Ctrl-C).
 *
 *   set -a; . .local/stack.env; set +a
 *   npx sls invoke local --stage local -f release -p events/sqs-release.json
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_USER_ID, startLocalStack } from './stack';
import { SAMPLE_LOCKS } from './samples';

const stack = await startLocalStack();
// Held for a day rather than KooDrive's 10 minutes, so the samples still find them later.
const expiresAt = Date.now() + 24 * 3600_000;
for (const lockId of SAMPLE_LOCKS)
  stack.koodrive.seedLock(LOCAL_USER_ID, lockId.split('@')[1], { lockId, expiresAt });

const dir = join(import.meta.dirname, '..', '.local');
mkdirSync(dir, { recursive: true });
const envFile = join(dir, 'stack.env');
writeFileSync(
  envFile,
  Object.entries(stack.env)
    .map(([k, v]) => `${k}=${v}\n`)
    .join(''),
);

console.log(`KooDrive emulator ${stack.koodrive.url}, Secrets Manager ${stack.secrets.url}`);
console.log(`${SAMPLE_LOCKS.length} sample locks held. Environment written to .local/stack.env:`);
console.log(`  set -a; . .local/stack.env; set +a`);
console.log(`  npx sls invoke local --stage local -f release -p events/sqs-release.json`);
console.log('Ctrl-C stops the stack.');

const stop = () => {
  void stack.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
