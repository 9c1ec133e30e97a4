/**
 * `npm start`: brings the local stack up on loopback, creates locks in the KooDrive emulator, runs the release
 * handler on the samples under events/ and prints what it answered and what the emulator holds afterwards.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lambdaContext } from './lambda-context';
import { SAMPLE_LOCKS } from './samples';
import { applyEnv, LOCAL_USER_ID, startLocalStack } from './stack';

const EVENTS = join(import.meta.dirname, '..', 'events');
const event = (name: string): unknown => JSON.parse(readFileSync(join(EVENTS, name), 'utf8'));
const show = (value: unknown) => console.log(JSON.stringify(value, null, 2));

async function main(): Promise<void> {
  const stack = await startLocalStack();
  applyEnv({ ...stack.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'WARN' });
  try {
    console.log('Local stack on 127.0.0.1:');
    console.log(`  KooDrive emulator      ${stack.koodrive.url}`);
    console.log(`  Secrets Manager        ${stack.secrets.url} (secret ${stack.env.KOODRIVE_SECRET_ID})`);
    for (const lockId of SAMPLE_LOCKS) {
      stack.koodrive.seedLock(LOCAL_USER_ID, lockId.split('@')[1], { lockId });
    }
    console.log(`  ${SAMPLE_LOCKS.length} locks held in the emulator for user ${LOCAL_USER_ID}\n`);

    // Imported only now, so the handler reads the local stack's environment.
    const { handler } = await import('../src/handlers/release');

    console.log('release, SQS batch (events/sqs-release.json: 4 records, the third is not JSON) answers:');
    show(await handler(event('sqs-release.json'), lambdaContext('release')));

    console.log(
      '\nrelease, direct invoke (events/direct-release.json: a duplicate and an unknown lock) answers:',
    );
    show(await handler(event('direct-release.json'), lambdaContext('release')));

    console.log('\nrelease, dry run (events/direct-release-dry-run.json) answers:');
    show(await handler(event('direct-release-dry-run.json'), lambdaContext('release')));

    console.log('\nThe emulator now holds:');
    for (const lock of stack.koodrive.locks()) {
      console.log(`  ${lock.lockId}  ${stack.koodrive.isHeld(lock.lockId) ? 'HELD' : 'released'}`);
    }
    const calls = stack.koodrive.requests.length;
    console.log(
      `\n${calls} KooDrive requests, ${stack.koodrive.connectionsOpened} TCP connection(s) opened.`,
    );
  } finally {
    await stack.close();
  }
}

await main();
