/**
 * `npm run stack` stops cleanly: a SIGTERM or SIGINT to the npm process (what `kill <pid>` and Ctrl-C send) ends
 * every process it started, and the stack's ports stop answering. Should npm die without passing the signal on
 * (SIGKILL), the stack notices its parent is gone and stops as well.
 *
 * The processes are found by walking the process table (`ps`) down from npm's PID while the stack runs, so the
 * check does not depend on how many layers npm, the shell and the loader put in between.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const READY = 'Ctrl-C stops the stack.';

interface Proc {
  pid: number;
  command: string;
}

/** Every process below `root` (not `root` itself), from one reading of the process table. */
function descendants(root: number): Proc[] {
  const table = spawnSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' }).stdout;
  const rows = table
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), command: m[3] ?? '' }));
  const found: Proc[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift();
    for (const row of rows.filter((r) => r.ppid === parent)) {
      found.push({ pid: row.pid, command: row.command });
      queue.push(row.pid);
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves true when the TCP port at `url` accepts a connection. */
function answers(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits for the npm process to exit, at most `timeoutMs`; resolves whether it did. */
async function exitOf(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  const exited = once(child, 'exit').then(() => true);
  const result = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  return result;
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return check();
}

interface Running {
  npm: ChildProcess;
  output: () => string;
  endpoints: string[];
  children: Proc[];
}

const started: Running[] = [];
const dirs: string[] = [];

/** `npm run stack` in a process group of its own, with its ledger and stack.env in a temporary folder. */
async function startStack(): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'koodrive-stack-'));
  dirs.push(dir);
  const npm = spawn('npm', ['run', 'stack'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
      LOCAL_STACK_DIR: dir,
    },
  });
  let text = '';
  npm.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  npm.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const running: Running = { npm, output: () => text, endpoints: [], children: [] };
  started.push(running);
  const ready = await waitFor(() => text.includes(READY) || npm.exitCode !== null, 90_000);
  if (!ready || !text.includes(READY)) throw new Error(`npm run stack did not come up:\n${text}`);
  running.endpoints = [...text.matchAll(/http:\/\/127\.0\.0\.1:\d+/g)].map((m) => m[0]);
  running.children = descendants(npm.pid as number);
  return running;
}

afterEach(() => {
  // Whatever a failed test left behind, by the PIDs it started (never by name).
  for (const { npm, children } of started.splice(0)) {
    for (const { pid } of [...children, { pid: npm.pid as number }]) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('npm run stack stops with all its children', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s to the npm process: every child exits and the ports close',
    async (signal) => {
      const stack = await startStack();
      expect(stack.endpoints).toHaveLength(3); // KooDrive, Secrets Manager, DynamoDB
      for (const url of stack.endpoints) expect(await answers(url), url).toBe(true);
      expect(stack.children.some((p) => p.command.includes('dev/serve.ts'))).toBe(true);

      process.kill(stack.npm.pid as number, signal);
      expect(await exitOf(stack.npm, 20_000), 'npm exits').toBe(true);
      const gone = await waitFor(() => stack.children.every((p) => !alive(p.pid)), 15_000);
      expect(
        stack.children.filter((p) => alive(p.pid)),
        stack.output(),
      ).toEqual([]);
      expect(gone).toBe(true);
      for (const url of stack.endpoints) expect(await answers(url), url).toBe(false);
      expect(stack.output()).toContain(`${signal}: stopping the stack.`);
    },
    120_000,
  );

  it('npm killed outright (SIGKILL): the stack sees its parent gone and stops', async () => {
    const stack = await startStack();
    process.kill(stack.npm.pid as number, 'SIGKILL');
    expect(await exitOf(stack.npm, 20_000), 'npm exits').toBe(true);
    const gone = await waitFor(() => stack.children.every((p) => !alive(p.pid)), 15_000);
    expect(stack.children.filter((p) => alive(p.pid))).toEqual([]);
    expect(gone).toBe(true);
    for (const url of stack.endpoints) expect(await answers(url), url).toBe(false);
  }, 120_000);
});
