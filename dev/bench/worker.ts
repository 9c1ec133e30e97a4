/**
 * A fresh process that runs the code under test for the benchmark, as a Lambda container would: the engine
 * with the real KooDriveClient, the common-way baseline, or a handler invoked several times. Its environment
 * (the local stack's endpoints and settings) is given when it is forked; its stdout (the handlers' logs) is
 * dropped. Every measurement is taken here, so the CPU time is this process's alone.
 */
import { performance } from 'node:perf_hooks';
import type { Context } from 'aws-lambda';
import { Agent, type Dispatcher } from 'undici';
import { DEFAULT_ENGINE_OPTIONS, releaseLocks, type EngineDeps } from '../../src/core/engine';
import { systemClock, type LockRef, type LockResult } from '../../src/core/model';
import { LOCK_PATH, type KooDriveClient } from '../../src/koodrive/client';
import { BASE_SIGNED_HEADERS, formatXDate, signRequest } from '../../src/koodrive/signer';
import { lambdaContext } from '../lambda-context';
import { LOCAL_APP_ID, LOCAL_APP_SECRET } from '../stack';
import { serve } from './ipc';

type Handler = (event: unknown, context: Context) => Promise<unknown>;

export interface Timed {
  ms: number;
  /** CPU time of this process during the run (user + system). */
  cpuMs: number;
}

export interface Tally {
  released: number;
  alreadyReleased: number;
  failed: number;
}

