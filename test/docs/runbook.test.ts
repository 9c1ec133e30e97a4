/**
 * The runbook's first entry, "A user cannot back up" (docs/operations.md), run as written against the local
 * stack: its three commands, with `npx sls invoke --stage prod --region eu-west-1` turned into
 * `npx sls invoke local --stage local` (the functions then read the local stack's secret and ledger). The user has
 * a dead worker's lock and a live worker's lock of module 101, and a lock of module 102 that must stay untouched.
 * What counts is what the KooDrive emulator still holds after each command.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_LEDGER_TABLE, LOCAL_USER_ID, startLocalStack, type LocalStack } from '../../dev/stack';
import { DynamoLedger } from '../../src/ledger/ledger';
import { httpDynamoCallsFor } from '../../src/ledger/dynamo-http';

const ROOT = join(import.meta.dirname, '..', '..');
const AWS_FLAGS = 'npx sls invoke --stage prod --region eu-west-1';

/** The shell commands of the runbook entry, in order. */
function runbookCommands(): string[] {
  const page = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
  const entry = page.slice(page.indexOf('### A user cannot back up'));
  const block = /```sh\n([\s\S]*?)```/.exec(entry)?.[1] ?? '';
  return block.split('\n').filter((line) => line.trim() !== '');
}

interface Answer {
  summary: Record<string, number>;
  results: {
    lockId: string;
    outcome: string;
    moduleCode?: string;
    status?: string;
    holder?: string;
    heartbeatAt?: number;
    leaseLeftSeconds?: number;
  }[];
  note?: string;
}

let stack: LocalStack;
let dir: string;
const locks = { dead: '', live: '', otherModule: '' };
let deadHeartbeatAt = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koodrive-runbook-'));
  stack = await startLocalStack({ ledger: { path: join(dir, 'dynamodb'), tableName: LOCAL_LEDGER_TABLE } });
  const record = async (
    moduleCode: string,
    ageSeconds: number,
    holder: string,
  ): Promise<[string, number]> => {
    const heartbeatAt = Date.now() - ageSeconds * 1000;
    const lockId = stack.koodrive.seedLock(LOCAL_USER_ID, moduleCode, { expiresAt: heartbeatAt + 600_000 });
    const ledger = new DynamoLedger({
      tableName: LOCAL_LEDGER_TABLE,
      calls: httpDynamoCallsFor(stack.dynamo!.client),
      now: () => heartbeatAt,
    });
    await ledger.recordAcquired({ lockId, userId: LOCAL_USER_ID, moduleCode, holder, leaseSeconds: 120 });
    return [lockId, heartbeatAt];
  };
  [locks.dead, deadHeartbeatAt] = await record('101', 300, 'worker-dead');
  [locks.live] = await record('101', 5, 'worker-live');
  [locks.otherModule] = await record('102', 300, 'worker-other');
}, 60_000);

afterAll(async () => {
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs one runbook command against the local stack and parses the function's answer. Asynchronously: the stack
 * answers from this process, whose event loop must keep running meanwhile.
 */
async function run(command: string): Promise<Answer> {
  expect(command.startsWith(AWS_FLAGS), command).toBe(true);
  const local = command.replace(AWS_FLAGS, 'npx sls invoke local --stage local');
  const result = await promisify(execFile)('sh', ['-c', local], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
    env: {
      ...process.env,
      ...stack.env,
      PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
      LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
  });
  // sls prints the answer pretty-printed (its first line a lone "{"), after any one-line JSON log lines.
  const lines = result.stdout.split('\n');
  const json = lines.slice(lines.lastIndexOf('{')).join('\n');
  return JSON.parse(json) as Answer;
}

const byLock = (answer: Answer) => Object.fromEntries(answer.results.map((r) => [r.lockId, r]));

describe('runbook: a user cannot back up (docs/operations.md), against the local stack', () => {
  it('has at most three commands, each naming the stage and region', () => {
    const commands = runbookCommands();
    expect(commands.length).toBeGreaterThan(0);
    expect(commands.length).toBeLessThanOrEqual(3);
    for (const command of commands) expect(command).toContain(AWS_FLAGS);
  });

  it('1 looks (dry run), 2 frees the dead worker’s lock and leaves the live one held, 3 forces the live one', async () => {
    const [look, free, force] = runbookCommands() as [string, string, string];

    const preview = byLock(await run(look));
    expect(Object.keys(preview).sort()).toEqual([locks.dead, locks.live].sort()); // module 101 only
    expect(preview[locks.dead]).toMatchObject({
      outcome: 'wouldRelease',
      moduleCode: '101',
      status: 'HELD',
      holder: 'worker-dead',
      heartbeatAt: deadHeartbeatAt,
      leaseLeftSeconds: 0,
    });
    expect(preview[locks.live]).toMatchObject({ outcome: 'held', holder: 'worker-live' });
    expect(preview[locks.live]?.leaseLeftSeconds).toBeGreaterThan(100);
    for (const lockId of Object.values(locks)) expect(stack.koodrive.isHeld(lockId), lockId).toBe(true);

    const freed = byLock(await run(free));
    expect(freed[locks.dead]?.outcome).toBe('released');
    expect(freed[locks.live]?.outcome).toBe('held');
    expect(stack.koodrive.isHeld(locks.dead)).toBe(false);
    expect(stack.koodrive.isHeld(locks.live)).toBe(true);

    const forced = byLock(await run(force));
    expect(Object.keys(forced)).toEqual([locks.live]); // the dead worker's item is closed now
    expect(forced[locks.live]?.outcome).toBe('released');
    expect(stack.koodrive.isHeld(locks.live)).toBe(false);
    expect(stack.koodrive.isHeld(locks.otherModule)).toBe(true);
  }, 300_000);

  it('with no open item left, the answer says what that means', async () => {
    const [look] = runbookCommands() as [string];
    const answer = await run(look);
    expect(answer.results).toEqual([]);
    expect(answer.note).toMatch(/not taken through the holder.*10 minutes/);
  }, 120_000);
});
