/**
 * Request/answer over Node's IPC channel between the benchmark and its child processes (the KooDrive emulator,
 * the workers that run the code under test). A child calls serve() with its commands; the parent forks it with
 * startChild() and calls them through the returned Peer, typed by the child's command table.
 */
import { fork, type ChildProcess } from 'node:child_process';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a command table of any argument types
export type Api = Record<string, (...args: any[]) => unknown>;

interface Call {
  id: number;
  cmd: string;
  args: unknown[];
}

type Answer = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

interface Ready {
  ready: true;
  info: unknown;
}

/** In a child: answers the parent's calls with `handlers`, after telling it `info` (e.g. its URL). */
export function serve(handlers: Api, info: unknown = {}): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('this module must be started by the benchmark (no IPC channel)');
  process.on('message', (message: Call) => {
    const handler = handlers[message.cmd];
    const answer = async (): Promise<Answer> => {
      if (!handler) return { id: message.id, ok: false, error: `unknown command ${message.cmd}` };
      try {
        return { id: message.id, ok: true, result: await handler(...message.args) };
      } catch (error) {
        return {
          id: message.id,
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        };
      }
    };
    void answer().then((a) => send(a));
  });
  // The parent going away ends the child.
  process.on('disconnect', () => process.exit(0));
  send({ ready: true, info } satisfies Ready);
}

/** The parent's side of one child. */
export class Peer<T extends Api> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private exited = false;

  constructor(
    readonly child: ChildProcess,
    private readonly stderrTail: () => string,
  ) {
    child.on('message', (message: Answer) => {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (message.ok) waiting.resolve(message.result);
      else waiting.reject(new Error(message.error));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const waiting of this.pending.values()) {
        waiting.reject(
          new Error(`child exited (${signal ?? code}) while a call was pending\n${this.stderrTail()}`),
        );
      }
      this.pending.clear();
    });
  }

  call<K extends keyof T & string>(cmd: K, ...args: Parameters<T[K]>): Promise<Awaited<ReturnType<T[K]>>> {
    if (this.exited)
      return Promise.reject(new Error(`child exited; cannot call ${cmd}\n${this.stderrTail()}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, cmd, args } satisfies Call);
    });
  }

  /** Ends the child (by its own process handle) and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    await exited;
  }
}

export interface StartChildOptions {
  /** The child's environment; default the parent's. */
  env?: NodeJS.ProcessEnv;
  /** Its working directory (where `--import tsx` is resolved from); default the parent's. */
  cwd?: string;
  /** Extra Node flags, e.g. --expose-gc. */
  nodeArgs?: string[];
  /** The child's stdout (handlers log there): dropped by default, as Lambda ships it elsewhere. */
  stdout?: 'ignore' | 'inherit';
}

/** Forks a TypeScript module (through tsx) that calls serve(); resolves once it is ready. */
export function startChild<T extends Api>(
  file: string,
  options: StartChildOptions = {},
): Promise<{ peer: Peer<T>; info: unknown }> {
  const child = fork(file, [], {
    execArgv: ['--import', 'tsx', ...(options.nodeArgs ?? [])],
    env: options.env ?? process.env,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdio: ['ignore', options.stdout ?? 'ignore', 'pipe', 'ipc'],
  });
  return attach<T>(child, file);
}

/** Waits for a child started with an IPC channel (and stderr piped) to say it is ready. */
export function attach<T extends Api>(
  child: ChildProcess,
  label: string,
): Promise<{ peer: Peer<T>; info: unknown }> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const tail = () => (stderr ? `child stderr:\n${stderr}` : '');
  return new Promise((resolve, reject) => {
    const onMessage = (message: Ready | Answer) => {
      if ('ready' in message) {
        child.off('exit', onExit);
        child.off('message', onMessage);
        resolve({ peer: new Peer<T>(child, tail), info: message.info });
      }
    };
    const onExit = (code: number | null) =>
      reject(new Error(`${label} exited (${code}) before it was ready\n${tail()}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
