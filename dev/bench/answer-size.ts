/**
 * How big the release function's answer and its logs get for hostile payloads: 10,000 over-long lock IDs (1,000
 * characters each), and 10,000 entries whose user ID is 1,000 characters long. Runs the real handler against the
 * local stack (no ledger) and counts the answer's JSON bytes and the log lines (each case in a child process).
 *
 *   npx tsx dev/bench/answer-size.ts
 */
import { spawnSync } from 'node:child_process';
import { lambdaContext } from '../lambda-context';
import { applyEnv, LOCAL_USER_ID, startLocalStack } from '../stack';

const COUNT = 10_000;
const LONG = 1000;

const stack = await startLocalStack();
// The parent only counts: it starts no handler of its own.
const restore = applyEnv({ ...stack.env, LOG_LEVEL: 'INFO', POWERTOOLS_METRICS_DISABLED: 'true' });
const { handler } = await import('../../src/handlers/release');

const cases: Array<[string, unknown]> = [
  [
    `${COUNT} lock IDs of ${LONG} characters`,
    { lockIds: Array.from({ length: COUNT }, (_, i) => `${i}-${'k'.repeat(LONG - 6)}`) },
  ],
  [
    `${COUNT} entries with a ${LONG}-character user ID`,
    {
      locks: Array.from({ length: COUNT }, (_, i) => ({
        lockId: `lock-${i}`,
        userId: `${LOCAL_USER_ID}${'u'.repeat(LONG - LOCAL_USER_ID.length)}`,
      })),
    },
  ],
];

const only = process.argv[2];
try {
  if (only === undefined) {
    // Each case in a child process of its own, whose stdout (the log lines) is counted here.
    for (const index of cases.keys()) {
      const child = spawnSync(
        process.execPath,
        [...process.execArgv, process.argv[1] as string, String(index)],
        {
          encoding: 'utf8',
          maxBuffer: 1024 * 1024 * 1024,
        },
      );
      // Powertools writes INFO lines to stdout and WARN/ERROR lines to stderr; the child's own line starts "answer".
      const all = `${child.stdout}\n${child.stderr}`.split('\n').filter((line) => line.length > 0);
      const logs = all.filter((line) => line.startsWith('{'));
      const logKb = logs.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0) / 1024;
      const own =
        all.find((line) => line.startsWith('answer ')) ?? `answer missing: ${child.stderr.slice(-300)}`;
      console.log(`${own}, ${logs.length} log lines (${logKb.toFixed(1)} KB)`);
    }
  } else {
    const [name, event] = cases[Number(only)] as [string, unknown];
    const answer = await handler(event, lambdaContext('release'));
    const size = Buffer.byteLength(JSON.stringify(answer));
    process.stderr.write(`\nanswer ${name}: ${(size / 1024).toFixed(1)} KB\n`);
  }
} finally {
  restore();
  await stack.close();
}
