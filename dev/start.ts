/**
 * `npm start`: brings the local stack up on loopback, takes locks in the KooDrive emulator and records some in
 * the ledger, runs the release handler on the samples under events/, then the sweep (dry run first), and prints
 * what each answered and what the emulator and the ledger hold afterwards.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { lambdaContext } from './lambda-context';
import { runCrashDemo } from './crash-demo';
import { seedSamples } from './samples';
import { applyEnv, startLocalStack } from './stack';

const ROOT = join(import.meta.dirname, '..');
const LEDGER_DIR = join(ROOT, '.local', 'dynamodb');
const event = (name: string): unknown => JSON.parse(readFileSync(join(ROOT, 'events', name), 'utf8'));
const heading = (text: string) => console.log(`\n== ${text}`);

/** The answer as the function returns it, one result per line so a newcomer can read it. */
function show(answer: unknown): void {
  const { results, candidates, ...rest } = answer as { results?: unknown[]; candidates?: unknown[] };
  console.log(`  ${JSON.stringify(rest)}`);
  for (const [name, list] of [
    ['results', results],
    ['candidates', candidates],
  ] as const) {
    if (!list) continue;
    console.log(`  ${name}:`);
    for (const item of list) console.log(`    ${JSON.stringify(item)}`);
  }
}

async function main(): Promise<void> {
  // A fresh ledger each run, kept on disk afterwards for a look.
  rmSync(LEDGER_DIR, { recursive: true, force: true });
  const stack = await startLocalStack({ ledger: { path: LEDGER_DIR, tableName: 'koodrive-lock-ledger' } });
  applyEnv({
    ...stack.env,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'SILENT',
    // Metrics are JSON lines on stdout too: shown with the logs when LOG_LEVEL is set.
    POWERTOOLS_METRICS_DISABLED: process.env.LOG_LEVEL ? 'false' : 'true',
  });
  try {
    const seeded = await seedSamples(stack);
    console.log('Local stack on 127.0.0.1:');
    console.log(`  KooDrive emulator   ${stack.koodrive.url}`);
    console.log(`  Secrets Manager     ${stack.secrets.url}  (secret ${stack.env.KOODRIVE_SECRET_ID})`);
    console.log(
      `  DynamoDB (dynalite) ${stack.dynamo?.endpoint}  (table ${stack.dynamo?.tableName}, ${LEDGER_DIR})`,
    );
    console.log(`  ${stack.koodrive.locks().length} locks held in the emulator; the ledger records`);
    console.log(
      `  ${seeded?.stale.length} stale (holders that stopped past their lease), ${seeded?.fresh.length} fresh, ` +
        `${seeded?.failed.length} failed (retried) and ${seeded?.expired.length} failed long ago (closed as EXPIRED)`,
    );

    // Imported only now, so the handlers read the local stack's environment.
    const { handler: release } = await import('../src/handlers/release');
    const { handler: sweep } = await import('../src/handlers/sweep');

    heading('release, SQS batch (events/sqs-release.json: 4 records, the third is not JSON)');
    show(await release(event('sqs-release.json'), lambdaContext('release')));

    heading('release, direct invoke (events/direct-release.json: a duplicate and an unknown lock)');
    show(await release(event('direct-release.json'), lambdaContext('release')));

    heading('release, dry run (events/direct-release-dry-run.json)');
    show(await release(event('direct-release-dry-run.json'), lambdaContext('release')));

    heading('sweep, dry run (events/sweep-dry-run.json): what it would release, and why');
    show(await sweep(event('sweep-dry-run.json'), lambdaContext('sweep')));

    heading('sweep, scheduled (events/scheduled-sweep.json)');
    show(await sweep(event('scheduled-sweep.json'), lambdaContext('sweep', 300_000)));

    heading('A worker killed with SIGKILL (lease 5 s, skew allowance 1 s, a sweep every 2 s)');
    const crash = await runCrashDemo(stack);
    console.log(`  worker held ${crash.lockId}, heart-beat, and was killed`);
    console.log(
      `  the sweep released it ${(crash.freedAfterMs / 1000).toFixed(1)} s after its last heartbeat ` +
        `(bound: lease + skew + period + 1 s = ${crash.boundMs / 1000} s; ${crash.sweeps} sweep runs)`,
    );
    console.log(
      '  with the deployed defaults the same bound is 120 + 10 + 60 + 1 = 191 s (docs/protocol.md, "Leases and the promise")',
    );

    heading('The emulator now holds');
    for (const lock of stack.koodrive.locks()) {
      console.log(`  ${lock.lockId}  ${stack.koodrive.isHeld(lock.lockId) ? 'HELD' : 'released'}`);
    }
    console.log(
      `  (${stack.koodrive.requests.length} KooDrive requests over ${stack.koodrive.connectionsOpened} TCP connection(s))`,
    );
    console.log(`
== Where to look next
  README.md        the configuration; docs/operations.md: what each answer means, the runbook
  events/          the samples used above; try your own with npm run stack + npx sls invoke local
  .local/dynamodb  the ledger this run left behind (dynalite, on disk)
  LOG_LEVEL=INFO npm start   the same run with the functions' JSON log lines and metrics`);
  } finally {
    await stack.close();
  }
}

await main();
