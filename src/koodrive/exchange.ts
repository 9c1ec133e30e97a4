/**
 * One HTTP exchange with KooDrive through undici: the answer's status, headers and (capped) body, bounded in time.
 * The process-wide keep-alive Agent lives here too (one connection pool per origin, created once per container).
 */
import type { Dispatcher } from 'undici';
// The Agent alone, not the package root (src/koodrive/undici-lib.d.ts says why).
import Agent from 'undici/lib/dispatcher/agent.js';
import type { IncomingHttpHeaders } from 'undici/types/header';

let sharedAgent: Agent | undefined;

/**
 * The process-wide undici Agent, created on first use: it keeps connections alive and holds one
 * pool per origin, so warm Lambda invocations reuse connections.
 */
export function defaultDispatcher(connections?: number): Dispatcher {
  return (sharedAgent ??= new Agent(connections ? { connections } : {}));
}

/** An attempt took longer than its timeoutMs. */
export class AttemptTimeoutError extends Error {}

export interface Exchanged {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8; undefined when it was larger than the cap (the rest is not read: the socket closes). */
  text: string | undefined;
}

/**
 * One HTTP exchange through undici's dispatch(): the answer's status, headers and (capped) body, or a rejection
 * with undici's error or AttemptTimeoutError after `timeoutMs` (connect, request and whole answer). A handler of
 * its own instead of request(): no stream, AbortSignal or async resource per request, which were most of the
 * client's CPU time per lock (`npm run bench`, row client-overhead.per-core).
 */
export function exchange(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  timeoutMs: number,
  maxBytes: number,
): Promise<Exchanged> {
  return new Promise((resolve, reject) => {
    const handler = new ExchangeHandler(resolve, reject, timeoutMs, maxBytes);
    try {
      dispatcher.dispatch(options, handler);
    } catch (error) {
      handler.settle(error);
    }
  });
}

/** The undici handler of one exchange (a class: no closures to allocate per request). */
class ExchangeHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private settled = false;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private chunks: Buffer[] | undefined = [];
  private size = 0;
  // The one timer in src/ outside the Clock port: an I/O timeout inside the adapter.
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly resolve: (value: Exchanged) => void,
    private readonly reject: (error: Error) => void,
    private readonly timeoutMs: number,
    private readonly maxBytes: number,
  ) {
    this.timer = setTimeout(ExchangeHandler.onTimeout, timeoutMs, this);
  }

  private static onTimeout(this: void, self: ExchangeHandler): void {
    const error = new AttemptTimeoutError(`timed out after ${self.timeoutMs} ms`);
    self.controller?.abort(error);
    self.settle(error);
  }

  settle(error: unknown, value?: Exchanged): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    if (value) this.resolve(value);
    else this.reject(error instanceof Error ? error : new Error(String(error)));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Still queued when the attempt timed out: it must not go out any more.
    if (this.settled) controller.abort(new AttemptTimeoutError(`timed out after ${this.timeoutMs} ms`));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    this.status = statusCode;
    this.headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.chunks) return;
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      // Not read further: aborting closes the connection instead of reusing it.
      this.chunks = undefined;
      this.settle(undefined, { status: this.status, headers: this.headers, text: undefined });
      controller.abort(new Error('response body too large'));
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    const text = this.chunks && Buffer.concat(this.chunks, this.size).toString('utf8');
    this.settle(undefined, { status: this.status, headers: this.headers, text });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.settle(error);
  }
}

/** undici's stable error code (e.g. UND_ERR_SOCKET, ECONNREFUSED), also inside a happy-eyeballs AggregateError. */
export function errorCode(err: unknown): string | undefined {
  const code = codeOf(err);
  if (code !== undefined) return code;
  // Happy-eyeballs connection attempts may fail with an AggregateError of per-address errors.
  return err instanceof AggregateError ? codeOf(err.errors[0]) : undefined;
}

function codeOf(err: unknown): string | undefined {
  const code: unknown =
    typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