function timer(): () => Timed {
  const cpu = process.cpuUsage();
  const started = performance.now();
  return () => {
    const used = process.cpuUsage(cpu);
    return { ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
  };
}

function tally(outcomes: readonly string[]): Tally {
  const count = (o: string) => outcomes.filter((x) => x === o).length;
  return { released: count('released'), alreadyReleased: count('alreadyReleased'), failed: count('failed') };
}

let client: Promise<KooDriveClient> | undefined;

/**
 * The KooDriveClient exactly as the container builds it (src/wiring.ts: its settings from Secrets Manager, its
 * connection pool), with the secret already read: what the KooDrive calls of an invocation go through.
 */
function wiredClient(): Promise<KooDriveClient> {
  client ??= (async () => {
    const { getApp } = await import('../../src/wiring');
    const app = getApp();
    await app.settings.current();
    return app.koodrive;
  })();
  return client;
}

/** Ours: the release engine with that client. */
async function releaseWithEngine(locks: LockRef[], concurrency: number): Promise<LockResult[]> {
  const koodrive = await wiredClient();
  const deps: EngineDeps = {
    gateway: {
      release: (lock) => koodrive.releaseLock(lock),
      refreshCredentials: () => Promise.resolve(false),
    },
    clock: systemClock,
    random: Math.random,
    remainingMs: () => 900_000,
  };
  return releaseLocks(locks, deps, { ...DEFAULT_ENGINE_OPTIONS, concurrency });
}

/** A signed DELETE of `lock` as KooDrive wants it (x-date a second ago), with the Host header it was signed with. */
function signedDelete(origin: URL, lock: LockRef): Record<string, string> {
  const headers: Record<string, string> = {
    host: origin.host,
    'x-date': formatXDate(new Date(Date.now() - 1000)),
    'x-user-id': lock.userId,
    'x-backup-lock-id': lock.lockId,
  };
  const { authorization } = signRequest(
    { method: 'DELETE', path: LOCK_PATH, headers, signedHeaders: BASE_SIGNED_HEADERS },
    { appId: LOCAL_APP_ID, appSecret: LOCAL_APP_SECRET },
  );
  return { ...headers, authorization };
}

/**
 * The baseline, written the common way: global fetch, Promise.all over chunks of `concurrency`, each request
 * signed with the same signer (src/koodrive/signer.ts) and its JSON answer read.
 */
async function releaseWithFetch(endpoint: string, locks: LockRef[], concurrency: number): Promise<string[]> {
  const origin = new URL(endpoint);
  const url = new URL(LOCK_PATH, origin);
  const outcomes: string[] = [];
  for (let i = 0; i < locks.length; i += concurrency) {
    const chunk = locks.slice(i, i + concurrency);
    const answers = await Promise.all(
      chunk.map(async (lock) => {
        // fetch sets Host itself (the same value that was signed).
        const { host: _host, ...headers } = signedDelete(origin, lock);
        const res = await fetch(url, { method: 'DELETE', headers });
        const body = (await res.json()) as { code?: unknown };
        if (res.ok && body.code === 0) return 'released';
        return body.code === 13000309 ? 'alreadyReleased' : 'failed';
      }),
    );
    outcomes.push(...answers);
  }
  return outcomes;
}

const handlers = new Map<string, Handler>();

async function loadHandler(fn: 'release' | 'sweep'): Promise<Handler> {
  let handler = handlers.get(fn);
  if (!handler) {
    const module = (await (fn === 'release'
      ? import('../../src/handlers/release')
      : import('../../src/handlers/sweep'))) as { handler: Handler };
    handler = module.handler;
    handlers.set(fn, handler);
  }
  return handler;
}

export interface Invocation extends Timed {
  /** The report's summary, or the SQS answer's failure count. */
  summary?: Record<string, unknown>;
  error?: string;
}

const commands = {
  /** Builds the client (and reads the secret) before anything is timed. */
  async prepare(): Promise<void> {
    await wiredClient();
  },

  /**
   * Item 1's floor: what this setup (the emulator, loopback, timers) allows with no client work to speak of:
   * requests signed beforehand, sent over a bare undici pool of `concurrency` connections, C at a time.
   */
  async floor(endpoint: string, locks: LockRef[], concurrency: number): Promise<Timed & Tally> {
    const origin = new URL(endpoint);
    const requests = locks.map((lock) => ({
      origin: origin.origin,
      path: LOCK_PATH,
      method: 'DELETE' as const,
      headers: signedDelete(origin, lock),
    }));
    const agent = new Agent({ connections: concurrency });
    const statuses: string[] = [];
    const stop = timer();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < requests.length; i = next++) {
          const res = await agent.request(requests[i] as Dispatcher.RequestOptions);
          await res.body.text();
          statuses.push(res.statusCode === 200 ? 'released' : 'failed');
        }
      }),
    );
    const timed = stop();
    await agent.close();
    return { ...timed, ...tally(statuses) };
  },

  /** Item 1: the KooDrive calls alone (engine + KooDriveClient), no ledger, the secret already read. */
  async engine(locks: LockRef[], concurrency: number): Promise<Timed & Tally> {
    const stop = timer();
    const results = await releaseWithEngine(locks, concurrency);
    return { ...stop(), ...tally(results.map((r) => r.outcome)) };
  },

  /** Item 2: one run of ours or of the baseline; the CPU time is what the comparison uses. */
  async overhead(
    impl: 'ours' | 'baseline',
    endpoint: string,
    locks: LockRef[],
    concurrency: number,
  ): Promise<Timed & Tally> {
    (globalThis as { gc?: () => void }).gc?.();
    const stop = timer();
    const outcomes =
      impl === 'ours'
        ? (await releaseWithEngine(locks, concurrency)).map((r) => r.outcome)
        : await releaseWithFetch(endpoint, locks, concurrency);
    return { ...stop(), ...tally(outcomes) };
  },

  /** Imports a handler (once); returns how long the import took (through tsx, so not the bundle's figure). */
  async load(fn: 'release' | 'sweep'): Promise<number> {
    const started = performance.now();
    await loadHandler(fn);
    return performance.now() - started;
  },

  /** One invocation of a handler with a real deadline. */
  async invoke(fn: 'release' | 'sweep', event: unknown, timeoutMs = 60_000): Promise<Invocation> {
    const handler = await loadHandler(fn);
    const stop = timer();
    try {
      const answer = (await handler(event, lambdaContext(fn, timeoutMs))) as {
        summary?: Record<string, unknown>;
        batchItemFailures?: unknown[];
      };
      const summary = answer.summary ?? { batchItemFailures: answer.batchItemFailures?.length };
      return { ...stop(), summary };
    } catch (error) {
      return { ...stop(), error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
    }
  },

  /**
   * One release invocation with its log lines counted (the stdout and stderr lines Powertools writes, JSON): the
   * answer's size in bytes, and the answer itself when `keep`.
   */
  async answer(
    event: unknown,
    keep: boolean,
  ): Promise<Invocation & { answerBytes: number; logLines: number; logBytes: number; answer?: unknown }> {
    const handler = await loadHandler('release');
    let logLines = 0;
    let logBytes = 0;
    const streams = [process.stdout, process.stderr];
    const writes = streams.map((stream) => stream.write.bind(stream));
    for (const stream of streams) {
      stream.write = (chunk: string | Uint8Array) => {
        const text = String(chunk);
        for (const line of text.split('\n')) {
          if (line.startsWith('{')) {
            logLines += 1;
            logBytes += Buffer.byteLength(line) + 1;
          }
        }
        return true;
      };
    }
    const stop = timer();
    try {
      const answer = await handler(event, lambdaContext('release'));
      return {
        ...stop(),
        answerBytes: Buffer.byteLength(JSON.stringify(answer)),
        logLines,
        logBytes,
        ...(keep ? { answer } : {}),
      };
    } finally {
      streams.forEach((stream, k) => (stream.write = writes[k] as typeof stream.write));
    }
  },
};

export type WorkerApi = typeof commands;

serve(commands);
